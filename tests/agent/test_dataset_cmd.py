"""`agent dataset info|show|edit` on real recorded datasets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import collect, fails_with_one_line

from agent.cli import main
from dataset import LeRobotDatasetReader


def test_info_reports_episodes_frames_fps_features_size(small_dataset: Path, capsys):
    assert main(["dataset", "info", str(small_dataset), "--json"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["episodes"] == 3 and s["fps"] == 20 and s["frames"] > 100
    assert s["features"]["observation.images.wrist"] == {"dtype": "video",
                                                         "shape": [128, 128, 3]}
    assert s["size_bytes"] == sum(s["size_bytes_by_folder"].values()) > 0
    assert main(["dataset", "info", str(small_dataset)]) == 0
    text = capsys.readouterr().out
    assert "episodes 3" in text and "observation.state" in text and "MiB" in text


def test_show_png_and_mp4(small_dataset: Path, tmp_path: Path):
    png, mp4 = tmp_path / "sheet.png", tmp_path / "ep.mp4"
    assert main(["dataset", "show", str(small_dataset), "--episode", "0", "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["dataset", "show", str(small_dataset), "--episode", "0", "--out", str(mp4)]) == 0
    with av.open(str(mp4)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames == LeRobotDatasetReader(small_dataset).episode(0).length


def test_not_a_dataset(tmp_path: Path):
    with pytest.raises(SystemExit, match="is not a LeRobot dataset"):
        main(["dataset", "info", str(tmp_path)])


# -- agent dataset edit ------------------------------------------------------------------------
def _same(src: LeRobotDatasetReader, k: int, out: LeRobotDatasetReader, j: int) -> None:
    a, b = src.episode(k), out.episode(j)
    assert (b.seed, b.length) == (a.seed, a.length)
    np.testing.assert_array_equal(b.action, a.action)
    np.testing.assert_array_equal(b.state, a.state)
    for cam in src.camera_keys:
        np.testing.assert_array_equal(out.frames(j, cam), src.frames(k, cam))


def test_edit_delete_split_merge_rename(small_dataset: Path, tmp_path: Path, capsys):
    src = LeRobotDatasetReader(small_dataset)
    d = tmp_path / "deleted"
    assert main(["dataset", "edit", "delete", str(small_dataset), "--episodes", "0-1",
                 "--out", str(d)]) == 0
    assert f"wrote {d}: 1 episodes, {src.episode(2).length} frames" in capsys.readouterr().out
    _same(src, 2, LeRobotDatasetReader(d), 0)

    s = tmp_path / "splits"
    assert main(["dataset", "edit", "split", str(small_dataset), "--split", "train=0.67",
                 "--split", "val=0.33", "--out", str(s)]) == 0
    train, val = LeRobotDatasetReader(s / "train"), LeRobotDatasetReader(s / "val")
    assert (train.num_episodes, val.num_episodes) == (2, 1)
    _same(src, 1, train, 1)
    _same(src, 2, val, 0)
    assert main(["dataset", "edit", "split", str(small_dataset), "--split", "a=2,0",
                 "--split", "b=1", "--out", str(tmp_path / "lists")]) == 0
    _same(src, 2, LeRobotDatasetReader(tmp_path / "lists" / "a"), 1)

    m = tmp_path / "merged"
    assert main(["dataset", "edit", "merge", str(s / "val"), str(s / "train"),
                 "--out", str(m)]) == 0
    merged = LeRobotDatasetReader(m)
    for j, k in enumerate((2, 0, 1)):
        _same(src, k, merged, j)

    r = tmp_path / "renamed"
    assert main(["dataset", "edit", "rename-task", str(small_dataset), "--task",
                 src.episode(0).task, "--to", "stack the cubes", "--out", str(r)]) == 0
    renamed = LeRobotDatasetReader(r)
    assert [e.task for e in renamed] == ["stack the cubes", src.episode(1).task,
                                         src.episode(2).task]
    _same(src, 0, renamed, 0)
    assert main(["dataset", "info", str(r), "--json"]) == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["delete", "{src}", "--episodes", "1,5", "--out", "{out}"], r"episode\(s\) \[5\] not in"),
    (["delete", "{src}", "--episodes", "0-2", "--out", "{out}"], "would leave .* no episode"),
    (["delete", "{src}", "--episodes", "2-1", "--out", "{out}"], "runs backwards"),
    (["delete", "{src}", "--episodes", "one", "--out", "{out}"], "'one' .* is not an episode"),
    (["delete", "{src}", "--episodes", "0", "--out", "{src}"], "exists and is not an empty"),
    (["split", "{src}", "--split", "a=0.8", "--split", "b=0.4", "--out", "{out}"],
     "add up to 1.2"),
    (["split", "{src}", "--split", "a=0.9", "--split", "b=0.1", "--out", "{out}"],
     "'b' .* gets no episode"),
    (["split", "{src}", "--split", "a=0.5", "--split", "b=2", "--out", "{out}"], "not a mix"),
    (["split", "{src}", "--split", "a=0,1", "--split", "b=1", "--out", "{out}"],
     "episode 1 is in both"),
    (["split", "{src}", "--split", "a", "--out", "{out}"], "not NAME=FRACTION"),
    (["merge", "{src}", "--out", "{out}"], "two datasets or more"),
    (["rename-task", "{src}", "--task", "nope", "--to", "x", "--out", "{out}"],
     "no task 'nope'"),
    (["rename-task", "{src}", "--episodes", "3", "--to", "x", "--out", "{out}"],
     r"\[3\] not in"),
])
def test_edit_refuses_bad_input_in_one_line(small_dataset, tmp_path, capsys, argv, message):
    argv = [a.format(src=small_dataset, out=tmp_path / "out") for a in argv]
    err = fails_with_one_line(["dataset", "edit", *argv], capsys)
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_edit_merge_names_the_difference(small_dataset, tmp_path, capsys):
    fps10 = tmp_path / "fps10"
    assert collect(fps10, "--fps", "10", episodes=1) == 0
    err = fails_with_one_line(["dataset", "edit", "merge", str(small_dataset), str(fps10),
                               "--out", str(tmp_path / "m")], capsys)
    assert "fps: " in err and "has 20" in err and "has 10" in err
    assert not (tmp_path / "m").exists()
