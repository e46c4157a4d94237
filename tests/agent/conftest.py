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


def rerun_labelled(env_spec: str, agent, seed: int):
    """(applied, label) actions of episode `seed` of a labelling agent (NoisyAgent's or
    ExpertLabels' `clean`), run again outside the recorder: what collect must have recorded."""
    import numpy as np

    import envs
    from agent.runtime import run_episode
    from agent.timing import StageTimer

    env = envs.make(env_spec)
    agent.seed(seed)
    applied, labels = [], []

    def hook(obs, action, info):
        applied.append(action)
        labels.append(agent.clean)

    run_episode(env, agent, seed, StageTimer(), on_step=hook)
    env.close()
    return np.stack(applied), np.stack(labels)
