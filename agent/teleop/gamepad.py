"""`--teleop gamepad[:INDEX]`: a game controller through pygame's joystick API (SDL).

Hold the dead-man button (LB) to move: the left stick drives the tool in the table plane, the
right stick up/down and turns it about the vertical; let go and the arm holds. The default
mapping is SDL's for an Xbox-style pad (axes 0/1 left stick, 3/4 right stick; buttons A=0
B=1 X=2 Y=3 LB=4 RB=5 back=6 start=7); `GamepadConfig` changes any of it. Directions are
the operator's, standing behind the robot and facing +x: stick forward is +x, right is -y.

Needs `pip install 'motoken[teleop]'` (pygame). SDL runs with the dummy video driver, so no
display is needed (over SSH too).
"""

from __future__ import annotations

import os
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

#: action dimension -> (axis, sign), for the default pad: forward on a stick reads -1.
DEFAULT_AXES: tuple[tuple[str, int, float], ...] = (
    ("dx", 1, -1.0), ("dy", 0, -1.0), ("dz", 4, -1.0), ("drz", 3, -1.0))
DEFAULT_BUTTONS: tuple[tuple[int, str], ...] = (
    (0, "gripper"), (1, "rerecord"), (7, "next"), (6, "stop"), (3, "takeover"),
    (2, "handback"))


@dataclass(frozen=True)
class GamepadConfig:
    """How a gamepad's axes and buttons become the action and events.

    Attributes:
        index: which joystick (pygame's numbering, 0 = the first plugged in).
        deadzone: stick readings below this magnitude are 0 (drift of a centred stick).
        pos_step: m per control step at full stick (clamped to MAX_DPOS).
        rot_step: rad per control step at full stick (clamped to MAX_DROT).
        axes: (action name, axis index, sign) per driven dimension.
        deadman: button that must be held for motion; None: always engaged.
        buttons: (button index, role): "gripper" toggles it, else events joined by "+".
    """

    index: int = 0
    deadzone: float = 0.15
    pos_step: float = 0.02
    rot_step: float = 0.1
    axes: tuple[tuple[str, int, float], ...] = DEFAULT_AXES
    deadman: int | None = 4
    buttons: tuple[tuple[int, str], ...] = DEFAULT_BUTTONS

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"gamepad index must be >= 0, got {self.index}")
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {self.deadzone}")
        if not (self.pos_step > 0 and self.rot_step > 0):
            raise ValueError(f"pos_step and rot_step must be > 0, got {self.pos_step}, "
                             f"{self.rot_step}")
        for name, _, _ in self.axes:
            if name not in A.names or name == "gripper":
                raise ValueError(f"axis target {name!r}: allowed {list(A.names[:6])}")
        for _, role in self.buttons:
            parse_role(role)

    @classmethod
    def parse(cls, arg: str) -> GamepadConfig:
        """From the text after "gamepad:": "" or the joystick index."""
        if not arg:
            return cls()
        if not arg.isdigit():
            raise ValueError(f"gamepad takes a joystick index (gamepad:1), got {arg!r}")
        return cls(index=int(arg))


class Gamepad(TeleopDevice):
    """A gamepad read through pygame (module docstring)."""

    name = "gamepad"

    def __init__(self, config: GamepadConfig | None = None) -> None:
        self.config = config or GamepadConfig()
        self.latch = GripperLatch()
        self._pg: Any = None
        self._js: Any = None
        self._roles = {i: parse_role(r) for i, r in self.config.buttons}

    def connect(self) -> None:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # joystick events need no screen
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            import pygame
        except ImportError:
            raise TeleopError("the gamepad needs pygame: pip install 'motoken[teleop]'") from None
        self._pg = pygame
        try:
            pygame.display.init()  # SDL delivers joystick events through the video subsystem
            pygame.joystick.init()
            count = pygame.joystick.get_count()
            if self.config.index >= count:
                raise TeleopError(
                    f"no gamepad at index {self.config.index}: {count} joystick(s) found; plug "
                    f"one in and check that /dev/input/js* or event* is readable by this user")
            self._js = pygame.joystick.Joystick(self.config.index)
            self._js.init()
        except (pygame.error, TeleopError) as e:
            self.close()  # leave SDL as it was found
            if isinstance(e, TeleopError):
                raise
            raise TeleopError(f"cannot open the gamepad: {e}") from None

    def read(self, obs: Any) -> TeleopCommand:
        if self._js is None:
            raise TeleopError("gamepad not connected; call connect() first")
        pg, js = self._pg, self._js
        state = follower_state(obs)
        self.latch.observe(state)
        try:
            pg.event.pump()
            # Presses from the event queue, not the button state: a tap between two reads
            # (a 20 Hz loop polls every 50 ms) would otherwise be missed.
            pressed = [e.button for e in pg.event.get(pg.JOYBUTTONDOWN)
                       if getattr(e, "instance_id", js.get_instance_id()) == js.get_instance_id()]
            held = self.config.deadman is None or bool(js.get_button(self.config.deadman))
            axes = [js.get_axis(i) for i in range(js.get_numaxes())]
        except pg.error as e:
            raise TeleopError(f"gamepad read failed (unplugged?): {e}") from None
        events: set[str] = set()
        for button in pressed:
            toggles, sends = self._roles.get(button, (False, frozenset()))
            if toggles:
                self.latch.toggle()
            events |= sends
        if "takeover" in events:
            self.latch.sync(state)  # control passes to the operator with the gripper as it is
        action = np.zeros(A.dim, np.float32)
        if held:
            for name, axis, sign in self.config.axes:
                if axis >= len(axes):
                    raise TeleopError(f"gamepad {js.get_name()!r} has {len(axes)} axes; the "
                                      f"mapping uses axis {axis} for {name}")
                step = self.config.pos_step if name in A.names[A.dpos] else self.config.rot_step
                value = deadzone(axes[axis], self.config.deadzone)
                action[A.names.index(name)] = sign * value * step
        action[A.gripper] = self.latch.command
        # With a dead-man, holding it is being engaged (holding still is a command too).
        engaged = held if self.config.deadman is not None else bool(np.any(action[A.motion]))
        return TeleopCommand(clamp_action(action), frozenset(events), engaged=engaged)

    def close(self) -> None:
        if self._pg is not None:
            self._pg.joystick.quit()
            self._pg.display.quit()
        self._pg = self._js = None
