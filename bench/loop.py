"""Control-loop overhead: how much of each step is the runtime's own work.

Runs the scripted policy on an env, unpaced, for a fixed number of steps and prints per-stage
medians and `overhead_ratio` = total step time / (sim + render + policy), summed over all
steps. Goal: overhead_ratio < 1.05. The last stdout line is one JSON object.

    python bench/loop.py [--env mujoco:pick_place] [--steps 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform

os.environ.setdefault("MUJOCO_GL", "egl")

import envs  # noqa: E402
from agent.runtime import ChunkBroker, run_episode  # noqa: E402
from agent.timing import StageTimer  # noqa: E402
from policies.scripted import ScriptedExpert  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="mujoco:pick_place")
    p.add_argument("--steps", type=int, default=2000)
    args = p.parse_args()
    env = envs.make(args.env)
    agent, timer = ChunkBroker(ScriptedExpert()), StageTimer()
    run_episode(env, agent, 10_000, StageTimer())  # warm-up: renderer, caches
    steps, seed, successes, episodes = 0, 0, 0, 0
    while steps < args.steps:
        r = run_episode(env, agent, seed, timer)
        steps, seed, successes, episodes = steps + r.steps, seed + 1, successes + r.success, \
            episodes + 1
    env.close()
    parts = sum(timer.total_s(s) for s in ("sim", "render", "policy"))
    summary = timer.summary_ms()
    print(json.dumps({
        "bench": "loop", "env": args.env, "steps": steps, "episodes": episodes,
        "success_rate": successes / episodes,
        "median_ms": {k: v["p50"] for k, v in summary.items()},
        "p99_ms": {k: v["p99"] for k, v in summary.items()},
        "steps_per_s": round(steps / timer.total_s("total"), 1),
        "overhead_ratio": round(timer.total_s("total") / parts, 4),
        "goal_overhead_ratio_below": 1.05,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
    }))


if __name__ == "__main__":
    main()
