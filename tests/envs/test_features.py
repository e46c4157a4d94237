"""Named state and action layouts (envs.features): names <-> layout, and what the groups slice
out of a real env's state."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import envs
from envs.errors import LayoutError
from envs.features import (
    ACTION_LAYOUT,
    ACTION_NAMES,
    EE_NAMES,
    ActionLayout,
    StateLayout,
    roll_forward,
)
from sims.base import quat_from_axis_angle, quat_mul


@pytest.fixture(scope="module", params=["mujoco:pick_place", "pybullet:pick_place"])
def env(request):
    env = envs.make(request.param)
    yield env
    env.close()


def test_names_layout_names_round_trip_for_each_sim_arm(env):
    robot = env.unwrapped.sim.robot
    layout = StateLayout.for_robot(robot)
    assert layout.to_names() == [*robot.joint_names, *EE_NAMES]
    assert StateLayout.from_names(layout.to_names()) == layout
    assert layout.dim == robot.state_dim == env.observation_space["state"].shape[0]
    assert layout.n_joints == robot.n_joints and layout.joint_names == robot.joint_names
    assert env.unwrapped.state_layout == layout and env.unwrapped.action_layout == ACTION_LAYOUT


def test_groups_slice_the_sims_own_pose_out_of_the_state(env):
    """The state the env returns, sliced by name, is what the simulator measures: after reset
    and after a step that moves and closes the gripper."""
    u = env.unwrapped
    layout, sim = u.state_layout, u.sim
    obs, _ = env.reset(seed=3)
    action = np.zeros(ACTION_LAYOUT.dim, np.float32)
    action[ACTION_LAYOUT.dpos] = [0.02, -0.01, 0.03]
    action[ACTION_LAYOUT.gripper] = 1.0
    for _ in range(2):
        state = obs["state"]
        pos, quat = sim.ee_pose()
        np.testing.assert_allclose(state[layout.ee_pos], pos, atol=1e-6)
        np.testing.assert_allclose(state[layout.ee_quat], quat, atol=1e-6)
        np.testing.assert_allclose(state[layout.joints], sim.joint_positions(), atol=1e-6)
        assert state[layout.gripper_opening] == pytest.approx(sim.gripper_opening(), abs=1e-6)
        obs, *_ = env.step(action)


def test_action_groups_are_the_documented_dims():
    a = ACTION_LAYOUT
    names = np.array(ACTION_NAMES)
    assert list(names[a.dpos]) == ["dx", "dy", "dz"]
    assert list(names[a.drot]) == ["drx", "dry", "drz"]
    assert list(names[a.motion]) == ["dx", "dy", "dz", "drx", "dry", "drz"]
    assert names[a.gripper] == "gripper" and a.dim == 7
    assert ActionLayout.from_names(a.to_names()) == a == ActionLayout()


@given(st.lists(st.text(min_size=1, max_size=8).filter(lambda n: n not in EE_NAMES),
                min_size=1, max_size=9, unique=True))
def test_any_distinct_joint_names_round_trip(joints):
    layout = StateLayout.from_names([*joints, *EE_NAMES])
    assert layout.to_names() == [*joints, *EE_NAMES]
    assert layout.joints == slice(0, len(joints)) and layout.gripper_opening == len(joints) + 7
    state = np.arange(layout.dim)
    assert list(state[layout.ee_pos]) == [len(joints), len(joints) + 1, len(joints) + 2]
    assert list(state[layout.ee_quat]) == [len(joints) + k for k in range(3, 7)]


@pytest.mark.parametrize(("names", "why"), [
    (["state_0", "state_1", "state_2"], r"\['ee_x', .*\] are missing"),
    (list(EE_NAMES), "no joint names come before them"),
    (["j1", *EE_NAMES[1:], EE_NAMES[0]], "must be the last 8 names, in that order"),
    (["j1", "j1", *EE_NAMES], r"\['j1'\] appear more than once"),
    (["", *EE_NAMES], "non-empty string"),
])
def test_names_that_are_no_state_layout_say_what_was_got_and_what_is_allowed(names, why):
    with pytest.raises(LayoutError, match=why) as e:
        StateLayout.from_names(names)
    assert str(list(names)) in str(e.value) and "allowed: joint names, then" in str(e.value)


def test_other_action_names_are_refused():
    with pytest.raises(LayoutError, match=r"action names \['vx'.*allowed: exactly \['dx'"):
        ActionLayout.from_names(["vx", "vy", "vz", "wx", "wy", "wz", "grip"])


def test_describe_names_the_joints():
    layout = StateLayout(("a", "b", *EE_NAMES))
    assert layout.describe() == "state [a, b] + EE pose and gripper opening (10 values)"


def test_roll_forward_composes_deltas_as_the_env_does():
    env = envs.make("mujoco:pick_place")
    obs, _ = env.reset(seed=3)
    layout = env.unwrapped.state_layout
    s0 = obs["state"]
    acts = np.array([[0.01, -0.005, 0.004, 0.0, 0.0, 0.05, 0.04]] * 3, np.float32)
    out = roll_forward(s0, acts, layout)
    np.testing.assert_allclose(out[layout.ee_pos], s0[layout.ee_pos] + acts[:, :3].sum(0),
                               atol=1e-6)
    q = s0[layout.ee_quat].astype(np.float64)
    for a in acts:
        q = quat_mul(quat_from_axis_angle(a[3:6].astype(np.float64)), q)
    np.testing.assert_allclose(out[layout.ee_quat], q / np.linalg.norm(q), atol=1e-6)
    np.testing.assert_array_equal(out[layout.joints], s0[layout.joints])
    assert out[layout.gripper_opening] == s0[layout.gripper_opening]
    np.testing.assert_array_equal(roll_forward(s0, acts[:0], layout), s0)
    # The arm moves the way the deltas point (less far: the controller covers part per tick).
    for a in acts:
        obs, *_ = env.step(a)
    env.close()
    moved = obs["state"][layout.ee_pos] - s0[layout.ee_pos]
    told = out[layout.ee_pos] - s0[layout.ee_pos]
    assert np.dot(moved, told) / (np.linalg.norm(moved) * np.linalg.norm(told)) > 0.9
