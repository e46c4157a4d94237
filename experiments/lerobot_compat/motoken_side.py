"""What motoken's own reader sees in a dataset, dumped for `check.py` to compare with LeRobot's.

Runs with motoken's venv (check.py calls it in a subprocess, so the LeRobot venv never imports
motoken):

    PYTHONPATH=. /work/main/.venv/bin/python experiments/lerobot_compat/motoken_side.py DIR OUT

Writes OUT.json (counts, tasks, per-episode seed / task / length / index range) and OUT.npz (per
episode every per-frame column motoken reads, and the decoded frames of every camera).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from dataset import LeRobotDatasetReader


def dump(root: Path, out: Path) -> None:
    ds = LeRobotDatasetReader(root)
    arrays: dict[str, np.ndarray] = {}
    episodes = []
    for k in range(ds.num_episodes):
        ep = ds.episode(k)
        meta = ds.episode_meta(k)
        episodes.append({"index": ep.index, "seed": ep.seed, "task": ep.task, "length": ep.length,
                         "from_index": int(meta["dataset_from_index"]),
                         "to_index": int(meta["dataset_to_index"])})
        columns = {"observation.state": ep.state, "action": ep.action,
                   "timestamp": ep.timestamp, "next.success": ep.next_success,
                   "expert_action": ep.expert_action,
                   "observation.environment_state": ep.env_state}
        for name, value in columns.items():
            if value is not None:
                arrays[f"{k}/{name}"] = np.asarray(value)
        for cam in ds.camera_keys:
            arrays[f"{k}/{cam}"] = ds.frames(k, cam)  # (T, H, W, 3) uint8
    np.savez(out.with_suffix(".npz"), **arrays)
    summary = {"num_episodes": ds.num_episodes, "num_frames": ds.num_frames, "fps": ds.fps,
               "tasks": ds.tasks, "camera_keys": list(ds.camera_keys),
               "features": sorted(ds.features), "episodes": episodes}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    dump(Path(sys.argv[1]), Path(sys.argv[2]))
