"""What motoken's own reader sees in a dataset, dumped for `check.py` to compare with LeRobot's.

Runs with motoken's venv (check.py calls it in a subprocess, so the LeRobot venv never imports
motoken):

    PYTHONPATH=. /work/main/.venv/bin/python experiments/lerobot_compat/motoken_side.py DIR OUT

Writes OUT.json (counts, tasks, per-episode seed / task / length / index range) and OUT.npz (per
episode: the arrays motoken's reader gives, `K/col/NAME` for every non-video feature in
info.json as stored in the data file, new columns included, and the decoded frames of every
camera).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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
        arrays |= stored_columns(ds, k)
        for cam in ds.camera_keys:
            arrays[f"{k}/{cam}"] = ds.frames(k, cam)  # (T, H, W, 3) uint8
    np.savez(out.with_suffix(".npz"), **arrays)
    summary = {"num_episodes": ds.num_episodes, "num_frames": ds.num_frames, "fps": ds.fps,
               "tasks": ds.tasks, "camera_keys": list(ds.camera_keys),
               "features": sorted(ds.features), "episodes": episodes}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))


def stored_columns(ds: LeRobotDatasetReader, k: int) -> dict[str, np.ndarray]:
    """Every non-video feature of episode k as its data file stores it, frame by frame."""
    meta = ds.episode_meta(k)
    path = ds.root / ds.info["data_path"].format(chunk_index=meta["data/chunk_index"],
                                                 file_index=meta["data/file_index"])
    table = pq.read_table(path)
    table = table.filter(pc.equal(table["episode_index"], k)).sort_by("frame_index")
    out = {}
    for key, feature in ds.features.items():
        if feature["dtype"] in ("video", "image") or key not in table.column_names:
            continue  # a feature with no column: LeRobot's loader refuses it, check.py says so
        col = table[key].combine_chunks()
        if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type):
            out[f"{k}/col/{key}"] = col.flatten().to_numpy(zero_copy_only=False).reshape(
                len(col), -1)
        else:
            out[f"{k}/col/{key}"] = col.to_numpy(zero_copy_only=False)
    return out


if __name__ == "__main__":
    dump(Path(sys.argv[1]), Path(sys.argv[2]))
