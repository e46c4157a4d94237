"""The hardware bridge: drive a robot arm over ZeroMQ, safety enforced on the robot side.

    agent bridge serve --robot sim:pick_place --bind tcp://127.0.0.1:5555   # robot side
    envs.make("bridge:tcp://127.0.0.1:5555")                                # workstation side

See PROTOCOL.md for the wire protocol and the safety rules.
"""

from __future__ import annotations

from typing import Any

from hw_bridge.errors import (
    BridgeError,
    DriverFault,
    NotConnected,
    ProtocolError,
    Rejected,
    Timeout,
    UnknownRobotError,
)

__all__ = ["BridgeError", "DriverFault", "NotConnected", "ProtocolError", "Rejected", "Timeout",
           "UnknownRobotError", "make_env"]


def make_env(address: str, **kwargs: Any) -> Any:
    """The `bridge:tcp://HOST:PORT` env factory (imports the env module on first use)."""
    from hw_bridge.env import BridgeEnv

    return BridgeEnv(address, **kwargs)


def _register() -> None:
    from envs.registry import register_factory

    register_factory("bridge", make_env)


_register()
