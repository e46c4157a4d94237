"""What every simulator backend provides, independent of the physics engine.

A task (sims/tasks.py) describes *what* is on the table; a `Sim` puts it there, moves the arm
towards end-effector targets and reports poses and camera images. Keeping this boundary narrow
is what lets `pick_place` run unchanged on MuJoCo and PyBullet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

ObjectKind = Literal["cube", "plate", "marker"]

# Named colours shared by both simulators and by the instructions ("the red cube").
COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.12, 0.12, 1.0),
    "green": (0.15, 0.70, 0.20, 1.0),
    "blue": (0.15, 0.30, 0.90, 1.0),
    "yellow": (0.95, 0.85, 0.10, 1.0),
    "purple": (0.60, 0.20, 0.75, 1.0),
}

CUBE_HALF = 0.02  # 4 cm cubes: fit the 8 cm gripper opening with 2 cm margin per side.
PLATE_RADIUS = 0.065  # a 13 cm plate: a cube dropped within 4 cm of its centre stays on it.
PLATE_HALF_HEIGHT = 0.001  # 2 mm: a cube can be pushed onto it without snagging.
MARKER_RADIUS = 0.02


@dataclass(frozen=True)
class ObjectSpec:
    """One object in a scene. `name` is unique in the scene, e.g. "red_cube"."""

    name: str
    kind: ObjectKind
    color: str

    def __post_init__(self) -> None:
        if self.color not in COLORS:
            raise ValueError(f"unknown colour {self.color!r}; known: {sorted(COLORS)}")


@dataclass(frozen=True)
class Placement:
    """Where an object starts an episode: position of its centre (m) and yaw (rad)."""

    name: str
    pos: tuple[float, float, float]
    yaw: float = 0.0


@dataclass(frozen=True)
class RobotSpec:
    """Static description of the arm a backend drives (also sent in the bridge handshake)."""

    name: str
    joint_names: tuple[str, ...]
    joint_lower: tuple[float, ...]
    joint_upper: tuple[float, ...]
    home_qpos: tuple[float, ...]
    max_gripper_opening: float  # metres between the fingers when fully open

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def state_dim(self) -> int:
        # joints + EE position (3) + EE quaternion wxyz (4) + gripper opening (1)
        return self.n_joints + 8


@dataclass(frozen=True)
class SimTiming:
    """Wall time spent inside the simulator during the last control step, in seconds."""

    sim_s: float
    render_s: float


class Sim(Protocol):
    """A physics backend holding one arm, a table and a set of objects."""

    robot: RobotSpec
    control_dt: float
    camera_names: tuple[str, ...]

    def reset(self, placements: list[Placement]) -> None:
        """Put the arm at home and every object at its placement; settle contacts."""

    def step(self, ee_pos: np.ndarray, ee_quat: np.ndarray, gripper: float) -> None:
        """Drive the arm for one control period towards an EE target (world frame, wxyz)."""

    def joint_positions(self) -> np.ndarray:
        """Measured arm joint angles (rad), shape (n_joints,)."""

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured tool-centre-point position (3,) and orientation quaternion wxyz (4,)."""

    def gripper_opening(self) -> float:
        """Measured distance between the fingers (m)."""

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) and quaternion wxyz (4,) of a scene object."""

    def render(self, camera: str) -> np.ndarray:
        """An (H, W, 3) uint8 image from the named camera."""

    def divergence(self) -> str | None:
        """None while the physics is sane, else a sentence saying what went wrong."""

    def close(self) -> None:
        """Release renderer and physics resources."""


# wxyz: pi about y, the gripper pointing at the table (the arm's home orientation).
GRIPPER_DOWN = np.array([0.0, 0.0, 1.0, 0.0])


def quat_from_yaw(yaw: float) -> np.ndarray:
    """Quaternion (wxyz) of a rotation by `yaw` about the world z axis."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b of wxyz quaternions."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ])


def quat_from_axis_angle(rotvec: np.ndarray) -> np.ndarray:
    """wxyz quaternion of a rotation vector (axis * angle, rad)."""
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    axis = rotvec / angle
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])


def axis_angle_from_quat(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle) of a wxyz quaternion, angle in [0, pi]."""
    q = q / np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    s = float(np.linalg.norm(q[1:]))
    if s < 1e-12:
        return np.zeros(3)
    return q[1:] / s * 2.0 * np.arctan2(s, q[0])


def yaw_from_quat(q: np.ndarray) -> float:
    """Rotation about world z of a wxyz quaternion (the heading of its x axis)."""
    w, x, y, z = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))
