"""`agent collect --expert` (DAgger): a learned policy acts, the scripted expert labels.

Real MuJoCo, real files; the learner is the suite's briefly trained nano policy, which fails
pick_place, so its episode is exactly the kind DAgger keeps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.cli import main
from agent.relabel import ExpertLabels
from agent.runtime import ChunkBroker
from dataset import LeRobotDatasetReader
from policies.registry import load_policy
from policies.training.data import load_demos
from tests.agent.conftest import ENV, fails_with_one_line, rerun_labelled


@pytest.fixture(scope="module")
def dagger(nano_checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dagger") / "pp_dagger"
    run, _ = nano_checkpoint
    assert main(["collect", "--env", ENV, "--policy", str(run), "--expert", "scripted",
                 "--episodes", "1", "--out", str(out), "--vcodec", "h264"]) == 0
    return out


def _rerun(run: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(applied, label) actions of episode `seed`, run again outside the recorder."""
    agent = ExpertLabels(ChunkBroker(load_policy(str(run))), ChunkBroker(load_policy("scripted")))
    return rerun_labelled(ENV, agent, seed)


def test_learner_acts_and_the_expert_labels(dagger: Path, nano_checkpoint):
    ds = LeRobotDatasetReader(dagger)
    assert ds.has_expert_action and ds.recording["expert"] == "scripted"
    ep = ds.episode(0)
    assert not ep.success  # kept: a failed rollout's states are what DAgger is for
    applied, labels = _rerun(nano_checkpoint[0], ep.seed)
    np.testing.assert_array_equal(ep.action, applied)  # what was sent is what is recorded
    np.testing.assert_array_equal(ep.expert_action, labels)
    assert np.abs(ep.action - ep.expert_action).max() > 0.01  # two policies, two columns


def test_training_reads_failed_dagger_episodes_with_the_expert_labels(dagger: Path):
    demos = load_demos([dagger])
    ep = LeRobotDatasetReader(dagger).episode(0)
    assert len(demos) == 1
    np.testing.assert_array_equal(demos[0].action, ep.expert_action)


def test_expert_with_action_noise_or_labelling_itself_is_refused(tmp_path: Path, capsys):
    base = ["collect", "--env", ENV, "--episodes", "1", "--out", str(tmp_path / "x")]
    err = fails_with_one_line([*base, "--policy", "scripted", "--expert", "scripted"], capsys)
    assert "would label its own states" in err
    err = fails_with_one_line([*base, "--policy", "checkpoints/default", "--expert", "scripted",
                               "--action-noise", "0.01"], capsys)
    assert "choose one" in err


def test_resume_refuses_another_labeller(dagger: Path, nano_checkpoint, capsys):
    err = fails_with_one_line(["collect", "--env", ENV, "--policy", str(nano_checkpoint[0]),
                               "--episodes", "2", "--out", str(dagger), "--resume"], capsys)
    assert "recorded with --expert scripted, this recording has no --expert" in err
