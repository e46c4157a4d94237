"""`--teleop SPEC` / `--takeover SPEC` -> a `TeleopDevice`: NAME or NAME:ARGS.

Each factory gets the text after "NAME:" ("" for a bare NAME) and imports its hardware library
only when called, so an absent library costs nothing until its device is asked for.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from agent.teleop.base import TeleopDevice, TeleopError


def _keyboard(arg: str) -> TeleopDevice:
    from agent.teleop.keyboard import KeyboardConfig, KeyboardDevice

    return KeyboardDevice(KeyboardConfig.parse(arg))


def _gamepad(arg: str) -> TeleopDevice:
    from agent.teleop.gamepad import Gamepad, GamepadConfig

    return Gamepad(GamepadConfig.parse(arg))


def _spacemouse(arg: str) -> TeleopDevice:
    from agent.teleop.spacemouse import SpaceMouse, SpaceMouseConfig

    return SpaceMouse(SpaceMouseConfig.parse(arg))


def _leader(arg: str) -> TeleopDevice:
    from agent.teleop.leader import LeaderArm

    return LeaderArm(arg)


#: name -> factory of the text after "name:".
DEVICES: dict[str, Callable[[str], TeleopDevice]] = {
    "keyboard": _keyboard,
    "gamepad": _gamepad,
    "spacemouse": _spacemouse,
    "leader": _leader,
}


def make_device(spec: str) -> TeleopDevice:
    """The (unconnected) device `spec` names, e.g. "keyboard", "gamepad",
    "leader:tcp://10.0.0.2:5555".

    Raises:
        TeleopError: an unknown name (with the known ones and the closest), or arguments the
            device refuses.
    """
    name, _, arg = spec.partition(":")
    if name not in DEVICES:
        close = difflib.get_close_matches(name, DEVICES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TeleopError(f"unknown teleop device {name!r} (from {spec!r}); known: "
                          f"{sorted(DEVICES)}{hint}")
    try:
        return DEVICES[name](arg)
    except ValueError as e:
        raise TeleopError(f"--teleop {spec}: {e}") from None
