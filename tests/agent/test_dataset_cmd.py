"""`agent dataset info|show` on a real recorded dataset."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

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
