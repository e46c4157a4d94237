"""`agent replay`: recorded actions from the recorded seed reproduce the recording."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import envs
from agent.cli import main
from agent.commands.replay import replay
from dataset import LeRobotDatasetReader


def test_replay_reproduces_recorded_scripted_episode(small_dataset: Path, capsys):
    assert main(["replay", str(small_dataset), "--episode", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["seed"] == 1 and result["replayed_success"] and result["recorded_success"]
    assert result["max_state_error"] < 1e-5


def test_replay_detects_a_different_recording(small_dataset: Path):
    ds = LeRobotDatasetReader(small_dataset)
    ep = ds.episode(0)
    env = envs.make("mujoco:pick_place")
    try:
        _, worst, _ = replay(env, ep.state, ep.action, seed=ep.seed + 1)  # wrong seed
    finally:
        env.close()
    assert worst > 1e-3 or not np.isfinite(worst)


def test_replay_unknown_episode(small_dataset: Path):
    import pytest

    with pytest.raises(SystemExit, match="episode 7 not in"):
        main(["replay", str(small_dataset), "--episode", "7"])
