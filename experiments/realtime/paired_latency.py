"""Per-chunk ONNX Runtime latency of two checkpoints, interleaved on the same observations.

    python experiments/realtime/paired_latency.py OLD NEW [--chunks 48]

Both policies run `infer_chunk` (their own decode schedule: plan, then actions token by token
or in one pass) on ONNX Runtime CPU, one thread, alternating A/B on each observation so that
load from anything else on the machine falls on both. The last stdout line is one JSON object:
p50/p99 per checkpoint and the median of the per-observation ratios B/A.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

import numpy as np  # noqa: E402
import torch  # noqa: E402

from agent.commands.eval import EVAL_SEED_BASE  # noqa: E402
from agent.rollout import rollout_observations  # noqa: E402
from policies.inference.backend import BackendOptions, make_engine  # noqa: E402
from policies.model.token_policy import TokenPolicy  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--chunks", type=int, default=48)
    args = p.parse_args()
    torch.set_num_threads(1)
    policies = []
    for ckpt in (args.old, args.new):
        policy = TokenPolicy.load(ckpt)
        policy.use_engine(make_engine(policy, BackendOptions("onnx", checkpoint=ckpt,
                                                             provider="cpu")))
        policies.append(policy)
    observations = rollout_observations("mujoco:pick_place", 16, EVAL_SEED_BASE)
    for policy in policies:
        policy.infer_chunk(observations[0])  # warm-up
    ms: list[list[float]] = [[], []]
    for i in range(args.chunks):
        obs = observations[i % len(observations)]
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            t = time.perf_counter()
            policies[k].infer_chunk(obs)
            ms[k].append((time.perf_counter() - t) * 1e3)
    a, b = (np.array(x) for x in ms)

    def pct(x: np.ndarray) -> dict:
        return {"p50": round(float(np.median(x)), 2), "p99": round(float(np.percentile(x, 99)), 2)}
    print(json.dumps({
        "study": "paired_latency", "old": str(args.old), "new": str(args.new),
        "chunks": args.chunks,
        "old_ms": pct(a), "new_ms": pct(b),
        "ratio_new_over_old_median": round(float(np.median(b / a)), 3),
        "loadavg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
