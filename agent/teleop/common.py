"""What the hand-held devices share: stick shaping, button roles, the action's bounds, and a
gripper command that survives a takeover.

Every device's action passes `clamp_action` last, so whatever a config or a driver reports, a
device never hands the loop more than the env's per-step limits (envs.tabletop.MAX_DPOS,
MAX_DROT; gripper 0 open .. 1 closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.teleop.base import EVENTS
from envs.features import ACTION_LAYOUT, EE_NAMES
from envs.tabletop import MAX_DPOS, MAX_DROT

A = ACTION_LAYOUT
ACTION_LOW = np.array([-MAX_DPOS] * 3 + [-MAX_DROT] * 3 + [0.0], dtype=np.float32)
ACTION_HIGH = np.array([MAX_DPOS] * 3 + [MAX_DROT] * 3 + [1.0], dtype=np.float32)
# A follower whose tool moved further than this between two reads was not moved by a control
# step (at most MAX_DPOS each) but reset: a new episode. Devices then re-sync to it.
RESET_JUMP_M = 3 * MAX_DPOS
# The gripper counts as closed below this share of the widest opening seen: a 4 cm cube held
# in the 8 cm mk6 gripper reads 0.5, fully open 1.0, closed on nothing ~0.
CLOSED_SHARE = 0.75
# What a button may do: toggle the gripper, or send one or more operator events at once
# ("takeover+handback": one button that passes control back and forth).
GRIPPER_ROLE = "gripper"


def clamp_action(action: np.ndarray) -> np.ndarray:
    """(7,) float32 within the env's action bounds; non-finite values are a device fault."""
    a = np.asarray(action, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"teleop device produced a non-finite action {a}")
    return np.clip(a, ACTION_LOW, ACTION_HIGH)


def deadzone(value: float, zone: float) -> float:
    """A stick reading (-1..1) with |value| < zone read as 0, the rest rescaled to 0..1 so
    the command starts from zero at the zone's edge instead of jumping to `zone`."""
    v = float(value)
    if abs(v) < zone:
        return 0.0
    return float(np.sign(v) * min(1.0, (abs(v) - zone) / (1.0 - zone)))


def parse_role(role: str) -> tuple[bool, frozenset[str]]:
    """A button's role -> (toggles the gripper, events it sends); ValueError if unknown."""
    if role == GRIPPER_ROLE:
        return True, frozenset()
    events = frozenset(role.split("+"))
    if not events or not events <= EVENTS:
        raise ValueError(f"button role {role!r}: allowed are {GRIPPER_ROLE!r} or events "
                         f"{sorted(EVENTS)} joined by '+'")
    return False, events


def follower_state(obs: Any) -> np.ndarray:
    """The follower's proprioceptive state from an `Observation` or an env observation dict."""
    state = obs.state if hasattr(obs, "state") else obs["state"]
    return np.asarray(state, dtype=np.float64)


def ee_of(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(position m, quaternion wxyz, gripper opening m) of a state vector. Every state layout
    ends with EE_NAMES (envs.features.StateLayout enforces it), so no joint count is needed."""
    ee = state[-len(EE_NAMES):]
    return ee[0:3], ee[3:7], float(ee[7])


@dataclass
class GripperLatch:
    """The gripper command (0 open, 1 closed) of a device whose button toggles it.

    It starts from what the follower's gripper shows, and re-syncs to it when the follower was
    reset (RESET_JUMP_M) or control passes to the operator (`sync`): a takeover mid-grasp must
    not open the gripper the policy closed.
    """

    command: float | None = None
    _widest: float = 0.0
    _last_pos: np.ndarray | None = None

    def observe(self, state: np.ndarray) -> None:
        pos, _, opening = ee_of(state)
        self._widest = max(self._widest, opening)
        reset = (self._last_pos is not None
                 and float(np.linalg.norm(pos - self._last_pos)) > RESET_JUMP_M)
        self._last_pos = pos.copy()
        if self.command is None or reset:
            self.sync(state)

    def sync(self, state: np.ndarray) -> None:
        opening = ee_of(state)[2]
        self._widest = max(self._widest, opening)
        self.command = 1.0 if opening < CLOSED_SHARE * self._widest else 0.0

    def toggle(self) -> None:
        self.command = 0.0 if self.command else 1.0
