"""Every dataset `agent collect` writes and every `agent dataset edit` output has what LeRobot's
own loader needs (lerobot_schema.py), and that check catches what LeRobot refuses. LeRobot
itself read the same outputs in experiments/lerobot_compat/ (see its NOTE.md)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent.cli import main
from dataset import edit
from tests.dataset.lerobot_schema import lerobot_problems


def test_collected_dataset_is_readable_by_lerobot(small_dataset):
    assert lerobot_problems(small_dataset) == []


def test_every_edit_output_is_readable_by_lerobot(small_dataset, tmp_path):
    outs = [edit.delete_episodes(small_dataset, tmp_path / "delete", [1]).root,
            *(ds.root for ds in edit.split(small_dataset, tmp_path / "split",
                                           {"a": [0, 2], "b": [1]}).values()),
            edit.merge([small_dataset, small_dataset], tmp_path / "merge").root,
            edit.rename_task(small_dataset, tmp_path / "rename", "a new task",
                             episodes=[0]).root]
    for out in outs:
        assert lerobot_problems(out) == [], out


def test_noisy_h264_dataset_and_its_edit_are_readable_by_lerobot(tmp_path):
    """expert_action (a second action column) and h264 video, through an edit."""
    src = tmp_path / "dart"
    assert main(["collect", "--env", "mujoco:pick_place", "--policy", "scripted", "--episodes",
                 "2", "--out", str(src), "--vcodec", "h264", "--action-noise", "0.01"]) == 0
    assert "expert_action" in json.loads((src / "meta/info.json").read_text())["features"]
    assert lerobot_problems(src) == []
    assert lerobot_problems(edit.delete_episodes(src, tmp_path / "out", [0]).root) == []


# -- the check finds what LeRobot 0.4.4 refuses (each seen with LeRobot in the experiment) -----
def _bool_column(root: Path, store: Callable[[pa.Array], pa.Array], dtype: str) -> None:
    """An `intervention` column as LeRobot's features spell it, stored by `store`."""
    for path in sorted(root.glob("data/*/*.parquet")):
        table = pq.read_table(path)
        flags = pa.array([i % 2 == 0 for i in range(table.num_rows)])
        pq.write_table(table.append_column("intervention", store(flags)), path)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"]["intervention"] = {"dtype": dtype, "shape": [1], "names": None}
    (root / "meta/info.json").write_text(json.dumps(info))


def _shift_video(root: Path) -> None:
    """Episode 0's front camera starts half a frame late: no frame is at its timestamps."""
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    rows = pq.read_table(path).to_pylist()
    rows[0]["videos/observation.images.front/from_timestamp"] += 0.5 / 20
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)


def _reverse_tasks(root: Path) -> None:
    path = root / "meta/tasks.parquet"
    table = pq.read_table(path)
    pq.write_table(table.take(list(range(table.num_rows))[::-1]), path)


DAMAGE = {
    "a plain bool column": (lambda r: _bool_column(r, lambda a: a, "bool"), None),
    "bool stored as a one-element list": (
        lambda r: _bool_column(r, lambda a: pa.FixedSizeListArray.from_arrays(a, 1), "bool"),
        "column intervention is fixed_size_list<element: bool>[1]"),
    "bool spelled 'boolean'": (lambda r: _bool_column(r, lambda a: a, "boolean"),
                               "dtype 'boolean' shape [1] is not one LeRobot's loader can read"),
    "a video segment off its frames": (_shift_video, "no frame within 0.0001 s of 0.0250 s"),
    "tasks out of task_index order": (_reverse_tasks, "row i = task i"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_the_check_finds_what_lerobot_refuses(small_dataset, tmp_path, damage):
    root = shutil.copytree(small_dataset, tmp_path / "copy")
    change, found = DAMAGE[damage]
    change(root)
    problems = lerobot_problems(root)
    if found is None:  # the spelling LeRobot reads (and motoken writes for next.success)
        assert problems == []
    else:
        assert len(problems) == 1 and found in problems[0], problems
