"""The hardware bridge: drive a robot arm over ZeroMQ, safety enforced on the robot side.

    agent bridge serve --robot sim:pick_place --bind tcp://127.0.0.1:5555   # robot side
    envs.make("bridge:tcp://127.0.0.1:5555")                                # workstation side

This package is the robot side and the wire: it imports nothing above `sims`, so a robot PC
runs the server without the policy or training stack. The workstation's Gymnasium env
over the client lives in `envs.bridge`.

See PROTOCOL.md for the wire protocol and the safety rules.
"""

from __future__ import annotations

from hw_bridge.errors import (
    BridgeError,
    CameraError,
    CameraOpenError,
    CameraSpecError,
    DriverFault,
    NotConnected,
    ProtocolError,
    Rejected,
    Timeout,
    UnknownRobotError,
)

__all__ = ["BridgeError", "CameraError", "CameraOpenError", "CameraSpecError", "DriverFault",
           "NotConnected", "ProtocolError", "Rejected", "Timeout", "UnknownRobotError"]
