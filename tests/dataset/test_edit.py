"""dataset.edit on real datasets recorded by `agent collect`: every output reads back with our
reader and holds exactly the source episodes it should (arrays, tasks, decoded frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from agent.cli import main
from dataset import LeRobotDatasetReader, edit
from dataset.errors import (
    DatasetExistsError,
    EditError,
    EpisodeNotFoundError,
    FeatureMismatchError,
)


def _collect(out: Path, *extra: str, episodes: int = 1) -> Path:
    assert main(["collect", "--env", "mujoco:pick_place", "--policy", "scripted", "--episodes",
                 str(episodes), "--out", str(out), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def h264_dataset(tmp_path_factory) -> Path:
    """2 episodes, h264 video (a merge with the av1 dataset must be refused)."""
    return _collect(tmp_path_factory.mktemp("h264") / "ds", "--vcodec", "h264", episodes=2)


def assert_same_episode(src: LeRobotDatasetReader, k: int, out: LeRobotDatasetReader, j: int,
                        task: str | None = None) -> None:
    """Episode j of `out` is episode k of `src` (with `task`, if it was renamed)."""
    a, b = src.episode(k), out.episode(j)
    assert b.index == j and b.task == (task or a.task)
    assert (b.seed, b.success, b.length) == (a.seed, a.success, a.length)
    for name in ("state", "action", "expert_action", "timestamp", "next_success", "env_state"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=name)
    assert out.camera_keys == src.camera_keys
    for cam in src.camera_keys:  # remuxed, not re-encoded: bit-identical decodes
        np.testing.assert_array_equal(out.frames(j, cam), src.frames(k, cam), err_msg=cam)


def assert_renumbered(out: LeRobotDatasetReader) -> None:
    """Episodes, frame indices and task indices run from 0 without gaps; stats match frames."""
    data = pd.concat([pd.read_parquet(p) for p in sorted(out.root.glob("data/*/*.parquet"))])
    assert data["index"].tolist() == list(range(out.num_frames))
    assert sorted(set(data["episode_index"])) == list(range(out.num_episodes))
    tasks = pd.read_parquet(out.root / "meta/tasks.parquet")  # LeRobot's way: task is the index
    assert sorted(tasks.task_index) == list(range(len(out.tasks)))
    used = {out.episode_meta(k)["tasks"][0] for k in range(out.num_episodes)}
    assert set(tasks.index) == used
    for k in range(out.num_episodes):
        rows = data[data["episode_index"] == k]
        assert set(rows["task_index"]) == {tasks.loc[out.episode(k).task].task_index}
    actions = np.concatenate([out.episode(k).action for k in range(out.num_episodes)])
    np.testing.assert_allclose(out.stats["action"]["max"], actions.max(0))
    np.testing.assert_allclose(out.stats["action"]["mean"], actions.mean(0), atol=1e-6)
    assert int(out.stats["action"]["count"][0]) == out.num_frames
    assert int(out.stats["observation.images.front"]["count"][0]) > 0


def test_delete_keeps_the_rest_in_order_and_leaves_the_source_alone(small_dataset, tmp_path):
    before = (small_dataset / "meta/info.json").read_bytes()
    src = LeRobotDatasetReader(small_dataset)
    out = edit.delete_episodes(small_dataset, tmp_path / "out", [1])
    assert out.num_episodes == 2 and out.info["splits"] == {"train": "0:2"}
    assert out.num_frames == src.num_frames - src.episode(1).length
    assert_same_episode(src, 0, out, 0)
    assert_same_episode(src, 2, out, 1)
    assert_renumbered(out)
    assert out.recording["edit"] == {"op": "delete", "source": str(small_dataset),
                                     "deleted": [1]}
    assert out.recording["env"] == src.recording["env"]
    assert (small_dataset / "meta/info.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the build folder is gone


def test_split_by_fractions_covers_every_episode_once(small_dataset, tmp_path):
    src = LeRobotDatasetReader(small_dataset)
    splits = edit.fraction_splits(src.num_episodes, {"train": 2 / 3, "val": 1 / 3})
    assert splits == {"train": [0, 1], "val": [2]}
    out = edit.split(small_dataset, tmp_path / "splits", splits)
    assert sorted(p.name for p in (tmp_path / "splits").iterdir()) == ["train", "val"]
    for j, k in enumerate(splits["train"]):
        assert_same_episode(src, k, out["train"], j)
    assert_same_episode(src, 2, out["val"], 0)
    for ds in out.values():
        assert_renumbered(ds)
    assert out["val"].recording["edit"]["episodes"] == [2]


def test_split_by_episode_lists_sorts_each_split(small_dataset, tmp_path):
    src = LeRobotDatasetReader(small_dataset)
    out = edit.split(small_dataset, tmp_path / "s", {"odd": [2, 0], "even": [1]})
    assert_same_episode(src, 0, out["odd"], 0)
    assert_same_episode(src, 2, out["odd"], 1)
    assert_same_episode(src, 1, out["even"], 0)


def test_fraction_splits_rounding_and_refusals():
    assert edit.fraction_splits(10, {"a": 0.8, "b": 0.2}) == {"a": list(range(8)), "b": [8, 9]}
    assert edit.fraction_splits(10, {"a": 0.5}) == {"a": list(range(5))}  # the rest left out
    assert edit.fraction_splits(3, {"a": 0.5, "b": 0.5}) == {"a": [0, 1], "b": [2]}
    with pytest.raises(EditError, match="add up to 1.2"):
        edit.fraction_splits(10, {"a": 0.6, "b": 0.6})
    with pytest.raises(EditError, match=r"must be in \(0, 1\]"):
        edit.fraction_splits(10, {"a": 0.0, "b": 1.0})
    with pytest.raises(EditError, match="'b' .* gets no episode"):
        edit.fraction_splits(3, {"a": 0.9, "b": 0.1})


def test_split_refusals(small_dataset, tmp_path):
    with pytest.raises(EditError, match="episode 1 is in both split 'a' and 'b'"):
        edit.split(small_dataset, tmp_path / "x", {"a": [0, 1], "b": [1]})
    with pytest.raises(EpisodeNotFoundError, match=r"\[7\] not in"):
        edit.split(small_dataset, tmp_path / "x", {"a": [0], "b": [7]})
    with pytest.raises(EditError, match="not a plain folder name"):
        edit.split(small_dataset, tmp_path / "x", {"../a": [0]})
    assert not (tmp_path / "x").exists()


def test_merge_concatenates_and_reindexes_tasks(small_dataset, tmp_path):
    src = LeRobotDatasetReader(small_dataset)
    renamed = edit.rename_task(small_dataset, tmp_path / "renamed", "stack it", episodes=[1])
    out = edit.merge([small_dataset, renamed.root], tmp_path / "merged")
    assert out.num_episodes == 6 and out.num_frames == 2 * src.num_frames
    for k in range(3):
        assert_same_episode(src, k, out, k)
        assert_same_episode(renamed, k, out, 3 + k)
    assert out.tasks == [*src.tasks, "stack it"]
    assert_renumbered(out)
    assert [s["path"] for s in out.recording["edit"]["sources"]] == [str(small_dataset),
                                                                     str(renamed.root)]


def test_merge_refuses_different_features_naming_them(small_dataset, h264_dataset, tmp_path):
    with pytest.raises(FeatureMismatchError,
                       match=r"observation.images.front.info: .*'video.codec': 'av1'.*'h264'"):
        edit.merge([small_dataset, h264_dataset], tmp_path / "m")
    fps10 = _collect(tmp_path / "fps10", "--fps", "10")
    with pytest.raises(FeatureMismatchError, match="fps: .* has 20, .* has 10"):
        edit.merge([small_dataset, fps10], tmp_path / "m")
    with pytest.raises(EditError, match="two datasets or more"):
        edit.merge([small_dataset], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_h264_dataset_edits_bit_identically(h264_dataset, tmp_path):
    src = LeRobotDatasetReader(h264_dataset)
    out = edit.delete_episodes(h264_dataset, tmp_path / "out", [0])
    assert_same_episode(src, 1, out, 0)
    assert out.features == src.features


def test_noisy_dataset_keeps_expert_actions(tmp_path):
    noisy = _collect(tmp_path / "noisy", "--action-noise", "0.01", episodes=2)
    src = LeRobotDatasetReader(noisy)
    out = edit.delete_episodes(noisy, tmp_path / "out", [0])
    assert out.has_expert_action and out.recording["action_noise"] == src.recording["action_noise"]
    assert_same_episode(src, 1, out, 0)


def test_rename_task_by_name_and_by_episode(small_dataset, tmp_path):
    src = LeRobotDatasetReader(small_dataset)
    old = src.episode(2).task
    out = edit.rename_task(small_dataset, tmp_path / "a", "pick up the red cube", task=old)
    assert_same_episode(src, 2, out, 2, task="pick up the red cube")
    assert_same_episode(src, 0, out, 0)
    assert old not in out.tasks and "pick up the red cube" in out.tasks
    assert_renumbered(out)
    every = edit.rename_task(small_dataset, tmp_path / "b", "do it")
    assert every.tasks == ["do it"]
    assert_renumbered(every)
    with pytest.raises(EditError, match="did you mean 'put the red cube on the yellow plate'"):
        edit.rename_task(small_dataset, tmp_path / "c", "x", task="put the red cube on a plate")
    with pytest.raises(EditError, match="none of episodes \\[0\\]"):
        edit.rename_task(small_dataset, tmp_path / "c", "x", task=old, episodes=[0])


def test_refusals_write_nothing(small_dataset, tmp_path):
    with pytest.raises(EpisodeNotFoundError, match=r"episode\(s\) \[3, 9\] not in .* 0..2"):
        edit.delete_episodes(small_dataset, tmp_path / "x", [0, 3, 9])
    with pytest.raises(EditError, match="no episode"):
        edit.delete_episodes(small_dataset, tmp_path / "x", [0, 1, 2])
    with pytest.raises(EditError, match="inside the source"):
        edit.delete_episodes(small_dataset, small_dataset / "sub", [0])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetExistsError, match="not an empty folder"):
        edit.delete_episodes(small_dataset, tmp_path / "full", [0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    assert edit.delete_episodes(small_dataset, tmp_path / "empty", [0]).num_episodes == 2


def test_parquet_layout_is_what_the_writer_makes(small_dataset, tmp_path):
    out = edit.delete_episodes(small_dataset, tmp_path / "out", [0])
    src_cols = pq.read_schema(small_dataset / "data/chunk-000/file-000.parquet").names
    assert pq.read_schema(out.root / "data/chunk-000/file-000.parquet").names == src_cols
    assert out.info["episodes_per_file"] == 2  # the source's file roll is kept
    assert (out.root / "videos/observation.images.front/chunk-000/file-000.mp4").is_file()
