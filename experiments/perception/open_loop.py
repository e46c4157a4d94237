"""Open-loop action error of a token policy on held-out scripted episodes.

    python experiments/perception/open_loop.py --policy RUN [--seeds 2]

Rolls out the scripted expert on held-out seeds (agent eval's, from 1_000_000), then on every
third frame decodes the policy's chunk greedily and compares its first action with the
expert's: mean absolute error per action dimension, beside the error of always predicting the
episodes' mean action (what a policy that ignores its inputs scores). Also the per-step
cross-entropy of the expert's chunk tokens. A diagnostic for training runs: closed-loop success
needs the first action right to a few millimetres. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from agent.commands.eval import EVAL_SEED_BASE  # noqa: E402
from agent.rollout import rollout_demos  # noqa: E402
from policies.model.token_policy import TokenPolicy  # noqa: E402
from policies.training.data import ChunkSampler  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", type=Path, required=True)
    p.add_argument("--seeds", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)
    policy = TokenPolicy.load(args.policy)
    demos = rollout_demos("mujoco:pick_place", range(EVAL_SEED_BASE, EVAL_SEED_BASE + args.seeds))
    H, Da = policy.config.chunk, policy.config.action_dim
    sampler = ChunkSampler(demos, policy.config.cameras, H)
    b = sampler.gather(sampler.index[::3])
    text, state = policy.text_ids(b.instructions), policy.state_ids(b.state)
    act = torch.from_numpy(policy.action_ids(b.actions))
    m = policy.model
    with torch.inference_mode():
        x = m.prefix_embeddings(torch.from_numpy(text), torch.from_numpy(b.frames),
                                torch.from_numpy(state))
        P = x.shape[1]
        logits, _ = m(torch.cat([x, m.embed(act[:, :-1])], 1), logits_from=P - 1)
        ce = F.cross_entropy(logits.flatten(0, 1), act.flatten(), reduction="none")
        ce = ce.view(len(act), H, Da)  # (N, H, Da)
    first = policy.generate(text, b.frames, state)[:, 0]  # (N, Da)
    want = b.actions[:, 0]

    def r(v, n: int = 4) -> list[float]:
        return [round(float(x), n) for x in np.asarray(v)]

    print(json.dumps({
        "bench": "open_loop", "policy": str(args.policy), "frames": len(want),
        "step0_mae": r(np.abs(first - want).mean(0)),
        "mean_prediction_mae": r(np.abs(want - want.mean(0)).mean(0)),
        "ce_per_chunk_step": r(ce.mean((0, 2)), 2),
        "ce_step0_per_dim": r(ce[:, 0].mean(0), 2),
    }))


if __name__ == "__main__":
    main()
