"""How far does the generalist get on `mujoco:push`: does it reach the named cube, move it,
move the other one, or push the named cube the wrong way?

    MUJOCO_GL=egl .venv/bin/python experiments/generalist/push_progress.py RUN [--episodes 20]

Runs the policy sync (execute 4 of each chunk, torch, 1 thread) on held-out seeds and, per
episode, records the gripper's closest approach to the named cube, how far each cube moved,
and the named cube's distance to the plate at the start, at its closest and at the end
(success: under 0.045 m, the plate's radius less 2 cm). Last line JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rollout import HELD_OUT, episode, load


def _xy(priv: dict, name: str) -> np.ndarray:
    return np.asarray(priv["objects"][name]["pos"])[:2]


class Closest:
    """After every step: the gripper's closest approach to the named cube, and the cube's
    closest approach to the plate (in xy), so far."""

    def __init__(self, layout) -> None:
        self.layout, self.reach, self.gap = layout, np.inf, np.inf

    def __call__(self, obs: dict, info: dict) -> None:
        priv = info["privileged"]
        cube = np.asarray(priv["objects"][priv["goal"]["object"]]["pos"])
        ee = obs["state"][self.layout.ee_pos]
        self.reach = min(self.reach, float(np.linalg.norm(cube - ee)))
        plate = _xy(priv, priv["goal"]["target"])
        self.gap = min(self.gap, float(np.linalg.norm(cube[:2] - plate)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--env", default="mujoco:push")
    p.add_argument("--episodes", type=int, default=20)
    args = p.parse_args()
    policy, env = load(args.run, args.env)
    layout, rows = env.unwrapped.state_layout, []
    for i in range(args.episodes):
        closest = Closest(layout)
        run = episode(policy, env, HELD_OUT + i, on_step=closest)
        priv, info, steps = run.start_info["privileged"], run.info, run.steps
        named, plate = priv["goal"]["object"], priv["goal"]["target"]
        other = next(n for n in priv["objects"] if n not in (named, plate))
        start = {n: _xy(priv, n) for n in (named, other, plate)}
        gap0 = float(np.linalg.norm(start[named] - start[plate]))
        reach, best_gap = closest.reach, min(gap0, closest.gap)
        priv = info["privileged"]
        end = {n: _xy(priv, n) for n in (named, other, plate)}
        rows.append({"seed": HELD_OUT + i, "success": bool(info["is_success"]), "steps": steps,
                     "closest_reach_m": round(reach, 3),
                     "named_moved_m": round(float(np.linalg.norm(end[named] - start[named])), 3),
                     "other_moved_m": round(float(np.linalg.norm(end[other] - start[other])), 3),
                     "gap_start_m": round(gap0, 3), "gap_best_m": round(best_gap, 3),
                     "gap_end_m": round(float(np.linalg.norm(end[named] - end[plate])), 3),
                     "plate_x_m": round(float(start[plate][0]), 3),
                     "cube_x_m": round(float(start[named][0]), 3)})
        print(rows[-1], flush=True)
    env.close()
    fails = [r for r in rows if not r["success"]]

    def count(test) -> int:
        return sum(bool(test(r)) for r in fails)

    print(json.dumps({
        "run": str(args.run), "env": args.env, "episodes": len(rows),
        "success": len(rows) - len(fails), "failures": len(fails),
        # "touched": the gripper came within 5 cm of the cube's centre (a cube is 4-5 cm).
        "failed_never_touched": count(lambda r: r["closest_reach_m"] > 0.05),
        "failed_named_unmoved": count(lambda r: r["named_moved_m"] < 0.01),
        "failed_moved_other": count(lambda r: r["other_moved_m"] >= 0.01),
        "failed_got_closer": count(lambda r: r["gap_end_m"] < r["gap_start_m"] - 0.01),
        "failed_pushed_away": count(lambda r: r["gap_end_m"] > r["gap_start_m"] + 0.01),
        "rows": rows}))


if __name__ == "__main__":
    main()
