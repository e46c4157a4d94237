"""`agent run --takeover DEVICE --dataset OUT`: the operator takes over and hands back; every
frame says who acted, and the human's frames hold the actions the device gave (as applied).

The operator is `ScriptedOperator`, a TeleopDevice written here: no hardware library is
involved, so it is the device interface itself that stands in for a human.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import envs
from agent.cli import main
from agent.execution import SyncBroker
from agent.teleop import registry
from agent.teleop.base import TeleopCommand, TeleopDevice
from agent.teleop.takeover import TakeoverAgent
from dataset import LeRobotDatasetReader
from dataset.edit import merge
from dataset.layout import INTERVENTION_KEY
from envs.types import Observation
from policies.registry import load_policy
from tests.dataset.lerobot_schema import lerobot_problems

K1, K2 = 5, 15  # takeover at the 6th frame, handback at the 16th


def operator_action(k: int) -> np.ndarray:
    """What the pretend operator commands at its k-th read: a slow upward spiral, gripper
    open; every value inside the env's bounds, so the env applies it unchanged."""
    return np.array([0.01 * np.sin(k / 3), 0.01 * np.cos(k / 3), 0.004, 0.0, 0.0, 0.05, 0.0],
                    dtype=np.float32)


class ScriptedOperator(TeleopDevice):
    """Sends `takeover` at read k1, `handback` at read k2 and `stop` at read k_stop (if
    given); acts with `operator_action`."""

    name = "scripted"

    def __init__(self, k1: int, k2: int, k_stop: int = -1) -> None:
        self.k1, self.k2, self.k_stop, self.reads = k1, k2, k_stop, 0
        self.connected = self.closed = False

    def connect(self) -> None:
        self.connected = True

    def read(self, obs: Observation) -> TeleopCommand:
        assert self.connected and obs.state.ndim == 1
        k, self.reads = self.reads, self.reads + 1
        events = {"takeover"} if k == self.k1 else {"handback"} if k == self.k2 else set()
        if k == self.k_stop:
            events.add("stop")
        return TeleopCommand(operator_action(k), frozenset(events), engaged=True)

    def close(self) -> None:
        self.closed = True


class ToggleOperator(ScriptedOperator):
    """Presses one toggle key at reads k1 and k2, as the keyboard's `t` does: each press sends
    both takeover and handback, and only the one that applies may act."""

    def read(self, obs: Observation) -> TeleopCommand:
        k = self.reads
        cmd = super().read(obs)
        toggle = frozenset({"takeover", "handback"}) if k in (self.k1, self.k2) else frozenset()
        return TeleopCommand(cmd.action, toggle, cmd.engaged)


@pytest.fixture
def scripted_operator(monkeypatch):
    monkeypatch.setitem(registry.DEVICES, "scripted",
                        lambda arg: ScriptedOperator(*(int(x) for x in arg.split(","))))
    monkeypatch.setitem(registry.DEVICES, "toggle",
                        lambda arg: ToggleOperator(*(int(x) for x in arg.split(","))))


def test_takeover_run_labels_exactly_the_human_frames(scripted_operator, tmp_path, capsys):
    out = tmp_path / "hil"
    assert main(["run", "--env", "mujoco:pick_place", "--policy", "scripted", "--episodes", "1",
                 "--rate", "0", "--takeover", f"scripted:{K1},{K2}", "--dataset", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ds = LeRobotDatasetReader(out)
    assert lerobot_problems(out) == []  # what LeRobot's own loader needs (tests/dataset)
    ep = ds.episode(0)
    expected = np.zeros(ep.length, bool)
    expected[K1:K2] = True
    assert ep.intervention is not None and np.array_equal(ep.intervention, expected)
    human = np.stack([operator_action(k) for k in range(K1, K2)])
    assert np.array_equal(ep.action[K1:K2], human)  # the device's, as the env applied them
    # The policy's frames are not the operator's (the label really tells them apart).
    assert not np.allclose(ep.action[K1 - 1], operator_action(K1 - 1))
    assert not np.allclose(ep.action[K2], operator_action(K2))
    assert ds.features[INTERVENTION_KEY] == {"dtype": "bool", "shape": [1], "names": None}
    assert ds.has_intervention and ds.recording["takeover"] == f"scripted:{K1},{K2}"
    assert np.isclose(ds.stats[INTERVENTION_KEY]["mean"][0], (K2 - K1) / ep.length)
    assert summary["takeover"]["takeovers"] == 1
    assert summary["takeover"]["human_steps"] == K2 - K1
    assert summary["takeover"]["policy_steps"] == ep.length - (K2 - K1)
    # `agent dataset edit` keeps the column (a merge of the run with itself).
    merged = merge([out, out], tmp_path / "merged")
    assert merged.has_intervention
    assert all(np.array_equal(merged.episode(k).intervention, expected) for k in (0, 1))


def test_the_stop_key_ends_the_run_after_its_episode(scripted_operator, tmp_path, capsys):
    out = tmp_path / "hil"
    assert main(["run", "--env", "mujoco:pick_place", "--policy", "scripted", "--episodes", "3",
                 "--rate", "0", "--takeover", "scripted:2,4,6", "--dataset", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["episodes"] == 1 and LeRobotDatasetReader(out).num_episodes == 1


def test_dataset_needs_takeover_and_an_unknown_device_is_one_line(tmp_path, capsys):
    from tests.agent.conftest import fails_with_one_line

    err = fails_with_one_line(["run", "--env", "mujoco:pick_place", "--policy", "scripted",
                               "--dataset", str(tmp_path / "x")], capsys)
    assert "--takeover" in err
    err = fails_with_one_line(["run", "--env", "mujoco:pick_place", "--policy", "scripted",
                               "--takeover", "gamepda"], capsys)
    assert "did you mean 'gamepad'" in err


def test_handback_drops_the_chunk_planned_before_the_takeover(nano_checkpoint):
    run_dir, _ = nano_checkpoint
    broker = SyncBroker(load_policy(str(run_dir)))
    operator = ScriptedOperator(2, 5)
    operator.connect()
    agent = TakeoverAgent(broker, operator)
    env = envs.make("mujoco:pick_place")
    try:
        obs, info = env.reset(seed=0)
        agent.reset()
        inferred_at, human = [], []
        for step in range(8):
            n = len(broker.stats.inference_s)
            action = agent.act(Observation.from_env(obs, info))
            human.append(agent.human)
            if len(broker.stats.inference_s) > n:
                inferred_at.append(step)
            obs, _, _, _, info = env.step(action)
    finally:
        env.close()
    execute = broker.policy.config.execute
    assert execute >= 4  # else steps 5..7 would need a new chunk anyway
    assert human == [False, False, True, True, True, False, False, False]
    # A fresh inference at the handback (step 5), not the rest of step 0's chunk.
    assert inferred_at == [0, 5]
    agent.close()
    assert operator.closed


def test_train_refuses_intervention_flags_on_data_without_the_column(small_dataset, tmp_path,
                                                                     capsys):
    from tests.agent.conftest import fails_with_one_line

    for flag in (["--only-interventions"], ["--intervention-weight", "3"]):
        err = fails_with_one_line(["train", "--data", str(small_dataset), "--out",
                                   str(tmp_path / "run"), "--model", "nano", *flag], capsys)
        assert "none of the training datasets has one" in err
    assert not (tmp_path / "run").exists()


def test_one_toggle_key_takes_over_and_hands_back(scripted_operator, tmp_path):
    out = tmp_path / "hil"
    assert main(["run", "--env", "mujoco:pick_place", "--policy", "scripted", "--episodes", "1",
                 "--rate", "0", "--takeover", f"toggle:{K1},{K2}", "--dataset", str(out)]) == 0
    ep = LeRobotDatasetReader(out).episode(0)
    expected = np.zeros(ep.length, bool)
    expected[K1:K2] = True
    assert ep.intervention is not None and np.array_equal(ep.intervention, expected)
