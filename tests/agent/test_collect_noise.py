"""`agent collect --action-noise` (DART): noisy execution, clean `expert_action` labels.

Real MuJoCo, real files; mujoco:reach keeps episodes short.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.action_noise import ActionNoise, NoisyAgent
from agent.cli import main
from agent.runtime import ChunkBroker
from dataset import LeRobotDatasetReader
from policies.registry import load_policy
from policies.training.data import load_demos
from tests.agent.conftest import rerun_labelled

REACH = "mujoco:reach"
NOISE = "0.01,0.05"
POS, ROT, GRIP = slice(0, 3), slice(3, 6), 6


def _collect(out: Path, *extra: str, episodes: int = 3) -> int:
    return main(["collect", "--env", REACH, "--policy", "scripted", "--episodes", str(episodes),
                 "--out", str(out), "--vcodec", "h264", *extra])


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("noise") / "reach_dart"
    assert _collect(out, "--action-noise", NOISE, "--episodes-per-file", "2") == 0
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("noise") / "reach_clean"
    assert _collect(out, episodes=1) == 0
    return out


def _rerun(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(applied, clean) actions of the noisy episode `seed`, run again outside the recorder."""
    agent = NoisyAgent(ChunkBroker(load_policy("scripted")), ActionNoise.parse(NOISE))
    return rerun_labelled(REACH, agent, seed)


def test_noisy_collect_records_applied_and_expert_actions(noisy: Path):
    ds = LeRobotDatasetReader(noisy)
    assert ds.has_expert_action and ds.features["expert_action"] == ds.features["action"]
    assert ds.recording["action_noise"]["pos_std_m"] == 0.01
    assert ds.recording["action_noise"]["rot_std_rad"] == 0.05
    diffs = []
    for ep in ds:
        applied, clean = _rerun(ep.seed)
        np.testing.assert_array_equal(ep.action, applied)  # what was sent is what is recorded
        np.testing.assert_array_equal(ep.expert_action, clean)
        np.testing.assert_array_equal(ep.action[:, GRIP], ep.expert_action[:, GRIP])
        diffs.append(ep.action - ep.expert_action)
    d = np.concatenate(diffs).astype(np.float64)
    # The env clips, which can only shrink the noise; ~20 frames x 3 dims per estimate.
    assert 0.006 < d[:, POS].std() < 0.014, d[:, POS].std()
    assert 0.03 < d[:, ROT].std() < 0.07, d[:, ROT].std()
    stats = json.loads((noisy / "meta/stats.json").read_text())
    assert len(stats["expert_action"]["mean"]) == 7


def test_noise_free_collect_keeps_todays_features(clean: Path):
    ds = LeRobotDatasetReader(clean)
    assert "expert_action" not in ds.features and not ds.has_expert_action
    assert ds.episode(0).expert_action is None and "action_noise" not in ds.recording
    assert "expert_action" not in json.loads((clean / "meta/stats.json").read_text())


def test_same_noisy_dataset_with_one_or_two_workers(noisy: Path, tmp_path: Path):
    out = tmp_path / "par"
    assert _collect(out, "--action-noise", NOISE, "--num-envs", "2", episodes=2) == 0
    a, b = LeRobotDatasetReader(noisy), LeRobotDatasetReader(out)
    for k in range(2):
        ea, eb = a.episode(k), b.episode(k)
        np.testing.assert_array_equal(ea.action, eb.action)
        np.testing.assert_array_equal(ea.expert_action, eb.expert_action)


@pytest.mark.parametrize("value", ["-0.01", "nan", "inf", "abc", "0.01,-0.1", "0.01,0.05,0.1",
                                   ""])
def test_bad_action_noise_is_refused(tmp_path: Path, value: str):
    with pytest.raises(SystemExit, match="(--action-noise|action noise)") as e:
        _collect(tmp_path / "x", "--action-noise", value, episodes=1)
    assert e.value.code == 2  # one `error: ...` line (BadInput), not a traceback
    assert not (tmp_path / "x").exists()


def test_rotation_std_defaults_to_five_times_position():
    assert ActionNoise.parse("0.02") == ActionNoise(0.02, 0.1)
    assert ActionNoise.parse("0.01, 0") == ActionNoise(0.01, 0.0)


def test_resume_refuses_mixing_noisy_and_clean(noisy: Path, clean: Path):
    with pytest.raises(SystemExit, match="expert_action: in this recording, not in the dataset"):
        _collect(clean, "--resume", "--action-noise", NOISE, episodes=2)
    with pytest.raises(SystemExit, match="expert_action: in the dataset, not in this recording"):
        _collect(noisy, "--resume", episodes=4)
    with pytest.raises(SystemExit, match="recorded with action noise"):
        _collect(noisy, "--resume", "--action-noise", "0.02", episodes=4)
    assert LeRobotDatasetReader(noisy).num_episodes == 3


def test_load_demos_label_selection(noisy: Path, clean: Path):
    ds = LeRobotDatasetReader(noisy)
    ep = ds.episode(0)
    assert np.array_equal(load_demos([noisy])[0].action, ep.expert_action)
    assert np.array_equal(load_demos([noisy], labels="expert")[0].action, ep.expert_action)
    assert np.array_equal(load_demos([noisy], labels="applied")[0].action, ep.action)
    mixed = load_demos([noisy, clean])  # auto: per dataset
    assert np.array_equal(mixed[0].action, ep.expert_action)
    assert np.array_equal(mixed[-1].action, LeRobotDatasetReader(clean).episode(0).action)
    with pytest.raises(ValueError, match=f"dataset {clean} has no expert_action labels"):
        load_demos([noisy, clean], labels="expert")
    with pytest.raises(ValueError, match="labels must be one of"):
        load_demos([noisy], labels="clean")


def test_dataset_info_shows_expert_labels_and_noise(noisy: Path, clean: Path, capsys):
    assert main(["dataset", "info", str(noisy)]) == 0
    assert "expert labels: yes (expert_action)" in capsys.readouterr().out
    assert main(["dataset", "info", str(clean), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["expert_labels"] is False and s["action_noise"] is None
