"""`observation.environment_state`: the simulator's object poses recorded beside each frame.

Real MuJoCo and real files; mujoco:reach keeps episodes short.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import envs
from agent.cli import main
from agent.runtime import ChunkBroker, run_episode
from agent.timing import StageTimer
from dataset import LeRobotDatasetReader
from envs.features import env_state_names, env_state_vector
from policies.registry import load_policy
from policies.training.data import load_demos


@pytest.fixture(scope="module")
def reach(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("envstate") / "reach"
    assert main(["collect", "--env", "mujoco:reach", "--policy", "scripted", "--episodes", "2",
                 "--out", str(out), "--vcodec", "h264"]) == 0
    return out


def test_feature_is_declared_with_goal_slots_first(reach: Path) -> None:
    ds = LeRobotDatasetReader(reach)
    names = ds.env_state_names
    assert names[:3] == ["goal_object.x", "goal_object.y", "goal_object.z"]
    assert names[7:10] == ["goal_target.x", "goal_target.y", "goal_target.z"]
    assert [n for n in names if n.endswith(".x")][2:] == ["red_ball.x", "green_ball.x",
                                                          "blue_ball.x"]
    assert ds.features["observation.environment_state"]["shape"] == [len(names)]


def test_recorded_poses_are_the_simulators(reach: Path) -> None:
    """Every frame's vector equals the env's ground truth at that frame, rerun from its seed."""
    ds = LeRobotDatasetReader(reach)
    ep = ds.episode(1)
    env = envs.make("mujoco:reach")
    names = env_state_names(env)
    seen: list[np.ndarray] = []
    run_episode(env, ChunkBroker(load_policy("scripted")), ep.seed, StageTimer(),
                on_step=lambda obs, a, info: seen.append(env_state_vector(obs.privileged, names)))
    env.close()
    assert ep.env_state is not None and ep.env_state.shape == (ep.length, len(names))
    np.testing.assert_allclose(ep.env_state, np.stack(seen), atol=1e-6)
    # reach names no object, so the goal_object slot repeats the target ball.
    np.testing.assert_array_equal(ep.env_state[:, :7], ep.env_state[:, 7:14])
    target = [n.split(".")[0] for n in names[14::7]]
    instruction_ball = next(b for b in target if b.split("_")[0] in ep.task)
    k = 14 + 7 * target.index(instruction_ball)
    np.testing.assert_array_equal(ep.env_state[:, 7:14], ep.env_state[:, k:k + 7])


def test_demos_carry_env_state(reach: Path) -> None:
    demos = load_demos([reach])
    assert all(d.env_state is not None and len(d.env_state) == len(d.action) for d in demos)


def test_bridge_like_env_without_ground_truth_records_none() -> None:
    class NoTruth:
        unwrapped = object()

    assert env_state_names(NoTruth()) == ()
