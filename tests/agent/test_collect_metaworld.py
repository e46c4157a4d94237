"""`agent collect` and `agent eval` on `metaworld:` envs: Meta-World's own scripted policy
recorded into a LeRobot v3.0 dataset, and its actions through the action tokenizer training
uses. Real Meta-World in .venv-metaworld (skipped, saying why, without it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import collect

from action_codec.binning import BinningCodec, BinningConfig
from agent.cli import main
from dataset import LeRobotDatasetReader
from envs.metaworld import DESCRIPTIONS
from envs.metaworld.venv import MetaWorldNotInstalledError, worker_python

try:
    worker_python()
    NO_VENV = None
except MetaWorldNotInstalledError as e:
    NO_VENV = str(e)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(NO_VENV is not None, reason=f"no Meta-World venv: {NO_VENV}")]


def test_collect_records_metaworld_scripted_demos_the_tokenizer_encodes(tmp_path: Path):
    out = tmp_path / "mw"
    assert collect(out, "--vcodec", "h264", episodes=2, env="metaworld:mt10") == 0
    ds = LeRobotDatasetReader(out)
    assert ds.num_episodes == 2 and ds.fps == 80
    assert ds.camera_keys == ["observation.images.corner2", "observation.images.gripperPOV"]
    assert ds.state_names[:7] == [f"right_j{i}" for i in range(7)]
    assert ds.tasks == [DESCRIPTIONS["reach"], DESCRIPTIONS["push"]]  # seeds 0, 1 of MT10
    actions = np.concatenate([ds.episode(k).action for k in range(2)])
    assert np.all(actions[:, 3:6] == 0.0) and np.abs(actions[:, :3]).max() <= 0.01 + 1e-7
    assert all(ds.episode(k).success for k in range(2))
    # The quantile codec agent train fits on actions: it must take the constant rotation dims.
    codec = BinningCodec(BinningConfig(strategy="quantile", n_bins=256)).fit(actions)
    back = codec.decode(codec.encode(actions))
    np.testing.assert_array_equal(back[:, 3:6], 0.0)
    assert np.abs(back - actions).max() < 2e-3


def test_eval_reports_per_task_success(tmp_path: Path, capsys):
    capsys.readouterr()
    code = main(["eval", "--env", "metaworld:mt10", "--policy", "scripted", "--episodes", "2",
                 "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert set(summary["per_task"]) == {"reach", "push"}  # seeds 1000000, 1000001
    assert all(t["episodes"] == 1 for t in summary["per_task"].values())
    assert summary["success_rate"] == 1.0


def test_eval_with_random_goals_says_so(capsys):
    # LeRobot's protocol draws each episode's goal afresh; `--goals random` does it seeded.
    capsys.readouterr()
    code = main(["eval", "--env", "metaworld:reach", "--policy", "scripted", "--episodes", "1",
                 "--goals", "random", "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["goals"] == "random" and summary["success_rate"] == 1.0
