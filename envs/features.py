"""The feature names an env's observations and actions carry into datasets and checkpoints.

`StateLayout` and `ActionLayout` name every dimension of `observation.state` and `action` (what
LeRobot's info.json `features[...]["names"]` and a checkpoint's config.json hold) and give the
groups code reads (joints, EE position, ...) as slices found from those names, so no caller
counts indices.

The environment state (`observation.environment_state`) is the simulator's ground truth per
frame: every object's pose, the instruction's named object and target first. A real arm has no
such sensor; the bridge env returns no names for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.errors import InvalidActionError, LayoutError
from sims.base import RobotSpec, quat_from_axis_angle, quat_mul

ACTION_NAMES = ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
EE_NAMES = ("ee_x", "ee_y", "ee_z", "ee_qw", "ee_qx", "ee_qy", "ee_qz", "gripper_opening")
POSE_NAMES = ("x", "y", "z", "qw", "qx", "qy", "qz")
# The environment state starts with the poses of what the instruction names, so a trainer can
# use "where is the thing I was asked about" without parsing the instruction; then every object.
GOAL_SLOTS = ("goal_object", "goal_target")


def _span(names: tuple[str, ...], first: str, last: str) -> slice:
    """The dimensions from `first` to `last`, both included."""
    return slice(names.index(first), names.index(last) + 1)


def _state_problem(names: tuple[str, ...]) -> str | None:
    """Why `names` is not a state layout, or None if it is."""
    if not all(isinstance(n, str) and n for n in names):
        return "every name must be a non-empty string"
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        return f"{dupes} appear more than once"
    missing = [n for n in EE_NAMES if n not in names]
    if missing:
        return f"{missing} are missing"
    if names[-len(EE_NAMES):] != EE_NAMES:
        return f"{list(EE_NAMES)} must be the last {len(EE_NAMES)} names, in that order"
    if len(names) == len(EE_NAMES):
        return "no joint names come before them"
    return None


@dataclass(frozen=True)
class StateLayout:
    """What each dimension of the proprioceptive state `observation.state` means.

    The state is (n_joints + 8,) float32: the arm's joint positions (rad, in `joint_names`
    order), the tool centre point's position ee_x ee_y ee_z (m, world frame), its orientation
    ee_qw ee_qx ee_qy ee_qz (unit quaternion, wxyz) and the gripper opening (m between the
    fingers). The groups index the last axis, so batches slice alike: for states (K, dim),
    `states[:, layout.ee_pos]` is (K, 3).

    Attributes:
        names: one per dimension: the joint names, then EE_NAMES.

    Raises:
        LayoutError: names that are not joint names followed by EE_NAMES.
    """

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        names = tuple(self.names)
        object.__setattr__(self, "names", names)  # a list from JSON becomes the tuple
        problem = _state_problem(names)
        if problem:
            raise LayoutError(f"state names {list(names)} do not form a state layout: {problem} "
                              f"(allowed: joint names, then {list(EE_NAMES)})")

    @classmethod
    def for_robot(cls, robot: RobotSpec) -> StateLayout:
        """The state an env with this arm returns (robot.state_dim dims)."""
        return cls(tuple(robot.joint_names) + EE_NAMES)

    @classmethod
    def from_names(cls, names: Sequence[str]) -> StateLayout:
        """From the list a dataset's info.json or a checkpoint's config.json holds."""
        return cls(tuple(names))

    def to_names(self) -> list[str]:
        """The list info.json and config.json hold."""
        return list(self.names)

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def joints(self) -> slice:
        """Joint positions, (n_joints,) rad."""
        return slice(0, self.names.index(EE_NAMES[0]))

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.names[self.joints]

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def ee_pos(self) -> slice:
        """Tool centre point position, (3,) m, world frame."""
        return _span(self.names, "ee_x", "ee_z")

    @property
    def ee_quat(self) -> slice:
        """Tool orientation, (4,) unit quaternion wxyz."""
        return _span(self.names, "ee_qw", "ee_qz")

    @property
    def gripper_opening(self) -> int:
        """Distance between the fingers, m (a scalar index)."""
        return self.names.index("gripper_opening")

    def describe(self) -> str:
        """One line for messages: the joints by name, then the EE part and the width."""
        return (f"state [{', '.join(self.joint_names)}] + EE pose and gripper opening "
                f"({self.dim} values)")


@dataclass(frozen=True)
class ActionLayout:
    """What each dimension of an action means: (7,) float32, the EE position delta dx dy dz
    (m), the EE rotation delta drx dry drz (axis-angle, rad, world frame), both applied to the
    measured pose, and the gripper command (0 open .. 1 closed). Every env takes exactly this.

    Raises:
        LayoutError: names other than ACTION_NAMES.
    """

    names: tuple[str, ...] = ACTION_NAMES

    def __post_init__(self) -> None:
        names = tuple(self.names)
        object.__setattr__(self, "names", names)
        if names != ACTION_NAMES:
            raise LayoutError(f"action names {list(names)} do not form an action layout "
                              f"(allowed: exactly {list(ACTION_NAMES)}, what the envs take)")

    @classmethod
    def from_names(cls, names: Sequence[str]) -> ActionLayout:
        """From the list a dataset's info.json or a checkpoint's config.json holds."""
        return cls(tuple(names))

    def to_names(self) -> list[str]:
        return list(self.names)

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def dpos(self) -> slice:
        """EE position delta, (3,) m."""
        return _span(self.names, "dx", "dz")

    @property
    def drot(self) -> slice:
        """EE rotation delta, (3,) axis-angle rad."""
        return _span(self.names, "drx", "drz")

    @property
    def motion(self) -> slice:
        """Every EE delta, (6,): what moves the arm, as opposed to the gripper."""
        return _span(self.names, "dx", "drz")

    @property
    def gripper(self) -> int:
        """The gripper command (a scalar index)."""
        return self.names.index("gripper")


ACTION_LAYOUT = ActionLayout()


def check_action(action: Any, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """An env's `step` argument as float32 clipped to [low, high] (what the env applies), or
    InvalidActionError for a wrong shape, a non-number or a non-finite value: never clipped
    into a command."""
    a = np.asarray(action)
    if a.shape != np.shape(low):
        raise InvalidActionError(f"action must have shape {np.shape(low)} (dpos xyz, drot xyz, "
                                 f"gripper), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise InvalidActionError(f"action must be real numbers, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        bad = [i for i in range(a.size) if not np.isfinite(a[i])]
        raise InvalidActionError(f"action has non-finite values at indices {bad}: {a}")
    return np.clip(a.astype(np.float32), low, high)


def roll_forward(state: np.ndarray, actions: np.ndarray, layout: StateLayout,
                 action_layout: ActionLayout = ACTION_LAYOUT) -> np.ndarray:
    """(Ds,) float32: `state` with the deltas of `actions` (k, Da) composed onto its
    end-effector pose as the envs compose one (position added, rotation pre-multiplied).
    Joints and gripper opening stay as measured.

    This is not where the arm will be: the envs aim each tick at measured pose + delta, and
    the controller covers a part of it per tick (about a third of a position delta on the mk6
    arm), so the sum overshoots. It is a deterministic summary of what the arm has been told,
    the same at training and at run time; the measured joints still say where it is now.

    Why: under async execution the arm keeps running the committed actions while a chunk is
    computed; a policy told where those leave the arm plans from there (VLASH, arXiv
    2512.01031; `agent run --exec ahead`, `agent train --delay-max`). Training and run time
    call this same function, so what the policy reads is the same estimate in both.
    """
    out = np.array(state, np.float32, copy=True)
    pos = out[layout.ee_pos].astype(np.float64)
    quat = out[layout.ee_quat].astype(np.float64)
    for a in np.asarray(actions, np.float64).reshape(-1, action_layout.dim):
        pos = pos + a[action_layout.dpos]
        quat = quat_mul(quat_from_axis_angle(a[action_layout.drot]), quat)
    out[layout.ee_pos] = pos
    out[layout.ee_quat] = quat / np.linalg.norm(quat)
    return out


def env_state_names(env: Any) -> tuple[str, ...]:
    """Names of the per-frame environment state a sim env gives; () for an env without ground
    truth (the hardware bridge). Goal slots first, then each object in the task's order."""
    task = getattr(env.unwrapped, "task", None)
    if task is None or not hasattr(env.unwrapped, "privileged"):
        return ()
    slots = GOAL_SLOTS + tuple(o.name for o in task.objects)
    return tuple(f"{slot}.{n}" for slot in slots for n in POSE_NAMES)


def env_state_vector(priv: dict, names: tuple[str, ...]) -> np.ndarray:
    """The frame's environment state, laid out as `names`. A goal without an object (reach the
    ball) repeats the target in the goal_object slot."""
    goal = priv["goal"]
    slots = {"goal_object": goal["object"] or goal["target"], "goal_target": goal["target"]}
    out = []
    for slot in dict.fromkeys(n.rsplit(".", 1)[0] for n in names):
        obj = priv["objects"][slots.get(slot, slot)]
        out.append(np.concatenate([obj["pos"], obj["quat"]]))
    return np.concatenate(out).astype(np.float32)
