"""Several robots in one policy: their states in one shared layout, and which robot is which.

A policy trained on one arm reads that arm's state as it is (PolicyConfig.state_names), as
before. A policy trained on arms with different states (PolicyConfig.robot_states: robot name
-> its state names, e.g. the mk6's 6 joints and the Panda's 7) reads every robot's state in one
shared layout, padded the way cross-embodiment policies pad (Octo, CrossFormer):

    joint_0 .. joint_{J-1}   the robot's joints in its own order; J: the most of any robot
    EE_NAMES                 EE position, quaternion and gripper opening

An arm with fewer joints leaves the last slots absent: NaN in the packed float state, the
`state_absent` special id in the token sequence (an embedding of its own, never a bin, so the
model cannot read absence as a joint angle). And the state segment opens with the robot's own
token `robot:NAME` in place of begin_state, so the model knows whose joints the slots hold.

Why this form, and not per-robot codecs or projections:
- The EE pose and gripper mean the same on every arm, as does the action (the EE-delta
  contract, envs.features.ACTION_LAYOUT): one codec over the shared layout keeps one state bin
  = one physical value on every robot, and actions need nothing per robot at all.
- It adds ids, not weights: the network, its ONNX graphs and the prefix length (the robot
  token replaces begin_state) are those of a one-robot policy.
- Joints first and EE last (not EE first): the shared layout is then a StateLayout like any
  arm's, so code that reads states by group (plan and aux targets: ee_pos, ee_quat) reads a
  packed state unchanged; with fixed-width padding the EE tokens sit at the same positions
  for every robot either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from envs.features import EE_NAMES, StateLayout

ABSENT = "state_absent"  # the special id of a padded (absent) state dimension


def robot_token(robot: str) -> str:
    """The special token that opens a robot's state segment."""
    return f"robot:{robot}"


def shared_layout(layouts: Iterable[StateLayout]) -> StateLayout:
    """Joint slots for the arm with the most joints, then EE_NAMES (module doc)."""
    n = max(layout.n_joints for layout in layouts)
    return StateLayout(tuple(f"joint_{i}" for i in range(n)) + EE_NAMES)


@dataclass(frozen=True)
class RobotStates:
    """The robots of a multi-robot policy and their state layouts, sorted by name.

    Raises:
        ValueError: fewer than two robots (a one-robot policy reads its state as it is), or a
            robot name that is empty or not a string.
    """

    layouts: tuple[tuple[str, StateLayout], ...]

    def __post_init__(self) -> None:
        names = [name for name, _ in self.layouts]
        if len(names) < 2 or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"a multi-robot state needs two or more named robots, got "
                             f"{names}; a policy of one robot reads its own state layout")
        object.__setattr__(self, "layouts", tuple(sorted(self.layouts)))

    @classmethod
    def from_names(cls, robot_states: dict[str, Sequence[str]]) -> RobotStates:
        """From PolicyConfig.robot_states (robot -> state names; LayoutError on bad names)."""
        return cls(tuple((r, StateLayout.from_names(n)) for r, n in robot_states.items()))

    def to_names(self) -> dict[str, tuple[str, ...]]:
        return {robot: layout.names for robot, layout in self.layouts}

    @property
    def robots(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.layouts)

    @property
    def shared(self) -> StateLayout:
        return shared_layout(layout for _, layout in self.layouts)

    @property
    def specials(self) -> tuple[str, ...]:
        """The special ids a multi-robot vocabulary needs beyond the default ones."""
        return (ABSENT, *(robot_token(r) for r in self.robots))

    def layout_of(self, robot: str | None) -> StateLayout:
        """The robot's own state layout.

        Raises:
            ValueError: None (the source does not say which robot) or a robot not trained on.
        """
        if robot is None:
            raise ValueError(f"this policy was trained on several robots ({self.describe()}) "
                             f"and reads which one the state comes from: the env's "
                             f"info['robot'] (Observation.robot) or the dataset's "
                             f"info.json robot_type; this one names none")
        found = dict(self.layouts).get(robot)
        if found is None:
            raise ValueError(f"robot {robot!r} is not one this policy was trained on "
                             f"({self.describe()})")
        return found

    def pack(self, robot: str | None, states: np.ndarray) -> np.ndarray:
        """(B, robot's state dim) states of `robot` -> (B, shared dim) float32, NaN in the
        joint slots the robot lacks (tokenized as ABSENT).

        Raises:
            ValueError: an unknown robot (layout_of) or states of another width.
        """
        own, shared = self.layout_of(robot), self.shared
        states = np.asarray(states, np.float32)
        if states.ndim != 2 or states.shape[1] != own.dim:
            raise ValueError(f"robot {robot!r} states have shape {states.shape}, its layout "
                             f"needs (B, {own.dim}): {own.describe()}")
        if not np.isfinite(states).all():  # NaN would pass for an absent slot below
            raise ValueError(f"robot {robot!r} states hold non-finite values")
        out = np.full((len(states), shared.dim), np.nan, np.float32)
        out[:, :own.n_joints] = states[:, own.joints]
        out[:, shared.n_joints:] = states[:, own.n_joints:]
        return out

    def absent(self, robot: str | None) -> np.ndarray:
        """(shared dim,) bool: the joint slots `robot` lacks (layout_of's errors)."""
        out = np.zeros(self.shared.dim, bool)
        out[self.layout_of(robot).n_joints:self.shared.n_joints] = True
        return out

    def robot_with(self, layout: StateLayout) -> str | None:
        """The first robot (by name) whose state layout is `layout`, or None."""
        return next((r for r, own in self.layouts if own == layout), None)

    def describe(self) -> str:
        """One line: each robot and its joints."""
        return "; ".join(f"robot {r!r}: {layout.describe()}" for r, layout in self.layouts)
