"""Does lookahead help? Success with and without it on held-out seeds, and what it costs.

    python experiments/lookahead/lookahead.py --policy RUN [--k 4] [--episodes 50] [--jobs 2]
        [--envs mujoco:pick_place,mujoco:pick_place_hard] [--rate-episodes 2] [--margins 0,0.01]
        [--horizon STEPS] [--temperature T] [--score funnel] [--when missed-grasp]

RUN is an `agent train --tokenizer TOK` run. Each cell is one `agent eval` (held-out seeds from
1,000,000, unpaced, sync execution) of the same policy with and without `--lookahead K`, so the
columns differ only in how the chunk is chosen (one lookahead column per `--margins` entry:
keep the greedy chunk unless a candidate beats it by more than M metres); cells run `--jobs`
at a time (success does not depend on timing: sync execution waits for every chunk). Then,
alone on the machine, one paced `agent run` per setting on the first env measures the loop
rate at the env's 20 Hz with lookahead on and off: that is its cost.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from policies.video.lookahead import SCORES, WHEN  # noqa: E402


def agent_json(args: list[str]) -> dict:
    """Run `python -m agent ARGS --json`; its last stdout line, parsed."""
    out = subprocess.run([sys.executable, "-m", "agent", *args, "--json"], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"error: agent {' '.join(args)} failed ({out.returncode}):\n"
                         f"{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cell(policy: Path, env: str, k: int | None, episodes: int, backend: str,
         margin: float = 0.0, extra: tuple[str, ...] = ()) -> dict:
    """One eval: success rate, its 95% CI, the failed seeds and (with k) lookahead's record.
    `extra`: more --lookahead-* options for the lookahead cells."""
    look = [] if k is None else ["--lookahead", str(k), "--lookahead-margin", str(margin),
                                 *extra]
    s = agent_json(["eval", "--env", env, "--policy", str(policy), "--episodes", str(episodes),
                    "--backend", backend, *look])
    row = {"success_rate": s["success_rate"], "success_ci95": s["success_ci95"],
           "episodes": s["episodes"], "mean_steps": round(s["mean_steps"], 1),
           "failed_seeds": s["failed_seeds"]}
    if k is not None:
        la = s["lookahead"]
        row["lookahead"] = {key: la[key] for key in ("margin", "horizon", "latency_ms",
                                                     "predict_ms_p50", "score",
                                                     "when", "decisions",
                                                     "policy_alone_decisions",
                                                     "engaged_episodes",
                                                     "rejected", "greedy_chosen")}
    return row


def loop_rate(policy: Path, env: str, k: int | None, episodes: int, backend: str) -> dict:
    """A paced run at the env's rate: achieved Hz, deadline misses, inference p50/p99 (ms)."""
    look = [] if k is None else ["--lookahead", str(k)]
    s = agent_json(["run", "--env", env, "--policy", str(policy), "--episodes", str(episodes),
                    "--seed", "1000000", "--backend", backend, *look])
    return {"loop_hz": s["loop_hz"], "deadline_misses": s["deadline_misses"],
            "policy_ms": s["latency_ms"]["policy"]}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--policy", type=Path, required=True, metavar="RUN")
    p.add_argument("--k", type=int, default=4, help="candidates per decision (>= 2)")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--envs", default="mujoco:pick_place,mujoco:pick_place_hard")
    p.add_argument("--jobs", type=int, default=2, help="evals run side by side")
    p.add_argument("--backend", default="torch", help="the policy's engine in every cell")
    p.add_argument("--margins", default="0",
                   help="comma-separated lookahead margins (m), one column each")
    p.add_argument("--horizon", type=int, default=None,
                   help="--lookahead-horizon of the lookahead cells (default: the head's)")
    p.add_argument("--temperature", type=float, default=None,
                   help="--lookahead-temperature of the lookahead cells (default 1)")
    p.add_argument("--score", choices=sorted(SCORES), default=None,
                   help="--lookahead-score of the lookahead cells (default distance)")
    p.add_argument("--when", choices=WHEN, default=None,
                   help="--lookahead-when of the lookahead cells (default always)")
    p.add_argument("--rate-episodes", type=int, default=2,
                   help="paced episodes per loop-rate measurement (0: skip)")
    args = p.parse_args(argv)
    if args.k < 2 or args.episodes < 1 or args.jobs < 1:
        raise SystemExit("error: --k must be >= 2, --episodes and --jobs >= 1")
    envs = [e for e in args.envs.split(",") if e]
    try:
        margins = [float(m) for m in args.margins.split(",") if m]
    except ValueError:
        margins = []
    if not margins or not all(m >= 0 for m in margins):  # not m >= 0 also catches NaN
        raise SystemExit(f"error: --margins takes one or more numbers >= 0 like 0,0.01, got "
                         f"{args.margins!r}")
    grid = [(env, None, 0.0) for env in envs] + [(env, args.k, m) for env in envs
                                                   for m in margins]
    extra = tuple(str(x) for flag, v in (("--lookahead-horizon", args.horizon),
                                         ("--lookahead-temperature", args.temperature),
                                         ("--lookahead-score", args.score),
                                         ("--lookahead-when", args.when))
                  if v is not None for x in (flag, v))
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda c: cell(args.policy, c[0], c[1], args.episodes,
                                            args.backend, c[2], extra), grid))

    def column(k: int | None, m: float) -> str:
        return "off" if k is None else f"k{k}" + (f"_m{m:g}" if m else "")

    cells: dict[str, dict] = {}
    for (env, k, m), row in zip(grid, rows, strict=True):
        cells.setdefault(env, {})[column(k, m)] = row
    cost = None
    if args.rate_episodes:
        cost = {name: loop_rate(args.policy, envs[0], k, args.rate_episodes, args.backend)
                for name, k in (("off", None), (f"k{args.k}", args.k))}
    summary = {"policy": str(args.policy), "k": args.k, "backend": args.backend,
               "horizon": args.horizon, "temperature": args.temperature,
               "score": args.score or "distance", "when": args.when or "always",
               "episodes_per_cell": args.episodes, "cells": cells, "loop_cost": cost}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
