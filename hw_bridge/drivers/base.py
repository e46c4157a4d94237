"""The driver interface: what the server needs from an arm, real or simulated.

Lifecycle (LeRobot style, explicit and guarded): `connect()` -> inactive (reading, holding
where it stands) -> `activate()` -> active (following `write` setpoints every period) ->
`hold()` back to inactive, or a read/write failure -> `fault`, which only `clear_fault()`
leaves. Every method that talks to the arm raises `DriverFault` on failure; the server then
holds and latches its own `fault` mode. A driver never decides to resume motion by itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from hw_bridge.errors import NotConnected
from hw_bridge.safety import SafetyLimits
from sims.base import RobotSpec


class DriverState(StrEnum):
    DISCONNECTED = "disconnected"
    INACTIVE = "inactive"
    ACTIVE = "active"
    FAULT = "fault"


@dataclass(frozen=True)
class ArmState:
    """One reading of the arm.

    Attributes:
        q: (n_joints,) float64 measured joint angles, rad.
        ee_pos: (3,) float64 tool centre point, m, world frame.
        ee_quat: (4,) float64 tool orientation, wxyz.
        gripper: measured finger opening, m.
    """

    q: np.ndarray
    ee_pos: np.ndarray
    ee_quat: np.ndarray
    gripper: float


@dataclass(frozen=True)
class Snapshot:
    """What the stream thread publishes: a reading, camera images, sim-only extras."""

    state: ArmState
    images: dict[str, np.ndarray] = field(default_factory=dict)
    sim_only: dict[str, Any] | None = None


class Driver(ABC):
    """An arm behind the bridge. Subclasses set `robot`, `period`, `cameras`, `limits`."""

    robot: RobotSpec
    period: float  # s: the arm's own control period (500 Hz for the sim and UR e-series)
    cameras: dict[str, tuple[int, int]]  # name -> (height, width)
    limits: SafetyLimits
    kinematics: str  # name of the workstation-side IK model (`hw_bridge.kinematics`)

    def __init__(self) -> None:
        self.state = DriverState.DISCONNECTED

    def _require(self, *allowed: DriverState) -> None:
        if self.state not in allowed:
            raise NotConnected(f"driver is {self.state.value}; this call needs "
                               f"{'/'.join(s.value for s in allowed)}")

    @abstractmethod
    def connect(self) -> None:
        """Open the connection; the arm holds where it stands (state inactive)."""

    @abstractmethod
    def disconnect(self) -> None:
        """Stop the arm and release the connection."""

    @abstractmethod
    def read(self) -> ArmState:
        """Measured joint angles, TCP pose and gripper (DriverFault on failure)."""

    @abstractmethod
    def write(self, q: np.ndarray, gripper: float) -> None:
        """Send this period's joint setpoint (DriverFault on failure)."""

    @abstractmethod
    def hold(self) -> None:
        """Keep the arm where it is now; best effort even after a fault."""

    @abstractmethod
    def wait_period(self, n: int) -> None:
        """Let the arm run n periods with the last setpoint (the sim steps physics here)."""

    @abstractmethod
    def tcp_position(self, q: np.ndarray) -> np.ndarray:
        """Forward kinematics: TCP position (3,) for joint angles q."""

    def hold_target(self, arm: ArmState) -> np.ndarray:
        """The joint setpoint that holds the arm still where reading `arm` found it.

        The measured q by default; an arm whose own controller tracks a desired position
        (Franka's q_d) returns that, since its first command must continue from it.
        """
        return arm.q.copy()

    def activate(self) -> None:
        self._require(DriverState.INACTIVE, DriverState.ACTIVE)
        self.state = DriverState.ACTIVE

    def clear_fault(self) -> None:
        """Explicit recovery after a fault; the arm stays inactive (holding)."""
        self.state = DriverState.INACTIVE

    def reset_episode(self, seed: int | None) -> dict[str, Any]:
        """Start a new episode where the robot supports it (sim); return its public facts."""
        return {}

    def current_episode(self) -> dict[str, Any]:
        """The public facts of the episode in place now (`welcome.episode`); {} if none."""
        return {}

    def snapshot(self) -> Snapshot:
        """A consistent reading plus camera images, called from the stream thread."""
        return Snapshot(self.read())

    def release_stream(self) -> None:
        """Free what `snapshot` created, from the stream thread (GL contexts are per thread)."""
        return None  # nothing by default

    def __enter__(self) -> Driver:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()
