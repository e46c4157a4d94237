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


#: name -> factory of the text after "name:".
DEVICES: dict[str, Callable[[str], TeleopDevice]] = {
    "keyboard": _keyboard,
}


def make_device(spec: str) -> TeleopDevice:
    """The (unconnected) device `spec` names, e.g. "keyboard", "keyboard:speed=0.1".

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
