"""Token lengths of the generated phrasings (envs.phrasings) under the shipped default's BPE
and under a BPE fitted on the TRAIN phrasings the way `agent train` fits one (on the dataset's
instructions), vs the policy's 12-token text window. Prints one JSON object.

    PYTHONPATH=$PWD python experiments/generalist/text_window.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from envs.phrasings import task_phrasings
from policies.model.text import InstructionTokenizer

TASKS = ("pick_place", "push", "reach")
ORDINARY = [  # sentences a user might type that no generator template says
    "grab the red cube and set it down on the yellow plate",
    "would you kindly pick up the green block and put it onto the purple dish",
    "take the blue cube from the table and place it carefully on the yellow plate",
    "move the gripper over to the green ball and touch it gently",
]


def stats(tok: InstructionTokenizer, texts: list[str]) -> dict:
    n = np.array([len(tok.encode(t)) for t in texts])
    return {"sentences": len(texts), "max": int(n.max()), "p99": float(np.percentile(n, 99)),
            "p50": float(np.percentile(n, 50)), "over_12": int((n > 12).sum())}


def main() -> None:
    train = sorted({p for t in TASKS for p in task_phrasings(t, "train")})
    held = sorted({p for t in TASKS for p in task_phrasings(t, "heldout")})
    default = InstructionTokenizer.load(Path("checkpoints/default/text_tokenizer.json"))
    fitted = {v: InstructionTokenizer.train(train, vocab_size=v) for v in (320, 512, 1024)}
    chars = [len(t) for t in train + held]
    out = {"chars_max": max(chars),
           "default_bpe": {"vocab": default.vocab_size, "train": stats(default, train),
                           "heldout": stats(default, held), "ordinary": stats(default, ORDINARY)},
           "bpe_fitted_on_train": {
               v: {"vocab": f.vocab_size, "train": stats(f, train), "heldout": stats(f, held),
                   "ordinary": stats(f, ORDINARY)} for v, f in fitted.items()},
           "worst_case_128_chars_bytes": 128}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
