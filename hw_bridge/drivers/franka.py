"""The `franka` driver: a Franka Research 3 with the Franka Hand through pylibfranka.

NOT YET TRIED ON HARDWARE. Tested against `franka-sim` (libfranka's network protocol on MuJoCo,
tests/hw_bridge/test_franka_sim.py) and at pylibfranka's boundary with a fake.

Why pylibfranka: it is Franka's own binding of libfranka 0.21 (`pip install motoken[franka]`),
speaks the FR3's protocol (robot server version 10), and its "external loop" API
(`Robot.start_joint_position_control` -> `readOnce`/`writeOnce`) lets the bridge's own arm
loop send one joint setpoint per robot state, which is exactly the `Driver` lifecycle. (The
`panda-python` wheel on PyPI bundles libfranka 0.9.2, the Panda's older protocol: it cannot
talk to an FR3 or to franka-sim.)

Lifecycle, mapped onto libfranka:
- `connect`: `Robot(host)`, collision thresholds, one state; the robot must be idle. The arm
  holds where it is under its own controller; no motion is open. The hand starts in a child
  process (`franka_hand.HandProcess`).
- `activate` (the session's first command): opens a joint-position motion (joint impedance).
- `write`: one `writeOnce(JointPositions(q))` per period while the motion is open. The FCI
  needs the first command to equal its `q_d`, so `hold_target` hands the server `q_d`, not
  the measured q, to hold at. Each command passes a `RateLimiter` (libfranka has rate
  limiting, pylibfranka does not expose it for this API): the bridge's setpoint keeps acceleration
  and jerk in bounds per *bridge* period, but when a period comes late the robot has
  extrapolated the missed cycles itself, and the next setpoint would be a step the FCI aborts
  on (measured against franka-sim with its FCI limits enforced: 64 rad/s^2 on joint 1).
- `read`: `readOnce()` (the newest robot state; blocks at most until the next 1 ms state).
- `hold` (after a fault): `Robot.stop()`, then the motion is dropped; the robot's own
  controller holds. Only `clear_fault` (the client's `reset`) runs libfranka's
  `automatic_error_recovery`; nothing resumes by itself.

Failures are `DriverFault`: a reflex (`ControlException`), a lost link (`NetworkException`:
libfranka notices a dead robot after its 1 s UDP timeout, during which the arm loop waits;
the robot itself stops within a few cycles when the commands stop), a refused command.
Late periods still cost tracking (the limited command lags the setpoint, briefly): run the
server with `--rt-priority` on a real-time kernel, as Franka requires for the FCI.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import asdict
from typing import Any

import mujoco
import numpy as np

from hw_bridge.drivers.base import ArmState, Driver, DriverState, Snapshot
from hw_bridge.drivers.franka_hand import HandProcess
from hw_bridge.errors import DriverFault
from hw_bridge.safety import SafetyLimits
from sims.robots import RobotDescription, load_robot

log = logging.getLogger(__name__)
# Collision thresholds (Nm per joint, N per Cartesian axis) from Franka's own examples:
# the robot stops with a reflex beyond them.
TORQUE_THRESHOLDS = [20.0, 20.0, 18.0, 18.0, 16.0, 14.0, 12.0]
FORCE_THRESHOLDS = [20.0, 20.0, 20.0, 25.0, 25.0, 25.0]
# The FR3's joint limits on a commanded motion (datasheet; the robot aborts a motion beyond
# them: joint_motion_generator_*_discontinuity), as budgets for the rate limiter: velocity at
# 90%; acceleration and jerk at 45%, because a command that reaches the robot one cycle late
# is differenced over one cycle though it spans two, which doubles both (seen against
# franka-sim with its limits enforced: 9000 rad/s^3 from a 4500 budget).
FR3_MAX_VELOCITY = 0.9 * np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])  # rad/s
FR3_MAX_ACCEL = 0.45 * 10.0  # rad/s^2
FR3_MAX_JERK = 0.45 * 5000.0  # rad/s^3
GAP_ACCEL = 2.0  # rad/s^2 the rate limiter brakes with while it closes a gap to the setpoint
# rad: with no motion open the robot holds q_d itself and nothing is sent; a setpoint further
# than this from q_d there would be a bridge bug (motion without activate), so it faults.
IDLE_TOLERANCE = 0.01
HAND_SPEED = 0.1  # m/s finger speed (the hand's maximum is 0.2 m/s, datasheet)


class RateLimiter:
    """Turns the bridge's setpoints into FCI commands whose jerk, acceleration and velocity,
    taken against the robot's last commanded q_d, dq_d, ddq_d (what it reports back for this
    purpose), stay within the FR3's limits.

    Smooth setpoints, one per robot cycle, pass unchanged. After a late bridge period the
    robot has extrapolated the missed cycles itself (frozen acceleration), and the setpoint no
    longer continues its q_d: the command then follows the setpoint's velocity (over the
    robot's elapsed time) plus a correction of the gap that brakes like `sqrt(2 a |gap|)`, so
    the gap closes within a few cycles without the overshoot of plain derivative clipping.
    """

    def __init__(self, dt: float) -> None:
        self.dt = dt
        self.last_setpoint: np.ndarray | None = None

    def reset(self) -> None:
        self.last_setpoint = None  # a new motion continues from q_d

    def __call__(self, setpoint: np.ndarray, q_d: np.ndarray, dq_d: np.ndarray,
                 ddq_d: np.ndarray, elapsed: float) -> np.ndarray:
        dt = self.dt
        last = q_d if self.last_setpoint is None else self.last_setpoint
        v_sp = (setpoint - last) / max(elapsed, dt)
        gap = setpoint - v_sp * dt - q_d  # where the last command should have been, minus it
        v = v_sp + np.sign(gap) * np.minimum(np.abs(gap) / dt,
                                             np.sqrt(2.0 * GAP_ACCEL * np.abs(gap)))
        jerk = np.clip(((v - dq_d) / dt - ddq_d) / dt, -FR3_MAX_JERK, FR3_MAX_JERK)
        ddq = np.clip(ddq_d + jerk * dt, -FR3_MAX_ACCEL, FR3_MAX_ACCEL)
        dq = np.clip(dq_d + ddq * dt, -FR3_MAX_VELOCITY, FR3_MAX_VELOCITY)
        self.last_setpoint = np.array(setpoint, float)
        return q_d + dq * dt


class DescriptionFk:
    """Forward kinematics of a robot description's model (MuJoCo, kinematics only)."""

    def __init__(self, desc: RobotDescription) -> None:
        self.model = mujoco.MjModel.from_xml_path(str(desc.model))
        self.data = mujoco.MjData(self.model)
        self.adr = [self.model.joint(j).qposadr[0] for j in desc.joint_names]
        self.tcp = self.model.site(desc.tcp).id

    def pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) and wxyz quaternion (4,) for joint angles q."""
        self.data.qpos[self.adr] = q
        mujoco.mj_kinematics(self.model, self.data)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self.tcp])
        return self.data.site_xpos[self.tcp].copy(), quat


class FrankaDriver(Driver):
    """An FR3 (or a Panda on system >= 5.9) with the Franka Hand at `host`. Not yet tried on
    hardware.

    Args:
        host: the robot's FCI address (Desk: "Activate FCI").
        limits: overrides the safety numbers of the description.
        robot: name of the description in `sims/robots/` (joint limits, home, hand, safety).
        library: module providing libfranka's Python API (pylibfranka; tests pass a fake).
        realtime: demand a real-time kernel (libfranka's kEnforce), as Franka recommends for a
            robot PC; off by default so the driver also runs on a plain kernel.
        hand: drive the Franka Hand (False: an arm without the hand, gripper reads 0).
    """

    def __init__(self, host: str, limits: SafetyLimits | None = None, robot: str = "fr3",
                 library: str = "pylibfranka", realtime: bool = False,
                 hand: bool = True) -> None:
        super().__init__()
        self.host, self.library, self.realtime, self.use_hand = host, library, realtime, hand
        self.description = load_robot(robot)
        self.robot = self.description.spec()
        self.kinematics = self.description.name
        self.period = 1.0 / self.description.control_hz
        self.cameras: dict[str, tuple[int, int]] = {}
        self.limits = limits or SafetyLimits(**asdict(self.description.safety))
        self.max_opening = self.description.gripper.max_opening
        self._fk = DescriptionFk(self.description)
        self._lib: Any = None
        self._robot: Any = None
        self._motion: Any = None  # the open joint-position motion (ActiveControlBase)
        self._hand: HandProcess | None = None
        self._q_d = np.zeros(self.robot.n_joints)  # the robot's own desired q, last state
        self._dq_d = np.zeros(self.robot.n_joints)  # ... and its first two derivatives
        self._ddq_d = np.zeros(self.robot.n_joints)
        self._elapsed = self.period  # robot time between the last two states read
        self._unread = False  # `write` read a state that `read` has not returned yet
        self._limiter = RateLimiter(self.period)
        self.sent_q: np.ndarray | None = None  # the last joint command written to the robot
        self.sent_width: float | None = None  # the last finger opening asked of the hand
        self._last: ArmState | None = None  # the control thread's newest reading

    # -- lifecycle ------------------------------------------------------------------------
    def connect(self) -> None:
        try:
            lib = self._lib = importlib.import_module(self.library)
        except ImportError as exc:
            raise DriverFault("the franka driver needs pylibfranka: "
                              "pip install 'motoken[franka]'") from exc
        try:
            mode = lib.RealtimeConfig.kEnforce if self.realtime else lib.RealtimeConfig.kIgnore
            self._robot = lib.Robot(self.host, mode)
            self._robot.set_collision_behavior(TORQUE_THRESHOLDS, TORQUE_THRESHOLDS,
                                               FORCE_THRESHOLDS, FORCE_THRESHOLDS)
            state = self._robot.read_once()
        except Exception as exc:  # libfranka's NetworkException, IncompatibleVersion, ...
            self._robot = None
            raise DriverFault(f"cannot connect to the Franka robot at {self.host}: "
                              f"{type(exc).__name__}: {exc}") from exc
        self._check_idle(state)
        q = self._take(state)
        self._last = ArmState(q, *self._fk.pose(q), 0.0)
        if self.use_hand:
            self._hand = HandProcess(self.library, self.host, HAND_SPEED)
            if self._hand.max_width <= 0.0:
                self._hand.close()
                self._hand = None
                raise DriverFault("the Franka Hand reports max width 0: home it first "
                                  "(Desk, or libfranka's Gripper.homing)")
        self.state = DriverState.INACTIVE

    def _check_idle(self, state: Any) -> None:
        mode = str(state.robot_mode).rsplit(".", 1)[-1]
        if mode != "Idle":
            raise DriverFault(f"Franka robot is in mode {mode}, not Idle (errors: "
                              f"{state.last_motion_errors}); unlock the joints and clear the "
                              "error in Desk, then start the bridge again")

    def activate(self) -> None:
        self._require(DriverState.INACTIVE, DriverState.ACTIVE)
        if self._motion is None:
            try:
                self._motion = self._robot.start_joint_position_control(
                    self._lib.ControllerMode.JointImpedance)
                state, _ = self._motion.readOnce()
                self._limiter.reset()
                self._unread = False
            except Exception as exc:
                self._motion = None
                raise DriverFault(f"Franka robot refused a joint position motion: "
                                  f"{type(exc).__name__}: {exc}") from exc
            self._take(state)
        self.state = DriverState.ACTIVE

    def disconnect(self) -> None:
        self.hold()
        if self._hand is not None:
            self._hand.close()
        self._hand = self._robot = None
        self.state = DriverState.DISCONNECTED

    def clear_fault(self) -> None:
        """libfranka's automatic error recovery, only ever on the client's `reset`."""
        try:
            self._robot.automatic_error_recovery()
            self._take(self._robot.read_once())
        except Exception as exc:
            raise DriverFault(f"Franka error recovery failed: {type(exc).__name__}: "
                              f"{exc}") from exc
        self.state = DriverState.INACTIVE

    # -- the arm loop ---------------------------------------------------------------------
    def read(self) -> ArmState:
        """The newest reading. With a motion open, the state `write` just answered (libfranka
        alternates readOnce / writeOnce), unless no write came since the last read."""
        if self._motion is not None and self._unread:
            self._unread = False
            return self._last
        return self._read_state()

    def _read_state(self) -> ArmState:
        try:
            if self._motion is not None:
                state, elapsed = self._motion.readOnce()
                self._elapsed = elapsed.to_sec()
            else:
                state = self._robot.read_once()
            width = self._hand.poll() if self._hand is not None else 0.0
        except DriverFault:
            raise
        except Exception as exc:  # ControlException (reflex), NetworkException (link)
            raise DriverFault(f"Franka read failed: {type(exc).__name__}: {exc}") from exc
        q = self._take(state)
        pos, quat = self._fk.pose(q)
        self._last = ArmState(q, pos, quat, width)  # one reference swap: atomic for readers
        return self._last

    def write(self, q: np.ndarray, gripper: float) -> None:
        """Send joint setpoint q (rad) through the `RateLimiter`, and the hand's opening for
        gripper (0 open .. 1 closed): (1 - gripper) * max_opening, clamped to [0, the smaller
        of the description's and the hand's own max width]. `sent_q` / `sent_width` are what
        went out."""
        hi = self.max_opening if self._hand is None else min(self.max_opening,
                                                              self._hand.max_width)
        width = min(max((1.0 - gripper) * self.max_opening, 0.0), hi)
        if self._motion is not None:
            # The command answers the newest state, read just now: a state read before the
            # server's sleep is stale by the time a late period writes (the robot went on).
            self._read_state()
            self._unread = True
        try:
            if self._motion is not None:
                sent = self._limiter(np.asarray(q, float), self._q_d, self._dq_d, self._ddq_d,
                                     self._elapsed)
                self._motion.writeOnce(self._lib.JointPositions(sent.tolist()))
                self.sent_q = sent
            elif np.abs(np.asarray(q) - self._q_d).max() > IDLE_TOLERANCE:
                raise DriverFault("a setpoint that moves the arm arrived with no motion open "
                                  f"(q {np.round(q, 4).tolist()}, robot holds "
                                  f"{np.round(self._q_d, 4).tolist()}); activate() first")
            if self._hand is not None:
                self._hand.command(width)
                self.sent_width = width
        except DriverFault:
            raise
        except Exception as exc:
            raise DriverFault(f"Franka write failed: {type(exc).__name__}: {exc}") from exc

    def hold(self) -> None:
        """Stop any motion (libfranka's stop); the robot's controller then holds. Best effort."""
        motion, self._motion = self._motion, None
        if motion is None or self._robot is None:
            return
        try:
            self._robot.stop()
        except Exception as exc:  # a dead link: the robot stops itself when commands stop
            log.error("Franka stop failed while holding: %s", exc)
        del motion  # libfranka cancels a motion it still owns when its handle goes

    def snapshot(self) -> Snapshot:
        """The control thread's newest reading. The stream thread must not call libfranka:
        a second `readOnce` would take robot states meant for the control loop."""
        if self._last is None:
            raise DriverFault("no reading of the Franka robot yet")
        return Snapshot(self._last)

    def wait_period(self, n: int) -> None:
        """The robot runs its own 1 kHz loop; `read` waits for its next state."""

    def hold_target(self, arm: ArmState) -> np.ndarray:
        return self._q_d.copy()

    def tcp_position(self, q: np.ndarray) -> np.ndarray:
        return self._fk.pose(q)[0]

    def _take(self, state: Any) -> np.ndarray:
        self._q_d = np.array(state.q_d, float)
        self._dq_d = np.array(state.dq_d, float)
        self._ddq_d = np.array(state.ddq_d, float)
        return np.array(state.q, float)
