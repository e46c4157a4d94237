"""Manual check: LeRobot's own `LeRobotDataset` reads a dataset that `agent collect` wrote.

Not a pytest module (LeRobot is no motoken dependency). Run it in a throwaway venv that has
lerobot (0.4.x reads v3.0) with motoken's worktree on PYTHONPATH for the comparison reader:

    PYTHONPATH=/path/to/motoken python tests/dataset/lerobot_check.py DATASET_DIR

Run it on each `agent dataset edit` output too (delete, split, merge, rename-task);
experiments/lerobot_compat/check.py makes all of them and loads each with LeRobot.

It loads the dataset with LeRobot (video backend pyav), then checks that every frame of the
first, middle and last episodes matches motoken's reader (state, action, task exactly; decoded
video frames), that LeRobot reads stats.json, that `delta_timestamps` (action chunks) and a
DataLoader work, and that motoken's stats equal LeRobot's `get_feature_stats` on the same data.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pyarrow.parquet as pq
import torch
from lerobot.datasets.compute_stats import get_feature_stats, sample_indices
from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

from dataset import LeRobotDatasetReader
from dataset.stats import image_stats


def check_frames(ds: LeRobotDataset, mine: LeRobotDatasetReader) -> None:
    eps = sorted({0, mine.num_episodes // 2, mine.num_episodes - 1})
    worst = 0.0
    for k in eps:
        ep = mine.episode(k)
        frames = {c: mine.frames(k, c) for c in mine.camera_keys}
        start = mine.episode_meta(k)["dataset_from_index"]
        for t in range(ep.length):
            item = ds[start + t]
            assert item["episode_index"].item() == k and item["frame_index"].item() == t
            assert np.array_equal(item["observation.state"].numpy(), ep.state[t])
            assert np.array_equal(item["action"].numpy(), ep.action[t])
            assert item["task"] == ep.task
            for c in mine.camera_keys:
                theirs = (item[c].numpy().transpose(1, 2, 0) * 255).round()
                worst = max(worst, float(np.abs(theirs - frames[c][t]).max()))
    print(f"episodes {eps}: states/actions/tasks identical; video frames max |diff| {worst}")


def check_training_access(root: str, fps: int) -> None:
    chunked = LeRobotDataset("motoken/local", root=root, video_backend="pyav",
                             delta_timestamps={"action": [i / fps for i in range(10)],
                                               "observation.images.front": [-0.1, 0.0]})
    item = chunked[5]
    print("delta_timestamps: action", tuple(item["action"].shape), "front",
          tuple(item["observation.images.front"].shape))
    batch = next(iter(torch.utils.data.DataLoader(chunked, batch_size=32, shuffle=True)))
    print("DataLoader batch:", {k: tuple(v.shape) for k, v in batch.items()
                                if hasattr(v, "shape")})


def check_stats(mine: LeRobotDatasetReader, meta: LeRobotDatasetMetadata) -> None:
    for key in ("action", "observation.state", "observation.images.front"):
        for st in ("mean", "std", "min", "max", "q01", "q99"):
            assert np.allclose(np.asarray(meta.stats[key][st]), mine.stats[key][st]), (key, st)
    rows = [r for p in sorted((mine.root / "meta/episodes").glob("*/*.parquet"))
            for r in pq.read_table(p).to_pylist()]
    for k in range(mine.num_episodes):
        check_episode_stats(mine, k, rows[k])
    print("stats: LeRobot reads stats.json; per-episode stats match its get_feature_stats")


def check_episode_stats(mine: LeRobotDatasetReader, k: int, row: dict) -> None:
    ep = mine.episode(k)
    for key, arr in (("action", ep.action), ("observation.state", ep.state)):
        for st, v in get_feature_stats(arr, axis=0, keepdims=False).items():
            ours = np.asarray(row[f"stats/{key}/{st}"])
            if st == "std":
                # LeRobot's variance is float32 E[x^2]-E[x]^2: off by a few float32 eps of
                # E[x^2], a large part of the std of a dim that barely moves (0.00221 for our
                # exact 0.00228, mean 0.98). Compare variances within that cancellation error.
                sq = (arr.astype(np.float64) ** 2).mean(0)
                assert np.all(np.abs(v**2 - ours**2) <= 1e-6 * sq + 1e-12), (key, st)
                continue
            # Quantiles off 5000-bin histograms.
            bin_w = 2 * (arr.max(0) - arr.min(0)) / 5000 + 1e-6
            tol = bin_w if st.startswith("q") else 1e-5 + 1e-3 * np.abs(v)
            assert np.all(np.abs(v - ours) <= tol), (key, st)
    for cam in mine.camera_keys:
        frames = mine.frames(k, cam)
        arr = frames[sample_indices(len(frames))].transpose(0, 3, 1, 2).astype(np.float64)
        theirs = get_feature_stats(arr, axis=(0, 2, 3), keepdims=True)
        again = image_stats(frames)
        for st, v in theirs.items():
            v = v if st == "count" else np.squeeze(v / 255.0, axis=0)
            assert again[st].shape == v.shape == np.asarray(row[f"stats/{cam}/{st}"]).shape
            tol = 2 / 255 if st.startswith("q") else 1e-4
            assert np.all(np.abs(v - again[st]) <= tol), (cam, st)


def main(root: str) -> None:
    t0 = time.time()
    meta = LeRobotDatasetMetadata("motoken/local", root=root)
    ds = LeRobotDataset("motoken/local", root=root, video_backend="pyav")
    mine = LeRobotDatasetReader(root)
    print(f"LeRobotDataset: codebase {meta.info['codebase_version']}, episodes "
          f"{ds.num_episodes}, frames {len(ds)}, fps {ds.fps}, cameras {meta.camera_keys}, "
          f"tasks {len(meta.tasks)} (loaded in {time.time() - t0:.1f}s)")
    assert ds.num_episodes == mine.num_episodes and len(ds) == mine.num_frames
    check_frames(ds, mine)
    check_stats(mine, meta)
    check_training_access(root, ds.fps)
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1])
