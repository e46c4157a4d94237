"""Workstation-side kinematics, chosen by the `robot.kinematics` name in the handshake.

The bridge env turns 7-D end-effector deltas into joint targets here, on the workstation, so the
server only ever sees joint targets (PROTOCOL.md, "Where IK happens"). That decision stands for
every arm: joint space is where an arm controller's limits live, so the robot side clamps
exactly and cheaply with forward kinematics alone, and no iterative solver (which can fail to
converge or pick another elbow) runs inside its safety loop; the workstation, which already runs
the policy, has the cycles. The name is a robot description (`sims/robots/NAME.toml`): its own
model file gives FK and IK (`sims.kinematics.ArmKinematics`: MuJoCo FK, mink differential IK),
so a new arm needs a description, not a solver.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from hw_bridge.errors import BridgeError
from sims.robots import UnknownRobotDescriptionError


class Kinematics(Protocol):
    joint_names: tuple[str, ...]

    def solve_ik(self, pos: np.ndarray, quat: np.ndarray, q0: np.ndarray) -> np.ndarray:
        """Joint angles putting the TCP at (pos, wxyz quat), starting from q0."""

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) and wxyz quaternion (4,) for joint angles q."""


def make_kinematics(name: str) -> Kinematics:
    """The IK/FK model of the described robot `name`, or a BridgeError listing the known ones."""
    from sims.kinematics import make_arm_kinematics

    try:
        return make_arm_kinematics(name)
    except UnknownRobotDescriptionError as e:
        raise BridgeError(f"no workstation kinematics for robot {name!r}: {e}") from None
