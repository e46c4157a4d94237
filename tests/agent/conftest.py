"""Fixtures shared by the collect/dataset/replay tests: one small real dataset per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main

ENV = "mujoco:pick_place"


def collect(out: Path, *extra: str, episodes: int = 3) -> int:
    """`agent collect` in-process; returns its exit code."""
    return main(["collect", "--env", ENV, "--policy", "scripted", "--episodes", str(episodes),
                 "--out", str(out), *extra])


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 scripted pick-place episodes, 2 per file (so episodes span two files of each kind)."""
    out = tmp_path_factory.mktemp("ds") / "pp3"
    assert collect(out, "--episodes-per-file", "2") == 0
    return out
