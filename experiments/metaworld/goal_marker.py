"""How visible is a Meta-World goal in our 128x128 cameras? Two seeds of `metaworld:reach`
with goals drawn afresh, side by side, and the pixels that differ between them.

    MUJOCO_GL=egl .venv/bin/python experiments/metaworld/goal_marker.py [--task reach] \
        [--out experiments/metaworld/goal_marker.png]

Prints each seed's goal (Meta-World obs[36:39]) and object (obs[4:7]) positions, and per camera
how many pixels differ (sum of |RGB| > 30), as a JSON last line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

import envs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="reach")
    p.add_argument("--seeds", type=int, nargs=2, default=(1000000, 1000001))
    p.add_argument("--out", type=Path, default=Path("experiments/metaworld/goal_marker.png"))
    args = p.parse_args()
    env = envs.make(f"metaworld:{args.task}", goals="random")
    shots, where = [], []
    for seed in args.seeds:
        obs, info = env.reset(seed=seed)
        mw = info["privileged"]["metaworld_obs"]
        where.append({"seed": seed, "goal": np.round(mw[36:39], 3).tolist(),
                      "object": np.round(mw[4:7], 3).tolist()})
        shots.append(obs["images"])
    env.close()
    cams = sorted(shots[0])
    rows = [np.concatenate([s[c] for c in cams], 1) for s in shots]
    diff = {c: np.abs(shots[0][c].astype(int) - shots[1][c].astype(int)).sum(-1) > 30
            for c in cams}
    rows.append(np.repeat(np.concatenate([diff[c] for c in cams], 1)[..., None] * 255, 3, -1)
                .astype(np.uint8))
    im = np.concatenate(rows, 0)
    Image.fromarray(im).resize((im.shape[1] * 3, im.shape[0] * 3), Image.NEAREST).save(args.out)
    print(json.dumps({"task": args.task, "image": str(args.out), "seeds": where,
                      "pixels_differing": {c: int(diff[c].sum()) for c in cams}}))


if __name__ == "__main__":
    main()
