"""Why does the generalist's push miss the plate: does it misjudge where the cube and plate
are (its plan tokens), or does it know and still push the wrong way (its actions)?

    MUJOCO_GL=egl .venv/bin/python experiments/generalist/push_plan_error.py RUN [--episodes 10]

Runs the policy sync on held-out `mujoco:push` seeds (rollout.py). At every inference it
compares the plan the policy wrote (PLAN_GOAL: cube and plate relative to the tool) with the
simulator's truth, and its first action's xy with the steering expert's (policies.scripted.
PushScript, stepped alongside on the same states so its phase follows the episode). Rows are
split by the expert's phase on that state (behind: going behind the cube from above, lower,
push).
Angles: of the cube-to-plate direction (plan vs truth) and of the xy action (policy vs expert,
only where the expert moves more than 5 mm). Last line JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rollout import HELD_OUT, load

from envs.types import Observation
from policies.model.plan_targets import PLAN_GOAL
from policies.scripted import PushScript


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """Unsigned angle (deg) between two xy vectors."""
    c = np.arctan2(a[0] * b[1] - a[1] * b[0], a @ b)
    return float(abs(np.degrees(c)))


def _stats(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    a = np.asarray(xs)
    return {"n": len(a), "median": round(float(np.median(a)), 4),
            "p90": round(float(np.percentile(a, 90)), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--episodes", type=int, default=10)
    args = p.parse_args()
    policy, env = load(args.run, "mujoco:push")
    execute = policy.config.execute
    rows: dict[str, dict[str, list[float]]] = {
        k: {"cube_err_m": [], "plate_err_m": [], "dir_err_deg": [], "action_err_deg": [],
            "action_norm_ratio": []} for k in ("behind", "lower", "push")}
    successes = 0
    for i in range(args.episodes):
        obs, info = env.reset(seed=HELD_OUT + i)
        policy.reset()
        expert, done = PushScript(), False
        while not done:
            priv = info["privileged"]
            want = expert.act(priv)  # keeps the expert's phase in step with the episode
            chunk = policy.infer(Observation.from_env(obs, info)).actions
            plan = policy.last_plan[0][PLAN_GOAL]
            ee = np.asarray(priv["ee_pos"])
            cube = np.asarray(priv["objects"][priv["goal"]["object"]]["pos"])
            plate = np.asarray(priv["objects"][priv["goal"]["target"]]["pos"])
            true_cube, true_plate = cube - ee, plate - ee
            r = rows[expert.phase]
            r["cube_err_m"].append(float(np.linalg.norm(plan[:3] - true_cube)))
            r["plate_err_m"].append(float(np.linalg.norm(plan[3:6] - true_plate)))
            r["dir_err_deg"].append(_angle(plan[3:5] - plan[:2], true_plate[:2] - true_cube[:2]))
            if np.linalg.norm(want[:2]) > 0.005:
                r["action_err_deg"].append(_angle(chunk[0][:2], want[:2]))
                r["action_norm_ratio"].append(float(np.linalg.norm(chunk[0][:2])
                                                    / np.linalg.norm(want[:2])))
            for k, a in enumerate(chunk[:execute]):
                if k:
                    expert.act(info["privileged"])
                obs, _, term, trunc, info = env.step(a)
                done = term or trunc
                if done:
                    break
        successes += bool(info["is_success"])
        print(f"episode {i}: success {bool(info['is_success'])}", flush=True)
    env.close()
    print(json.dumps({"run": str(args.run), "episodes": args.episodes, "success": successes,
                      **{k: {m: _stats(v) for m, v in r.items()} for k, r in rows.items()}}))


if __name__ == "__main__":
    main()
