"""The one small interface every teleoperation device implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

# Operator events, the same on every device (keys, buttons):
#   next      end this episode and keep it (or skip the rest of the reset period)
#   rerecord  discard the episode in progress and record it again
#   stop      end the session; everything committed so far is kept
#   takeover  the human takes control from the running policy (agent run --takeover)
#   handback  the policy takes control again
EVENTS = frozenset({"next", "rerecord", "stop", "takeover", "handback"})


class TeleopError(RuntimeError):
    """A device could not be opened or read; the message says which and what to check."""


@dataclass(frozen=True)
class TeleopCommand:
    """One reading of the device.

    Attributes:
        action: (7,) float32 in the env's EE-delta contract, already limited to its bounds.
        events: operator events since the last read (a subset of EVENTS).
        engaged: the operator is commanding motion now (a dead-man, or any axis moved).
    """

    action: np.ndarray
    events: frozenset[str] = frozenset()
    engaged: bool = False

    def __post_init__(self) -> None:
        if self.action.shape != (7,):
            raise ValueError(f"a teleop action has shape (7,), got {self.action.shape}")
        if not self.events <= EVENTS:
            raise ValueError(f"unknown teleop events {sorted(self.events - EVENTS)}; "
                             f"known: {sorted(EVENTS)}")


class TeleopDevice(ABC):
    """A device behind `--teleop`. `read` never blocks longer than a few milliseconds."""

    name: str

    @abstractmethod
    def connect(self) -> None:
        """Open the device; TeleopError says what is missing (library, permissions, port)."""

    @abstractmethod
    def read(self, obs: Any) -> TeleopCommand:
        """The newest command. `obs` is the env's latest observation (a leader arm or a
        gripper toggle needs the follower's state); devices that do not need it ignore it."""

    def close(self) -> None:
        """Release the device (restore the terminal, close the socket)."""
        return None

    def __enter__(self) -> TeleopDevice:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
