"""`bridge:tcp://...` through envs.make: TableTopEnv's contract, applied actions, real arms."""

import numpy as np
import pytest

import envs
from envs.types import Observation
from policies.scripted import NoPrivilegedStateError, ScriptedExpert
from tests.hw_bridge.conftest import Running
from tests.hw_bridge.fakes import FlakyDriver


@pytest.fixture
def bridge_env():
    r = Running(FlakyDriver("pick_place", image_size=(32, 32)), stream_hz=30.0)
    env = envs.make(f"bridge:{r.endpoint}")
    yield env, r
    env.close()
    r.close()


def test_contract_matches_tabletop(bridge_env):
    env, _ = bridge_env
    sim = envs.make("mujoco:pick_place", image_size=32)
    assert env.action_space == sim.action_space
    assert env.observation_space["state"] == sim.observation_space["state"]
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs) and info["privileged"]["task"] == "pick_place"
    assert "put the" in obs["instruction"]
    obs, reward, terminated, truncated, info = env.step(np.array([0.05, 0, 0, 0, 0, 0, 0.0]))
    assert env.observation_space.contains(obs) and not truncated
    applied = info["applied_action"]
    assert applied.shape == (7,) and applied[0] > 0.02  # what the arm was told, via FK
    assert set(info["applied_command"]) == {"q", "gripper", "clamped"}
    sim.close()


def test_real_arm_sends_no_ground_truth_and_the_expert_says_so(bridge_env):
    env, running = bridge_env
    running.driver.real_arm = True
    obs, info = env.reset(seed=0)
    assert "privileged" not in info
    with pytest.raises(NoPrivilegedStateError):
        ScriptedExpert().infer(Observation.from_env(obs, info))


def test_estop_truncates_the_episode_with_a_failure(bridge_env):
    env, running = bridge_env
    env.reset(seed=0)
    env.client.estop("test")
    _, _, _, truncated, info = env.step(np.zeros(7, np.float32))
    assert truncated and "estop" in info["failure"]
    env.reset(seed=1)  # reset clears the latch
    assert not env.step(np.zeros(7, np.float32))[3]


def test_reset_reopens_a_session_that_ended_before_it(bridge_env):
    # As when the watchdog fires while `agent run` is busy building its policy: the server ended
    # the session and no reply has told the client yet. reset() starts a new episode from a held
    # arm, so it opens a fresh session instead of failing.
    env, _ = bridge_env
    old = env.client.session
    env.client.request("bye", session=old)  # the server forgets it; the client does not know
    obs, _ = env.reset(seed=2)
    assert env.client.session not in (None, old)
    assert env.observation_space.contains(obs)
    _, _, _, truncated, info = env.step(np.zeros(7, dtype=np.float32))
    assert not truncated and "failure" not in info
