"""The `ur` driver: a Universal Robots e-series arm through `ur_rtde`, with a Robotiq 2F-85.
NOT YET TRIED ON HARDWARE: tested only against fakes at ur_rtde's boundary and a fake Robotiq
URCap socket server on loopback (tests/hw_bridge/test_ur_driver.py).

Written against ur_rtde's documented Python API (RTDEControlInterface / RTDEReceiveInterface,
>= 1.5); install with `pip install motoken[ur]`. It is imported lazily so the bridge works
without it. Each period the server's setpoint goes to `servoJ` (time = one period, lookahead
0.1 s, gain 300, UR's documented defaults) and the controller-side watchdog is kicked: if this
process stalls for longer than `WATCHDOG_MIN_HZ` allows, the controller itself stops the arm,
independently of the bridge's own watchdog. The arm's built-in safety (joint limits, speed,
protective stop) stays in force underneath everything here.

Gripper: a Robotiq 2F-85 through the Robotiq URCap's socket on the controller (port 63352,
`robotiq.py`), on by default (`gripper=None` for an arm without one). The command (0 open ..
1 closed) becomes an opening of (1 - g) * 85 mm, clamped to [0, 85 mm], sent as the URCap's
POS register; `sent_width` is the opening that register stands for; `ArmState.gripper` is the
measured opening. A lost gripper socket or a gripper fault is a `DriverFault` like a lost RTDE
link. No cameras.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from hw_bridge.drivers.base import ArmState, Driver, DriverState
from hw_bridge.drivers.robotiq import MAX_OPENING_2F85, URCAP_PORT, RobotiqGripper
from hw_bridge.errors import DriverFault
from hw_bridge.safety import SafetyLimits
from sims.base import RobotSpec, quat_from_axis_angle

log = logging.getLogger(__name__)
RTDE_HZ = 500.0  # e-series controllers run RTDE at 500 Hz (CB3: 125 Hz).
SERVO_LOOKAHEAD_S = 0.1  # ur_rtde/URScript defaults for servoj.
SERVO_GAIN = 300
STOP_DECEL = 2.0  # rad/s^2 for servoStop: a gentle stop; the bridge already slowed the setpoint.
WATCHDOG_MIN_HZ = 10.0  # controller stops the arm if kicks arrive slower than this
UR5E_LIMIT = 2 * np.pi  # each UR5e joint turns +-360 degrees
UR5E_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3")
UR5E_HOME = (0.0, -1.571, 1.571, -1.571, -1.571, 0.0)


class URDriver(Driver):
    """A UR e-series arm at `host`. Not yet tried on hardware."""

    kinematics = "ur5e"

    def __init__(self, host: str, limits: SafetyLimits | None = None,
                 gripper: str | None = "robotiq", gripper_port: int = URCAP_PORT) -> None:
        super().__init__()
        if gripper not in ("robotiq", None):
            raise ValueError(f"gripper must be 'robotiq' or None, got {gripper!r}")
        self.host = host
        self.gripper = RobotiqGripper(host, gripper_port) if gripper else None
        self.robot = RobotSpec("ur5e", UR5E_JOINTS, (-UR5E_LIMIT,) * 6, (UR5E_LIMIT,) * 6,
                               UR5E_HOME, MAX_OPENING_2F85 if gripper else 0.0)
        self.sent_width: float | None = None  # the last opening sent to the gripper, m
        self.period = 1.0 / RTDE_HZ
        self.cameras: dict[str, tuple[int, int]] = {}
        # UR base frame: a box around a table-mounted arm; adjust per cell.
        self.limits = limits or SafetyLimits(max_velocity=1.0, max_accel=4.0, max_step=0.1,
                                             workspace_low=(-0.8, -0.8, 0.02),
                                             workspace_high=(0.8, 0.8, 1.0))
        self._ctrl: Any = None
        self._recv: Any = None

    def connect(self) -> None:
        try:
            import rtde_control
            import rtde_receive
        except ImportError as exc:
            raise DriverFault("the ur driver needs ur_rtde: pip install 'motoken[ur]'") from exc
        try:
            self._recv = rtde_receive.RTDEReceiveInterface(self.host, RTDE_HZ)
            self._ctrl = rtde_control.RTDEControlInterface(self.host, RTDE_HZ)
            self._ctrl.setWatchdog(WATCHDOG_MIN_HZ)
        except Exception as exc:  # ur_rtde raises RuntimeError on refused/lost connections
            raise DriverFault(f"cannot connect to UR controller at {self.host}: {exc}") from exc
        if self.gripper is not None:
            try:
                self.gripper.connect()
            except DriverFault:
                self.disconnect()
                raise
        self.state = DriverState.INACTIVE

    def disconnect(self) -> None:
        if self.gripper is not None:
            self.gripper.close()
        if self._ctrl is not None:
            try:
                self._ctrl.servoStop(STOP_DECEL)
                self._ctrl.stopScript()
            finally:
                self._ctrl.disconnect()
                self._recv.disconnect()
        self._ctrl = self._recv = None
        self.state = DriverState.DISCONNECTED

    def read(self) -> ArmState:
        try:
            if self._recv.isProtectiveStopped() or self._recv.isEmergencyStopped():
                raise DriverFault("UR controller reports a protective or emergency stop")
            q = np.array(self._recv.getActualQ(), float)
            pose = np.array(self._recv.getActualTCPPose(), float)  # x y z rx ry rz
        except DriverFault:
            raise
        except Exception as exc:
            raise DriverFault(f"RTDE read failed: {exc}") from exc
        width = self.gripper.width() if self.gripper is not None else 0.0
        return ArmState(q, pose[:3], quat_from_axis_angle(pose[3:]), width)

    def write(self, q: np.ndarray, gripper: float) -> None:
        try:
            ok = self._ctrl.servoJ(list(map(float, q)), 0.0, 0.0, self.period,
                                   SERVO_LOOKAHEAD_S, SERVO_GAIN)
            self._ctrl.kickWatchdog()
        except Exception as exc:
            raise DriverFault(f"RTDE servoJ failed: {exc}") from exc
        if ok is False:
            raise DriverFault("UR controller refused servoJ (program not running?)")
        if self.gripper is not None:
            opening = min(max((1.0 - gripper) * self.gripper.max_opening, 0.0),
                          self.gripper.max_opening)
            self.sent_width = self.gripper.to_width(self.gripper.command(opening))

    def hold(self) -> None:
        if self._ctrl is not None:
            try:
                self._ctrl.servoStop(STOP_DECEL)
            except Exception as exc:  # best effort; the controller's own watchdog backs it up
                log.error("servoStop failed while holding: %s", exc)

    def wait_period(self, n: int) -> None:
        """The controller runs its own 500 Hz loop; the server's pacing is enough here."""

    def tcp_position(self, q: np.ndarray) -> np.ndarray:
        try:
            pose = self._ctrl.getForwardKinematics(list(map(float, q)), [0.0] * 6)
        except Exception as exc:
            raise DriverFault(f"RTDE forward kinematics failed: {exc}") from exc
        return np.array(pose[:3], float)
