"""`agent collect` round trip: what was recorded reads back (real MuJoCo, real files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from conftest import ENV, collect

import envs
from agent.runtime import ChunkBroker, run_episode
from agent.timing import StageTimer
from dataset import LeRobotDatasetReader
from dataset import stats as stats_mod
from policies.registry import load_policy


def _ground_truth(seed: int) -> dict[str, np.ndarray]:
    """Run the scripted episode again, outside the recorder, keeping everything raw."""
    env = envs.make(ENV)
    seen: dict[str, list] = {"state": [], "action": [], "front": [], "wrist": []}

    def hook(obs, applied, info):
        seen["state"].append(obs.state)
        seen["action"].append(applied)
        seen["front"].append(obs.images["front"])
        seen["wrist"].append(obs.images["wrist"])

    run_episode(env, ChunkBroker(load_policy("scripted")), seed, StageTimer(), on_step=hook)
    env.close()
    return {k: np.stack(v) for k, v in seen.items()}


def test_round_trip_states_actions_exact_frames_within_codec_tolerance(small_dataset: Path):
    ds = LeRobotDatasetReader(small_dataset)
    assert ds.num_episodes == 3
    for k in (0, 2):  # episode 2 is the first of the second file
        ep = ds.episode(k)
        truth = _ground_truth(ep.seed)
        np.testing.assert_array_equal(ep.state, truth["state"])
        np.testing.assert_array_equal(ep.action, truth["action"])
        np.testing.assert_allclose(ep.timestamp, np.arange(ep.length) / ds.fps, atol=1e-6)
        assert ep.success and ep.next_success[-1] and not ep.next_success[:-1].any()
        for cam in ("front", "wrist"):
            frames = ds.frames(k, cam)
            assert frames.shape == truth[cam].shape and frames.dtype == np.uint8
            err = np.abs(frames.astype(np.int16) - truth[cam]).astype(np.float64)
            psnr = 10 * np.log10(255.0**2 / (err**2).mean())
            assert psnr > 30, f"episode {k} {cam}: PSNR {psnr:.1f} dB"


def test_v30_layout_and_metadata(small_dataset: Path):
    root = small_dataset
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20
    assert info["total_episodes"] == 3 and info["splits"] == {"train": "0:3"}
    for f in ("data/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet",
              "meta/episodes/chunk-000/file-001.parquet", "meta/tasks.parquet",
              "meta/stats.json", "videos/observation.images.front/chunk-000/file-001.mp4",
              "videos/observation.images.wrist/chunk-000/file-000.mp4"):
        assert (root / f).is_file(), f
    front = info["features"]["observation.images.front"]
    assert front["dtype"] == "video" and front["shape"] == [128, 128, 3]
    assert front["info"]["video.codec"] == "av1" and front["info"]["video.pix_fmt"] == "yuv420p"
    assert len(info["features"]["observation.state"]["names"]) == 14
    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert data.column_names == ["observation.state", "observation.environment_state", "action",
                                 "next.success", "timestamp", "frame_index", "episode_index",
                                 "index", "task_index"]
    tasks = pd.read_parquet(root / "meta/tasks.parquet")  # LeRobot's own way to read it
    ds = LeRobotDatasetReader(root)
    for ep in ds.episodes:
        assert tasks.loc[ep["tasks"][0]].task_index >= 0
    second = ds.episodes[2]
    assert second["data/file_index"] == 1 and second["videos/observation.images.front/"
                                                        "from_timestamp"] == 0.0
    assert ds.episodes[1]["videos/observation.images.front/from_timestamp"] == (
        ds.episodes[0]["videos/observation.images.front/to_timestamp"])
    assert ds.episodes[2]["dataset_from_index"] == ds.episodes[1]["dataset_to_index"]


def test_stats_aggregate_to_whole_dataset_values(small_dataset: Path):
    ds = LeRobotDatasetReader(small_dataset)
    episodes = [ds.episode(k) for k in range(ds.num_episodes)]
    action = np.concatenate([e.action for e in episodes]).astype(np.float64)
    s = ds.stats["action"]
    np.testing.assert_allclose(s["mean"], action.mean(0), atol=1e-9)
    np.testing.assert_allclose(s["std"], action.std(0), atol=1e-9)
    np.testing.assert_array_equal(s["min"], action.min(0))
    assert s["count"].tolist() == [len(action)]
    assert set(stats_mod.QUANTILE_KEYS) <= set(s)
    img = ds.stats["observation.images.front"]
    assert img["mean"].shape == (3, 1, 1) and 0 <= img["min"].min() <= img["max"].max() <= 1


def test_parallel_workers_record_the_same_dataset(small_dataset: Path, tmp_path: Path):
    out = tmp_path / "par"
    assert collect(out, "--num-envs", "2", "--episodes-per-file", "2") == 0
    a, b = LeRobotDatasetReader(small_dataset), LeRobotDatasetReader(out)
    assert a.num_frames == b.num_frames
    for k in range(3):
        ea, eb = a.episode(k), b.episode(k)
        assert ea.seed == eb.seed == k
        np.testing.assert_array_equal(ea.state, eb.state)
        np.testing.assert_array_equal(ea.action, eb.action)
    assert not (out / ".staging").exists()
