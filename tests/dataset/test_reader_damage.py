"""The reader refuses a dataset whose meta/info.json is damaged or disagrees with the episodes
table, naming the file; a crash's uncommitted tail still reads (real `agent collect` data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.cli import main
from dataset import DatasetCorruptError, LeRobotDatasetReader, NotADatasetError


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 short scripted episodes (mujoco:reach), never changed: tests damage copies."""
    out = tmp_path_factory.mktemp("damage") / "reach2"
    assert main(["collect", "--env", "mujoco:reach", "--policy", "scripted", "--episodes", "2",
                 "--out", str(out), "--vcodec", "h264"]) == 0
    return out


@pytest.fixture
def dataset(recorded: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(recorded, tmp_path / "ds"))


def _edit_info(root: Path, **changes: int) -> dict:
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, **changes}))
    return info


def test_truncated_info_json(dataset: Path):
    info = dataset / "meta/info.json"
    info.write_bytes(info.read_bytes()[:200])
    with pytest.raises(DatasetCorruptError, match=f"{info} is not valid JSON .* damaged"):
        LeRobotDatasetReader(dataset)


def test_more_episodes_counted_than_the_table_holds(dataset: Path):
    _edit_info(dataset, total_episodes=4)
    with pytest.raises(DatasetCorruptError, match=r"info.json counts 4 episodes \(total_episodes"
                                                  r"\) but the episodes table .* lacks episode"
                                                  r"\(s\) \[2, 3\]; the dataset's files disagree"):
        LeRobotDatasetReader(dataset)


def test_frames_counted_differ_from_the_episodes(dataset: Path):
    info = _edit_info(dataset, total_frames=5)
    with pytest.raises(DatasetCorruptError, match=rf"info.json counts 5 frames \(total_frames\) "
                                                  rf"but the episodes table's 2 episodes hold "
                                                  rf"{info['total_frames']};"):
        LeRobotDatasetReader(dataset)


def test_info_json_without_its_totals(dataset: Path):
    info = json.loads((dataset / "meta/info.json").read_text())
    del info["total_frames"]
    (dataset / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetCorruptError, match=r"lacks \['total_frames'\]"):
        LeRobotDatasetReader(dataset)


def test_an_uncommitted_tail_is_not_a_disagreement(dataset: Path):
    """What a crash between the table and info.json leaves: one row past the count."""
    first = LeRobotDatasetReader(dataset).episode(0)
    _edit_info(dataset, total_episodes=1, total_frames=first.length)
    ds = LeRobotDatasetReader(dataset)
    assert ds.num_episodes == 1 and [r["episode_index"] for r in ds.episodes] == [0]


def test_missing_directory(tmp_path: Path):
    with pytest.raises(NotADatasetError, match=f"{tmp_path / 'nope'} does not exist"):
        LeRobotDatasetReader(tmp_path / "nope")
