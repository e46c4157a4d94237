import numpy as np
import pytest

from sims.base import (
    ObjectSpec,
    Placement,
    axis_angle_from_quat,
    quat_from_axis_angle,
    quat_from_yaw,
    quat_mul,
)
from sims.mujoco_sim import HOME_QPOS, MujocoSim

DOWN = np.array([0.0, 0.0, 1.0, 0.0])


@pytest.fixture(scope="module")
def sim():
    s = MujocoSim([ObjectSpec("red_cube", "cube", "red")])
    s.reset([Placement("red_cube", (0.45, 0.0, 0.02), 0.0)])
    yield s
    s.close()


def test_home_pose_points_the_gripper_down(sim):
    pos, quat = sim.ee_pose()
    assert 0.35 < pos[0] < 0.5 and abs(pos[1]) < 1e-3 and 0.25 < pos[2] < 0.4
    assert abs(abs(np.dot(quat, DOWN)) - 1) < 1e-3
    np.testing.assert_allclose(sim.joint_positions(), HOME_QPOS, atol=2e-3)
    assert sim.gripper_opening() == pytest.approx(0.08, abs=1e-3)


@pytest.mark.parametrize("target", [(0.33, -0.22, 0.02), (0.6, 0.22, 0.02), (0.45, 0.0, 0.3)])
@pytest.mark.parametrize("yaw", [-0.7, 0.0, 0.7])
def test_ik_reaches_workspace_corners(sim, target, yaw):
    quat = quat_mul(quat_from_yaw(yaw), DOWN)
    q = np.array(HOME_QPOS)
    for _ in range(20):  # the env re-solves every control step from the last solution
        q = sim.solve_ik(np.array(target), quat, q)
    lower, upper = np.array(sim.robot.joint_lower), np.array(sim.robot.joint_upper)
    assert np.all(q >= lower) and np.all(q <= upper)
    probe = MujocoSim([])
    probe.data.qpos[:6] = q
    import mujoco

    mujoco.mj_forward(probe.model, probe.data)
    pos, got = probe.ee_pose()
    np.testing.assert_allclose(pos, target, atol=1e-3)
    assert abs(abs(np.dot(got, quat)) - 1) < 1e-4


def test_servos_track_a_joint_target(sim):
    q = np.array(HOME_QPOS) + 0.1
    sim.set_joint_targets(q, gripper=1.0)
    sim.physics_step(250)  # 0.5 s
    np.testing.assert_allclose(sim.joint_positions(), q, atol=5e-3)
    assert sim.gripper_opening() < 0.005


def test_quaternion_helpers_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        v = rng.uniform(-1, 1, 3)
        np.testing.assert_allclose(axis_angle_from_quat(quat_from_axis_angle(v)), v, atol=1e-9)


def test_unknown_placement_name_is_an_error(sim):
    with pytest.raises(KeyError, match="no object 'blue_cube'"):
        sim.reset([Placement("blue_cube", (0.4, 0, 0.02))])
