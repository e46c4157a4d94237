"""A fake of pylibfranka's API at the library boundary, for the franka driver's fast tests.

Only what `hw_bridge/drivers/franka.py` and `franka_hand.py` call, with libfranka's rules
that matter to them: one motion at a time, a motion's first command must continue from the
robot's `q_d`, a reflex aborts the motion and leaves the robot in Reflex until
`automatic_error_recovery`, a lost link raises `NetworkException`. Arms live in `ARMS` (this
process only); the hand runs in the driver's child process, so it keeps its own state there.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

import numpy as np

# rad: how far a motion's first command may sit from q_d. The real FCI judges it as a step from
# rest (d / dt^2 must stay within 10 rad/s^2, i.e. 1e-5 rad); this fake allows what the bridge's
# first setpoint can be after a late start (5 periods at 4 rad/s^2: 1e-4 rad) on a loaded test
# machine, and still refuses a start from the measured q, which sits 1e-3 rad off q_d here.
START_POSE_TOLERANCE = 2e-4
IDLE_TRACKING_ERROR = 1e-3  # rad between the robot's q_d and its measured q


class NetworkException(RuntimeError):
    pass


class ControlException(RuntimeError):
    pass


class RealtimeConfig(enum.Enum):
    kEnforce = 0
    kIgnore = 1


class ControllerMode(enum.Enum):
    JointImpedance = 0
    CartesianImpedance = 1


class RobotMode(enum.Enum):
    Idle = 1
    Move = 2
    Reflex = 4


@dataclass
class FakeArm:
    """The simulated robot behind one host: a first-order joint servo at one step per state."""

    q: np.ndarray = field(default_factory=lambda: np.array(
        [0.0, -0.7854, 0.0, -2.3562, 0.0, 1.5708, 0.7854]))
    q_d: np.ndarray | None = None
    dq_d: np.ndarray = field(default_factory=lambda: np.zeros(7))
    ddq_d: np.ndarray = field(default_factory=lambda: np.zeros(7))
    mode: RobotMode = RobotMode.Idle
    errors: str = "[]"
    fail: str | None = None  # "reflex" or "link": the next read fails that way
    commands: list[np.ndarray] = field(default_factory=list)
    motions_started: int = 0
    stops: int = 0
    recoveries: int = 0
    collision_behavior: tuple | None = None

    def __post_init__(self) -> None:
        # q_d a hair off the measured q: the robot's controller tracks it with a small error
        self.q_d = self.q + IDLE_TRACKING_ERROR if self.q_d is None else self.q_d

    def state(self) -> State:
        if self.fail == "link":
            raise NetworkException("libfranka: UDP receive: Timeout")
        return State(self.q.tolist(), self.q_d.tolist(), self.dq_d.tolist(),
                     self.ddq_d.tolist(), self.mode, self.errors)


ARMS: dict[str, FakeArm] = {}


@dataclass
class Duration:
    seconds: float

    def to_sec(self) -> float:
        return self.seconds


@dataclass
class State:
    q: list[float]
    q_d: list[float]
    dq_d: list[float]
    ddq_d: list[float]
    robot_mode: RobotMode
    last_motion_errors: str


class JointPositions:
    def __init__(self, q: list[float]) -> None:
        if len(q) != 7:
            raise TypeError(f"JointPositions needs 7 values, got {len(q)}")
        self.q = list(q)
        self.motion_finished = False


class Robot:
    def __init__(self, host: str, realtime: RealtimeConfig = RealtimeConfig.kEnforce) -> None:
        if host not in ARMS:
            raise NetworkException(f"libfranka: Connection to {host} refused")
        self.arm = ARMS[host]
        self.motion: Motion | None = None

    def set_collision_behavior(self, *thresholds: list[float]) -> None:
        self.arm.collision_behavior = thresholds

    def read_once(self) -> State:
        if self.motion is not None and not self.motion.ended:
            raise RuntimeError("libfranka: another control loop is active")
        return self.arm.state()

    def start_joint_position_control(self, mode: ControllerMode) -> Motion:
        if self.arm.mode != RobotMode.Idle:
            raise ControlException(f"cannot start a motion in mode {self.arm.mode.name}")
        self.arm.mode = RobotMode.Move
        self.arm.motions_started += 1
        self.motion = Motion(self.arm)
        return self.motion

    def stop(self) -> None:
        if self.arm.fail == "link":
            raise NetworkException("libfranka: TCP send bytes: I/O error")
        self.arm.stops += 1
        if self.motion is not None:
            self.motion.ended = True
        if self.arm.mode == RobotMode.Move:
            self.arm.mode = RobotMode.Idle

    def automatic_error_recovery(self) -> None:
        if self.arm.fail == "link":
            raise NetworkException("libfranka: TCP send bytes: I/O error")
        self.arm.recoveries += 1
        self.arm.mode, self.arm.errors, self.arm.fail = RobotMode.Idle, "[]", None


class Motion:
    def __init__(self, arm: FakeArm) -> None:
        self.arm, self.ended, self.first = arm, False, True

    def readOnce(self) -> tuple[State, float]:  # noqa: N802 (libfranka's name)
        arm = self.arm
        if arm.fail == "reflex":
            arm.mode, arm.errors, self.ended = RobotMode.Reflex, '["cartesian_reflex"]', True
            raise ControlException('libfranka: Move command aborted: motion aborted by reflex! '
                                   '["cartesian_reflex"]')
        if self.ended:
            raise ControlException("libfranka: the motion has ended")
        state = arm.state()
        arm.q = arm.q + 0.5 * (arm.q_d - arm.q)  # the servo closes half the gap per 1 ms state
        return state, Duration(0.001)

    def writeOnce(self, command: JointPositions) -> None:  # noqa: N802
        if self.ended:
            raise ControlException("writeOnce must not be called after the motion has finished")
        q = np.array(command.q)
        if self.first and np.abs(q - self.arm.q_d).max() > START_POSE_TOLERANCE:
            self.arm.mode, self.ended = RobotMode.Reflex, True
            raise ControlException("joint_position_motion_generator_start_pose_invalid")
        self.first = False
        dq = (q - self.arm.q_d) / 0.001
        self.arm.ddq_d = (dq - self.arm.dq_d) / 0.001
        self.arm.q_d, self.arm.dq_d = q, dq
        self.arm.commands.append(q)


@dataclass
class GripperState:
    width: float
    max_width: float
    is_grasped: bool = False


class Gripper:
    """The hand, in the driver's child process: a width that moves at once."""

    def __init__(self, host: str) -> None:
        if "nohand" in host:
            raise NetworkException(f"libfranka gripper: Connection to {host} refused")
        self.max_width, self.width = 0.0795, 0.0795  # a homed real hand reads a bit under 80 mm

    def read_once(self) -> GripperState:
        time.sleep(0.005)  # the hand's state arrives at its own pace
        return GripperState(self.width, self.max_width)

    def move(self, width: float, speed: float) -> bool:
        if not 0.0 <= width <= self.max_width:
            raise ControlException(f"move width {width} outside 0..{self.max_width}")
        self.width = width
        return True

    def grasp(self, width: float, speed: float, force: float, epsilon_inner: float = 0.005,
              epsilon_outer: float = 0.005) -> bool:
        self.width = 0.0  # nothing between the fingers: they close on each other
        return width - epsilon_inner < self.width < width + epsilon_outer
