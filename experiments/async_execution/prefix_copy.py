"""Does a token policy read the scene after a committed prefix, or continue the prefix?

    python experiments/async_execution/prefix_copy.py [--policy checkpoints/default] [--seeds 2]
                                                      [--steps 40] [--delay 2]

Diagnoses --exec rtc (agent/execution.py). The episode runs in sync mode. At each tick t, the
chunk planned d ticks earlier ("old") commits its actions for ticks t..t+d-1. Three chunks
are compared on the steps after those:
- `free`: the policy's chunk from the frame at t, with no prefix;
- `forced`: the chunk from the same frame with old's committed actions forced as its prefix;
- `old`: old's own continuation.
A policy that reads the scene gives `forced` close to `free`. One that extrapolates its
prefix gives `forced` close to `old`. Mean |difference| of the xyz deltas, in mm per step.
The last stdout line is one JSON object.
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

import envs  # noqa: E402
from agent.commands.eval import EVAL_SEED_BASE  # noqa: E402
from envs.types import Observation  # noqa: E402
from policies.model.token_policy import TokenPolicy  # noqa: E402


def compare(policy: TokenPolicy, env, seed: int, steps: int, d: int) -> list[tuple[float, ...]]:
    """(|forced - free|, |forced - old|, |free - old|) in mm per step, one row per tick."""
    o, info = env.reset(seed=seed)
    obs, chunks, rows = Observation.from_env(o, info), [], []
    H = policy.config.chunk
    for t in range(steps):
        free = policy.infer_chunk(obs).actions
        chunks.append(free)
        if t >= d:
            old = chunks[t - d]
            forced = policy.infer_chunk(obs, committed=old[d:2 * d]).actions
            span = slice(d, H - d)  # the steps all three chunks have after the prefix
            a, b, c = forced[span, :3], free[span, :3], old[2 * d:H, :3]
            rows.append(tuple(1000 * float(np.abs(x - y).mean()) for x, y in
                              ((a, b), (a, c), (b, c))))
        o, _, terminated, truncated, info = env.step(free[0])
        obs = Observation.from_env(o, info)
        if terminated or truncated:
            break
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", type=Path, default=Path("checkpoints/default"))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--delay", type=int, default=2, help="committed steps d (ticks)")
    args = p.parse_args()
    torch.set_num_threads(1)
    policy = TokenPolicy.load(args.policy)
    if not 1 <= args.delay <= policy.config.chunk // 2 - 1:
        raise SystemExit(f"error: --delay must be in 1..{policy.config.chunk // 2 - 1} for a "
                         f"chunk of {policy.config.chunk}, got {args.delay}")
    env = envs.make("mujoco:pick_place")
    rows = [r for s in range(args.seeds)
            for r in compare(policy, env, EVAL_SEED_BASE + s, args.steps, args.delay)]
    env.close()
    m = np.mean(rows, axis=0)
    print(json.dumps({"bench": "prefix_copy", "policy": str(args.policy), "delay_ticks": args.delay,
                      "ticks_compared": len(rows),
                      "forced_vs_free_mm": round(float(m[0]), 2),
                      "forced_vs_old_mm": round(float(m[1]), 2),
                      "free_vs_old_mm": round(float(m[2]), 2)}))


if __name__ == "__main__":
    main()
