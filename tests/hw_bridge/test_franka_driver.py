"""The franka driver at pylibfranka's boundary (a fake library, real bridge server on loopback,
real child process for the hand). The same driver against franka-sim, which speaks
libfranka's own network protocol: test_franka_sim.py (slow)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from hw_bridge.drivers import make_driver
from hw_bridge.drivers.base import DriverState
from hw_bridge.drivers.franka import FR3_MAX_ACCEL, FR3_MAX_JERK, FR3_MAX_VELOCITY, RateLimiter
from hw_bridge.errors import DriverFault, Rejected, UnknownRobotError
from tests.hw_bridge import fake_pylibfranka as fake
from tests.hw_bridge.conftest import Running, wait_for

FAKE = "tests.hw_bridge.fake_pylibfranka"
HOST = "fake-fr3"


@pytest.fixture
def arm() -> Iterator[fake.FakeArm]:
    fake.ARMS[HOST] = arm = fake.FakeArm()
    yield arm
    del fake.ARMS[HOST]


@pytest.fixture
def served(arm: fake.FakeArm) -> Iterator[Running]:
    driver = make_driver(f"franka:{HOST}", library=FAKE)
    # A 1 kHz arm loop and the client share one process (and GIL) here; on a loaded machine
    # the client's heartbeats can come late, which is not what these tests are about.
    driver.limits = replace(driver.limits, watchdog_s=1.0)
    r = Running(driver)
    yield r
    r.close()


def test_the_driver_needs_a_host_and_says_how_to_get_pylibfranka():
    with pytest.raises(UnknownRobotError, match="franka:HOST"):
        make_driver("franka:")
    driver = make_driver("franka:192.0.2.1", library="no_such_libfranka_module")
    assert driver.robot.name == "fr3" and driver.robot.n_joints == 7 and driver.period == 0.001
    assert driver.limits.max_velocity == 1.0 and driver.robot.max_gripper_opening == 0.08
    with pytest.raises(DriverFault, match=r"pip install 'motoken\[franka\]'"):
        driver.connect()


def test_an_unreachable_robot_a_robot_in_reflex_or_no_hand_is_a_driver_fault(arm):
    with pytest.raises(DriverFault, match="cannot connect to the Franka robot at 192.0.2.1"):
        make_driver("franka:192.0.2.1", library=FAKE).connect()
    arm.mode = fake.RobotMode.Reflex  # e.g. left in a reflex by an earlier program
    with pytest.raises(DriverFault, match="mode Reflex, not Idle"):
        make_driver(f"franka:{HOST}", library=FAKE, hand=False).connect()
    arm.mode = fake.RobotMode.Idle
    fake.ARMS["nohand-fr3"] = arm
    try:
        with pytest.raises(DriverFault, match="Franka Hand at nohand-fr3: .*refused"):
            make_driver("franka:nohand-fr3", library=FAKE).connect()
    finally:
        del fake.ARMS["nohand-fr3"]


def test_commands_stream_as_joint_positions_from_q_d(served, arm):
    """The first command continues from the robot's q_d (the fake refuses anything else, as
    the FCI does), every setpoint goes out as one JointPositions, the arm follows."""
    c = served.client()
    assert arm.collision_behavior is not None and arm.motions_started == 0
    goal = arm.q_d + np.array([0.08, -0.05, 0, 0.05, 0, 0, 0.05])
    ack = c.command(goal, 0.0)
    assert ack["clamped"] == [] and np.allclose(ack["q"], goal)
    assert wait_for(lambda: np.abs(served.controller.arm.q - goal).max() < 1e-4, timeout=5)
    assert wait_for(lambda: np.allclose(served.driver.sent_q, goal, atol=1e-12))
    assert arm.motions_started == 1 and arm.mode == fake.RobotMode.Move
    sent = np.array(arm.commands)
    q_d0 = goal - [0.08, -0.05, 0, 0.05, 0, 0, 0.05]
    # The first command is q_d plus at most the first periods of the setpoint's ramp (a late
    # start runs up to 5 at once: 1e-4 rad on this loaded machine, 4e-6 when on time).
    assert np.abs(sent[0] - q_d0).max() <= fake.START_POSE_TOLERANCE
    steps = np.abs(np.diff(sent, axis=0)).max()
    assert steps <= served.driver.limits.max_velocity * 0.001 * 5 + 1e-9  # <= 5 catch-up periods
    assert np.allclose(served.driver.sent_q, sent[-1]) and np.allclose(sent[-1], goal)
    c.close()


def test_the_gripper_command_is_clamped_to_the_hand_and_its_width_is_reported(served, arm):
    c = served.client()
    q = arm.q_d.copy()
    ack = c.command(q, 0.5)
    assert ack["gripper"] == 0.5
    assert wait_for(lambda: abs(served.controller.arm.gripper - 0.04) < 1e-9, timeout=5)
    assert served.driver.sent_width == pytest.approx(0.04)
    ack = c.command(q, -3.0)  # "more than open": the server clips to 0, the hand to its 79.5 mm
    assert ack["gripper"] == 0.0 and "gripper" in ack["clamped"]
    assert wait_for(lambda: abs(served.controller.arm.gripper - 0.0795) < 1e-9, timeout=5)
    assert served.driver.sent_width == pytest.approx(0.0795)  # not the description's 80 mm
    c.command(q, 1.0)  # closed: a grasp, which closes on whatever is there
    assert wait_for(lambda: served.controller.arm.gripper == 0.0, timeout=5)
    c.close()


def test_a_reflex_latches_fault_and_only_reset_recovers(served, arm):
    c = served.client()
    c.command(arm.q_d + [0.05, 0, 0, 0, 0, 0, 0], 0.0)
    assert wait_for(lambda: arm.motions_started == 1)
    arm.fail = "reflex"
    assert wait_for(lambda: c.status()["mode"] == "fault", timeout=3)
    n_commands = len(arm.commands)
    assert "reflex" in c.status()["reason"] and arm.stops == 1
    assert served.driver.state == DriverState.FAULT
    with pytest.raises(Rejected, match="fault"):
        c.command(arm.q_d, 0.0)
    time.sleep(0.05)  # 50 arm periods
    assert len(arm.commands) == n_commands  # nothing went out after the fault
    assert arm.recoveries == 0  # nothing recovers by itself
    assert c.reset() == {} and c.status()["mode"] == "inactive" and arm.recoveries == 1
    c.command(arm.q_d + [0.02, 0, 0, 0, 0, 0, 0], 0.0)  # a new motion, from the new q_d
    assert wait_for(lambda: arm.motions_started == 2 and len(arm.commands) > n_commands + 5)
    assert c.status()["mode"] == "active"
    c.close()


def test_a_lost_link_is_a_fault_and_reset_cannot_clear_it(served, arm):
    c = served.client()
    c.command(arm.q_d, 0.0)
    arm.fail = "link"
    assert wait_for(lambda: c.status()["mode"] == "fault", timeout=3)
    assert "NetworkException" in c.status()["reason"]
    with pytest.raises(Rejected, match="fault"):
        c.reset()
    assert c.status()["mode"] == "fault"
    c.close()


def test_a_setpoint_that_moves_the_arm_without_a_motion_is_refused(arm):
    driver = make_driver(f"franka:{HOST}", library=FAKE, hand=False)
    driver.connect()
    try:
        still = driver.hold_target(driver.read())
        driver.write(still, 0.0)  # holding where the robot holds: nothing to send
        assert arm.commands == [] and driver.read().gripper == 0.0
        with pytest.raises(DriverFault, match="no motion open"):
            driver.write(still + 0.1, 0.0)
    finally:
        driver.disconnect()


def _robot_run(setpoint, skipped, limiter=None) -> tuple[np.ndarray, np.ndarray]:
    """What an FCI applies, cycle by cycle: the limiter's command when the bridge answered,
    else its own extrapolation with frozen acceleration (the FCI's packet-loss behaviour)."""
    dt = 0.001
    limiter = limiter or RateLimiter(dt)
    q_d, dq_d, ddq_d = setpoint[0].copy(), np.zeros(7), np.zeros(7)
    applied, elapsed = [q_d], dt
    for c in range(1, len(setpoint)):
        if c in skipped:
            dq = dq_d + ddq_d * dt
            q, elapsed = q_d + dq * dt, elapsed + dt
        else:
            q, elapsed = limiter(setpoint[c], q_d, dq_d, ddq_d, elapsed), dt
        dq = (q - q_d) / dt
        ddq_d, dq_d, q_d = (dq - dq_d) / dt, dq, q
        applied.append(q)
    return np.array(applied), setpoint


def test_the_rate_limiter_passes_smooth_setpoints_and_absorbs_late_periods():
    t = np.arange(0.0, 1.5, 0.001)[:, None]
    # the bridge's kind of setpoint for the fr3: accelerate at 2 rad/s^2 to 1 rad/s, cruise,
    # brake (sims/robots/fr3.toml)
    v = np.minimum(np.minimum(2 * t, 1.0), np.maximum(2 * (1.5 - t), 0.0))
    setpoint = np.cumsum(v * 0.001, axis=0) * np.ones(7)
    applied, _ = _robot_run(setpoint, skipped=set())
    assert np.abs(applied - setpoint).max() < 1e-12  # on time: untouched
    # late periods (4 cycles missed) where the setpoint changes its acceleration: at the start
    # (the first command after a motion opened), reaching cruise speed, starting to brake
    late = {c for start in (1, 499, 999) for c in range(start, start + 4)}
    raw, _ = _robot_run(setpoint, skipped=late, limiter=lambda sp, *_: sp)
    assert np.abs(np.diff(raw, 2, axis=0) / 1e-6).max() > 5 * FR3_MAX_ACCEL  # 60: FCI aborts
    applied, _ = _robot_run(setpoint, skipped=late)
    dq = np.diff(applied, axis=0) / 0.001
    ddq = np.diff(dq, axis=0) / 0.001
    jerk = np.diff(ddq, axis=0) / 0.001
    assert np.abs(jerk).max() <= FR3_MAX_JERK * (1 + 1e-9)
    assert np.abs(ddq).max() <= FR3_MAX_ACCEL * (1 + 1e-9)
    assert (np.abs(dq) <= FR3_MAX_VELOCITY * (1 + 1e-9)).all()
    assert np.abs(applied - setpoint).max() < 2e-3  # it lags a late period, briefly
    assert np.abs(applied[-1] - setpoint[-1]).max() < 1e-6  # and ends on the setpoint
