"""Errors raised by the hardware bridge. Messages say what was got and what is allowed."""

from __future__ import annotations


class BridgeError(Exception):
    """Base class for every hardware-bridge error."""


class NotConnected(BridgeError):
    """A call that needs a live connection (or an open session) was made without one."""


class Timeout(BridgeError):
    """The other side did not answer within the stated time."""


class ProtocolError(BridgeError):
    """A message that cannot be decoded, has the wrong version, type or fields."""

    def __init__(self, message: str, code: str = "malformed") -> None:
        super().__init__(message)
        self.code = code


class Rejected(BridgeError):
    """The server refused a request; `code` is the error code from PROTOCOL.md."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class DriverFault(BridgeError):
    """A robot driver could not read or write; the server holds and latches `fault`."""


class UnknownRobotError(BridgeError, KeyError):
    """A `--robot` spec naming no registered driver."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes.
        return str(self.args[0])


class CameraError(BridgeError):
    """A camera could not be configured, opened or read; the message names its source."""


class CameraSpecError(CameraError, ValueError):
    """A `--camera` spec that does not parse; the message shows the allowed grammar."""


class CameraOpenError(CameraError):
    """A camera source that cannot be opened or delivers no first frame (what to check)."""
