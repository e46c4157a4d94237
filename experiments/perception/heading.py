"""Does a policy head for the named cube? A closed-loop probe for training runs.

    python experiments/perception/heading.py --policy RUN [--seeds 4] [--steps 12]

Runs the policy on held-out seeds of `mujoco:pick_place` (agent eval's, from 1_000_000) for
the first `--steps` control steps and, at each step where the tool is more than 2 cm (xy) from
the instruction's cube, takes the cosine between the executed xy move and the direction to the
cube (ground truth from the simulator, never shown to the policy). The scripted expert scores
~1; a policy that ignores its cameras scores ~0. Reports the mean over the first 8 such steps
per seed. The last stdout line is one JSON object.
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

import envs  # noqa: E402
from agent.commands.eval import EVAL_SEED_BASE  # noqa: E402
from agent.runtime import ChunkBroker, run_episode  # noqa: E402
from agent.timing import StageTimer  # noqa: E402
from policies.registry import load_policy  # noqa: E402


class _Enough(Exception):
    """Raised from the step hook to end a probe episode early."""


def probe(env, policy, seed: int, steps: int) -> list[float]:
    moves: list[tuple[np.ndarray, np.ndarray]] = []

    def hook(obs, applied, info) -> None:
        p = info["privileged"]
        cube = p["objects"][p["goal"]["object"]]["pos"]
        moves.append(((cube - p["ee_pos"])[:2], np.asarray(applied)[:2]))
        if len(moves) >= steps:
            raise _Enough

    try:
        run_episode(env, ChunkBroker(policy), seed, StageTimer(), on_step=hook)
    except _Enough:
        pass
    # The first move is decided before the hook sees the state it started from, so pair
    # each move with the offset observed one step earlier.
    cos = []
    for (offset, _), (_, move) in zip(moves[:-1], moves[1:], strict=True):
        if np.linalg.norm(offset) > 0.02 and np.linalg.norm(move) > 1e-6:
            cos.append(float(move @ offset / (np.linalg.norm(move) * np.linalg.norm(offset))))
    return cos[:8]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", required=True, help="a checkpoint directory or 'scripted'")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=12)
    args = p.parse_args()
    policy = load_policy(args.policy if args.policy == "scripted" else str(Path(args.policy)))
    env = envs.make("mujoco:pick_place")
    per_seed = {}
    for i in range(args.seeds):
        cos = probe(env, policy, EVAL_SEED_BASE + i, args.steps)
        per_seed[str(EVAL_SEED_BASE + i)] = round(float(np.mean(cos)), 3) if cos else None
        print(EVAL_SEED_BASE + i, np.round(cos, 2), flush=True)
    env.close()
    scores = [v for v in per_seed.values() if v is not None]
    print(json.dumps({"bench": "heading", "policy": args.policy, "seeds": args.seeds,
                      "mean_cos": round(float(np.mean(scores)), 3) if scores else None,
                      "per_seed": per_seed}))


if __name__ == "__main__":
    main()
