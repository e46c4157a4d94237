"""Any described arm on the table (sims.scene) and its kinematics (sims.kinematics)."""

import numpy as np
import pytest

from sims.base import GRIPPER_DOWN, quat_from_yaw, quat_mul
from sims.kinematics import ArmKinematics
from sims.mujoco_sim import MujocoSim
from sims.robots import known_robots, load_robot
from sims.tasks import TABLE_X, TABLE_Y, make_task

BUILT = [r for r in known_robots() if load_robot(r).model.suffix != ".xml"]  # panda, iiwa14


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.arccos(min(1.0, abs(float(np.dot(a, b))))))


@pytest.mark.parametrize("name", known_robots())
def test_home_points_the_gripper_down_inside_the_safety_box(name):
    desc = load_robot(name)
    pos, quat = ArmKinematics(desc).fk(np.array(desc.home))
    assert _angle(quat, GRIPPER_DOWN) < 0.01, quat  # the EE-delta contract's home orientation
    assert np.all(pos >= desc.safety.workspace_low) and np.all(pos <= desc.safety.workspace_high)


@pytest.mark.parametrize("name", BUILT)
def test_a_built_arm_holds_home_and_its_gripper_opens_and_closes(name):
    task = make_task("pick_place")
    sim = MujocoSim(list(task.objects), image_size=(32, 32), robot=name)
    try:
        desc = load_robot(name)
        assert sim.robot == desc.spec()  # the model's limits are the description's
        sim.reset(task.sample(np.random.default_rng(0)).placements)
        sim.set_joint_targets(np.array(desc.home), 0.0)
        sim.physics_step(250)
        np.testing.assert_allclose(sim.joint_positions(), desc.home, atol=2e-3)
        assert sim.gripper_opening() == pytest.approx(desc.gripper.max_opening, abs=2e-3)
        pos, _ = sim.ee_pose()
        np.testing.assert_allclose(pos, ArmKinematics(desc).fk(np.array(desc.home))[0],
                                   atol=2e-3)  # the scene's tcp is the kinematics' tcp
        sim.set_joint_targets(np.array(desc.home), 1.0)
        sim.physics_step(250)
        assert sim.gripper_opening() < 2e-3
        assert {"front", "wrist"} <= set(sim.camera_names)
        assert sim.render("wrist").shape == (32, 32, 3) and sim.render("wrist").std() > 1
        assert sim.divergence() is None
    finally:
        sim.close()


@pytest.mark.parametrize("name", known_robots())
def test_ik_reaches_the_tasks_table_region_within_its_limits(name):
    desc = load_robot(name)
    kin = ArmKinematics(desc)
    rng = np.random.default_rng(1)
    q = np.array(desc.home)
    for _ in range(15):
        target = np.array([rng.uniform(*TABLE_X), rng.uniform(*TABLE_Y), rng.uniform(0.03, 0.3)])
        quat = quat_mul(quat_from_yaw(rng.uniform(-0.7, 0.7)), GRIPPER_DOWN)
        start, _ = kin.fk(q)
        for f in np.linspace(0.1, 1.0, 10):  # as the env asks: <= 5 cm per step
            q = kin.solve_ik(start + f * (target - start), quat, q)
        pos, got = kin.fk(q)
        assert np.linalg.norm(pos - target) < 1e-4, (name, target, pos)
        assert _angle(got, quat) < 1e-3
        assert np.all(q >= np.array(desc.joint_lower) - 1e-6)
        assert np.all(q <= np.array(desc.joint_upper) + 1e-6)


def test_mk6_ik_matches_its_sims_own_solver():
    """mink's damped step is the DLS step mk6's sim has always taken: same answers."""
    sim = MujocoSim([])
    kin = ArmKinematics(load_robot("mk6"))
    q = np.array(sim.robot.home_qpos)
    target, quat = np.array([0.5, 0.1, 0.1]), quat_mul(quat_from_yaw(0.3), GRIPPER_DOWN)
    np.testing.assert_allclose(kin.solve_ik(target, quat, q), sim.solve_ik(target, quat, q),
                               atol=1e-4)
    sim.close()
