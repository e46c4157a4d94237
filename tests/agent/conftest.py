"""Helpers of the collect/dataset/replay tests (the shared dataset and video run live in
tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from agent.cli import main

ENV = "mujoco:pick_place"


def collect(out: Path, *extra: str, episodes: int = 3, env: str = ENV) -> int:
    """`agent collect` in-process; returns its exit code."""
    return main(["collect", "--env", env, "--policy", "scripted", "--episodes", str(episodes),
                 "--out", str(out), *extra])


def fails_with_one_line(argv: list[str], capsys) -> str:
    """Runs `agent ARGV` in-process and checks it refused the input the way a user should see
    it: exit code 2 and exactly one line on stderr, `error: ...`. Returns that line."""
    import pytest

    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err.strip()
