"""How much of an EE position delta does the mk6 arm cover per tick? (why roll_forward's sum
overshoots where the arm will be; experiments/realtime/NOTE.md, third attempt)

    MUJOCO_GL=egl .venv/bin/python experiments/realtime/tracking_gain.py [--steps 12]

Holds one action (dx 10 mm, dy -5 mm, dz 4 mm) from a reset of `mujoco:pick_place` and prints,
per axis, the median measured displacement per tick over the commanded delta. Last line JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import envs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args()
    env = envs.make("mujoco:pick_place")
    obs, _ = env.reset(seed=args.seed)
    layout = env.unwrapped.state_layout
    action = np.array([0.01, -0.005, 0.004, 0.0, 0.0, 0.0, 0.04], np.float32)
    pos = [obs["state"][layout.ee_pos]]
    for _ in range(args.steps):
        obs, *_ = env.step(action)
        pos.append(obs["state"][layout.ee_pos])
    env.close()
    per_tick = np.diff(np.array(pos), axis=0)  # (steps, 3) m
    gain = np.median(per_tick / action[:3], axis=0)
    print(json.dumps({"env": "mujoco:pick_place", "seed": args.seed, "steps": args.steps,
                      "commanded_mm": (action[:3] * 1000).round(1).tolist(),
                      "per_tick_mm_median": (np.median(per_tick, 0) * 1000).round(2).tolist(),
                      "gain_xyz": gain.round(3).tolist()}))


if __name__ == "__main__":
    main()
