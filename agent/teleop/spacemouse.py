"""`--teleop spacemouse[:INDEX]`: a 3Dconnexion SpaceMouse (6-DoF puck, 2 buttons) through
`pyspacemouse` (raw HID via hidapi; no 3Dconnexion driver needed).

Push the puck to move the tool, twist and tilt it to turn it; a puck at rest holds the arm.
The left button toggles the gripper; the right one passes control back and forth in `agent run
--takeover` (it sends takeover and handback: the run applies whichever fits). Directions are the
operator's, standing behind the robot facing +x: push forward is +x, right is -y, lift is +z.
The signs are `SpaceMouseConfig.axes`, from pyspacemouse's documented frame; check them on
your puck once, slowly (no SpaceMouse was at hand when this was written).

Needs `pip install 'motoken[teleop]'` and read access to the device's /dev/hidraw* (a udev
rule, see pyspacemouse's README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.teleop.base import TeleopCommand, TeleopDevice, TeleopError
from agent.teleop.common import (
    A,
    GripperLatch,
    clamp_action,
    deadzone,
    follower_state,
    parse_role,
)

#: (action name, pyspacemouse state field, sign).
DEFAULT_AXES: tuple[tuple[str, str, float], ...] = (
    ("dx", "y", 1.0), ("dy", "x", -1.0), ("dz", "z", 1.0),
    ("drx", "roll", 1.0), ("dry", "pitch", 1.0), ("drz", "yaw", -1.0))
FIELDS = ("x", "y", "z", "roll", "pitch", "yaw")


@dataclass(frozen=True)
class SpaceMouseConfig:
    """How the puck's 6 axes and 2 buttons become the action and events.

    Attributes:
        index: which SpaceMouse (pyspacemouse's DeviceNumber).
        deadzone: readings below this magnitude are 0 (the puck never rests at exactly 0).
        pos_step: m per control step at full deflection (clamped to MAX_DPOS).
        rot_step: rad per control step at full deflection (clamped to MAX_DROT).
        axes: (action name, state field, sign) per driven dimension.
        buttons: role of button 0, 1, ...: "gripper" toggles it, else events joined by "+".
    """

    index: int = 0
    deadzone: float = 0.1
    pos_step: float = 0.02
    rot_step: float = 0.1
    axes: tuple[tuple[str, str, float], ...] = DEFAULT_AXES
    buttons: tuple[str, ...] = ("gripper", "takeover+handback")

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"spacemouse index must be >= 0, got {self.index}")
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {self.deadzone}")
        if not (self.pos_step > 0 and self.rot_step > 0):
            raise ValueError(f"pos_step and rot_step must be > 0, got {self.pos_step}, "
                             f"{self.rot_step}")
        for name, source, _ in self.axes:
            if name not in A.names or name == "gripper" or source not in FIELDS:
                raise ValueError(f"axis {name!r} <- {source!r}: allowed targets "
                                 f"{list(A.names[:6])}, sources {list(FIELDS)}")
        for role in self.buttons:
            parse_role(role)

    @classmethod
    def parse(cls, arg: str) -> SpaceMouseConfig:
        """From the text after "spacemouse:": "" or the device number."""
        if not arg:
            return cls()
        if not arg.isdigit():
            raise ValueError(f"spacemouse takes a device number (spacemouse:1), got {arg!r}")
        return cls(index=int(arg))


class SpaceMouse(TeleopDevice):
    """A SpaceMouse read through pyspacemouse (module docstring)."""

    name = "spacemouse"

    def __init__(self, config: SpaceMouseConfig | None = None) -> None:
        self.config = config or SpaceMouseConfig()
        self.latch = GripperLatch()
        self._roles = [parse_role(r) for r in self.config.buttons]
        self._dev: Any = None
        self._was_down: list[bool] = [False] * len(self._roles)

    def connect(self) -> None:
        try:
            import pyspacemouse
        except ImportError:
            raise TeleopError("the SpaceMouse needs pyspacemouse and hidapi: pip install "
                              "'motoken[teleop]' (and the system's libhidapi)") from None
        try:
            dev = pyspacemouse.open(DeviceNumber=self.config.index)
        except Exception as e:  # hidapi raises its own types (OSError, IOError, ...)
            raise TeleopError(f"cannot open SpaceMouse {self.config.index}: {e}; check that "
                              f"/dev/hidraw* is readable by this user (udev rule)") from None
        if not dev:
            raise TeleopError(f"no SpaceMouse found (device number {self.config.index}); plug "
                              f"one in and check that /dev/hidraw* is readable by this user")
        self._dev = dev

    def read(self, obs: Any) -> TeleopCommand:
        if self._dev is None:
            raise TeleopError("SpaceMouse not connected; call connect() first")
        state = follower_state(obs)
        self.latch.observe(state)
        try:
            puck = self._dev.read()
        except Exception as e:
            raise TeleopError(f"SpaceMouse read failed (unplugged?): {e}") from None
        events: set[str] = set()
        down = [bool(b) for b in puck.buttons]
        # The buttons arrive as levels; a press is an edge (held down, it fires once).
        for i, (toggles, sends) in enumerate(self._roles):
            now = i < len(down) and down[i]
            if now and not self._was_down[i]:
                if toggles:
                    self.latch.toggle()
                events |= sends
            self._was_down[i] = now
        if "takeover" in events:
            self.latch.sync(state)  # control passes to the operator with the gripper as it is
        action = np.zeros(A.dim, np.float32)
        for name, source, sign in self.config.axes:
            step = self.config.pos_step if name in A.names[A.dpos] else self.config.rot_step
            value = deadzone(getattr(puck, source), self.config.deadzone)
            action[A.names.index(name)] = sign * value * step
        action[A.gripper] = self.latch.command
        engaged = bool(np.any(action[A.motion] != 0))
        return TeleopCommand(clamp_action(action), frozenset(events), engaged=engaged)

    def close(self) -> None:
        if self._dev is not None:
            self._dev.close()
        self._dev = None
