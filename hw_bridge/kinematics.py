"""Workstation-side kinematics, chosen by the `robot.kinematics` name in the handshake.

The bridge env turns 7-D end-effector deltas into joint targets here, on the workstation, with
the same damped-least-squares IK the simulated env uses (`MujocoSim.solve_ik`), so the server
only ever sees joint targets (see PROTOCOL.md, "Where IK happens").
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Protocol

import mujoco
import numpy as np

from hw_bridge.errors import BridgeError


class Kinematics(Protocol):
    joint_names: tuple[str, ...]

    def solve_ik(self, pos: np.ndarray, quat: np.ndarray, q0: np.ndarray) -> np.ndarray:
        """Joint angles putting the TCP at (pos, wxyz quat), starting from q0."""

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) and wxyz quaternion (4,) for joint angles q."""


class Mk6Kinematics:
    """The mk6 arm's model (sims/assets/arm.xml) without a scene, for IK and FK only."""

    def __init__(self) -> None:
        from sims.mujoco_sim import MujocoSim

        self._sim = MujocoSim([])
        self.joint_names = self._sim.robot.joint_names
        self._data = mujoco.MjData(self._sim.model)
        self._tcp = self._sim.model.site("tcp").id

    def solve_ik(self, pos: np.ndarray, quat: np.ndarray, q0: np.ndarray) -> np.ndarray:
        return self._sim.solve_ik(pos, quat, q0)

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self._data
        d.qpos[self._sim.qpos_adr] = q
        mujoco.mj_kinematics(self._sim.model, d)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self._tcp])
        return d.site_xpos[self._tcp].copy(), quat


KINEMATICS: dict[str, Callable[[], Kinematics]] = {"mk6": Mk6Kinematics}


def make_kinematics(name: str) -> Kinematics:
    """The IK/FK model called `name`, or a BridgeError listing the known ones."""
    if name not in KINEMATICS:
        close = difflib.get_close_matches(name, KINEMATICS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise BridgeError(f"no workstation kinematics for robot {name!r}; known: "
                          f"{sorted(KINEMATICS)}{hint}")
    return KINEMATICS[name]()
