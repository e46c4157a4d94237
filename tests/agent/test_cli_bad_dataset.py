"""A damaged dataset or a missing --data: `agent dataset info`, `agent collect --resume` and
`agent train` print one line naming the file and exit 2; --resume changes nothing (real
`agent collect` data, damaged on disk)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import collect, fails_with_one_line

REACH = ("--vcodec", "h264")  # with env="mujoco:reach": short episodes, fast encoding


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 short scripted episodes, never changed: tests damage copies."""
    out = tmp_path_factory.mktemp("bad") / "reach2"
    assert collect(out, *REACH, env="mujoco:reach", episodes=2) == 0
    return out


def _truncate_info(root: Path) -> str:
    info = root / "meta/info.json"
    info.write_bytes(info.read_bytes()[:200])
    return f"{info} is not valid JSON"


def _wrong_totals(root: Path) -> str:
    info = root / "meta/info.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "total_episodes": 3}))
    return (f"{info} counts 3 episodes (total_episodes) but the episodes table (meta/episodes/) "
            f"lacks episode(s) [2]")


DAMAGE = {"truncated info.json": _truncate_info, "totals disagree": _wrong_totals}


def _tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
            for p in root.rglob("*")}


@pytest.mark.parametrize("case", DAMAGE)
def test_dataset_info(recorded: Path, tmp_path: Path, case: str, capsys):
    ds = Path(shutil.copytree(recorded, tmp_path / "ds"))
    why = DAMAGE[case](ds)
    for extra in ((), ("--json",)):
        line = fails_with_one_line(["dataset", "info", str(ds), *extra], capsys)
        assert line.startswith(f"error: {why}"), line


@pytest.mark.parametrize("case", DAMAGE)
def test_collect_resume_changes_nothing(recorded: Path, tmp_path: Path, case: str, capsys):
    ds = Path(shutil.copytree(recorded, tmp_path / "ds"))
    why = DAMAGE[case](ds)
    before = _tree(ds)
    line = fails_with_one_line(["collect", "--env", "mujoco:reach", "--policy", "scripted",
                                "--episodes", "4", "--out", str(ds), "--resume", *REACH], capsys)
    assert line.startswith(f"error: cannot resume {ds}: {why}"), line
    assert line.endswith("; nothing was changed")
    assert _tree(ds) == before


def test_train_on_a_missing_data_dir(tmp_path: Path, capsys):
    missing = tmp_path / "no_such_dataset"
    line = fails_with_one_line(["train", "--data", str(missing), "--out", str(tmp_path / "run")],
                               capsys)
    assert line == (f"error: {missing} does not exist; a dataset is a directory (written by "
                    f"`agent collect`)")
    assert not (tmp_path / "run").exists()
