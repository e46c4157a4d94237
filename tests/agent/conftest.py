"""Helpers of the collect/dataset/replay tests (the shared dataset and video run live in
tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from agent.cli import main

ENV = "mujoco:pick_place"


def collect(out: Path, *extra: str, episodes: int = 3) -> int:
    """`agent collect` in-process; returns its exit code."""
    return main(["collect", "--env", ENV, "--policy", "scripted", "--episodes", str(episodes),
                 "--out", str(out), *extra])
