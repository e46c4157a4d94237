"""Where does the generalist's arm end up on `mujoco:reach`: at the named ball, or another?

    MUJOCO_GL=egl .venv/bin/python experiments/generalist/reach_target.py RUN [--episodes 30]

Runs the policy sync (execute 4 of each chunk, torch) on held-out seeds and, per episode, says
which ball the gripper ended nearest to and whether that is the one the instruction named.
Last line JSON: counts of success, nearest-is-named and nearest-is-another.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rollout import HELD_OUT, episode, load


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--env", default="mujoco:reach")
    p.add_argument("--episodes", type=int, default=30)
    args = p.parse_args()
    policy, env = load(args.run, args.env)
    layout, rows = env.unwrapped.state_layout, []
    for i in range(args.episodes):
        run = episode(policy, env, HELD_OUT + i)
        obs, info, steps = run.obs, run.info, run.steps
        priv = info["privileged"]
        ee = obs["state"][layout.ee_pos]
        named = priv["goal"]["object"] or priv["goal"]["target"]
        dist = {n: float(np.linalg.norm(np.asarray(o["pos"]) - ee))
                for n, o in priv["objects"].items()}
        nearest = min(dist, key=dist.get)
        rows.append({"seed": HELD_OUT + i, "success": bool(info["is_success"]), "steps": steps,
                     "instruction": obs["instruction"], "named": named, "nearest": nearest,
                     "nearest_m": round(dist[nearest], 3)})
        print(rows[-1], flush=True)
    env.close()
    fails = [r for r in rows if not r["success"]]
    print(json.dumps({"run": str(args.run), "env": args.env, "episodes": len(rows),
                      "success": len(rows) - len(fails), "failures": len(fails),
                      "failed_nearest_named": sum(r["nearest"] == r["named"] for r in fails),
                      "failed_nearest_other": sum(r["nearest"] != r["named"] for r in fails),
                      "rows": rows}))


if __name__ == "__main__":
    main()
