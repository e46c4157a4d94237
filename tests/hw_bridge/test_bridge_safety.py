"""The governor alone: clamps, step limit, workspace box, velocity/acceleration, stops."""

import numpy as np
import pytest

from hw_bridge.drivers.sim import SimDriver
from hw_bridge.safety import Governor, SafetyLimits

DT = 0.002


@pytest.fixture(scope="module")
def driver():
    d = SimDriver("reach", image_size=(16, 16))
    d.connect()
    yield d
    d.disconnect()


@pytest.fixture
def gov(driver):
    r = driver.robot
    g = Governor(driver.limits, np.array(r.joint_lower), np.array(r.joint_upper),
                 driver.tcp_position)
    g.hold_at(np.array(r.home_qpos))
    return g


def test_far_target_is_approached_at_the_limits(gov):
    lim = gov.limits
    start = gov.setpoint.copy()
    goal, flags = gov.clamp(start + np.array([2.5, 0, 0, 0, 0, 0]))
    assert "step" in flags and goal[0] - start[0] == pytest.approx(lim.max_step)
    gov.accept(goal)
    prev, prev_v = gov.setpoint.copy(), np.zeros(6)
    for _ in range(200):
        sp = gov.tick(DT)
        v = (sp - prev) / DT
        assert np.abs(v).max() <= lim.max_velocity + 1e-9
        assert np.abs(v - prev_v).max() <= lim.max_accel * DT + 1e-6
        prev, prev_v = sp.copy(), v
    np.testing.assert_allclose(gov.setpoint, goal)


def test_joint_limits_and_workspace(gov):
    goal, flags = gov.clamp(np.full(6, 10.0))
    assert "joint_limit" in flags and np.all(goal <= gov.upper)
    # Straight down through the table: pulled back onto the box's floor.
    q = gov.setpoint.copy()
    q[1] += 0.2
    goal, flags = gov.clamp(q)
    assert gov.limits.inside(gov.fk(goal))


def test_stop_decelerates_within_the_stated_distance(gov):
    gov.accept(gov.clamp(gov.setpoint + 0.2)[0])
    for _ in range(50):
        gov.tick(DT)
    speed = np.abs(gov.velocity).max()
    assert speed > 0.5 * gov.limits.max_velocity
    at_stop = gov.setpoint.copy()
    gov.stop()
    n = 0
    while not gov.stopped:
        gov.tick(DT)
        n += 1
    lim = gov.limits
    assert n * DT <= lim.max_velocity / lim.max_accel + DT
    stop_distance = lim.max_velocity ** 2 / (2 * lim.max_accel)
    assert np.abs(gov.setpoint - at_stop).max() <= stop_distance + 1e-3


def test_limits_validated():
    with pytest.raises(ValueError, match="max_step"):
        SafetyLimits(max_step=0.0)
    with pytest.raises(ValueError, match="workspace_low"):
        SafetyLimits(workspace_low=(1, 0, 0), workspace_high=(0, 1, 1))


def _stop_mid_motion(gov, rng) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """A few reversing goals (a policy changing its mind), ticked with late wake-ups of 1..5
    periods, then a stop; returns the setpoint at the last accept, the last goal and every
    setpoint of the stop."""
    for _ in range(rng.integers(1, 6)):
        goal, _ = gov.clamp(gov.setpoint + rng.uniform(-0.3, 0.3, 6))
        at_accept = gov.setpoint.copy()
        gov.accept(goal)
        for _ in range(rng.integers(1, 25)):
            gov.tick(DT * rng.integers(1, 6))
    gov.stop()
    path = []
    while not gov.stopped:
        path.append(gov.tick(DT * rng.integers(1, 6)).copy())
    return at_accept, goal, path


def test_a_stop_never_carries_the_setpoint_past_the_last_goal(gov):
    rng = np.random.default_rng(0)
    home = gov.setpoint.copy()
    for _ in range(300):
        gov.hold_at(home)
        at_accept, goal, path = _stop_mid_motion(gov, rng)
        side = np.sign(goal - at_accept)
        for sp in path:  # on the start's side of the goal, or on it, for every joint
            assert np.all(side * (goal - sp) >= -1e-12), (goal - sp, side)
            assert np.abs(sp - at_accept).max() <= gov.limits.max_step + 1e-12
