"""Errors raised by environments and the env registry."""

from __future__ import annotations


class EnvError(Exception):
    """Base class for motoken environment errors."""


class UnknownEnvError(EnvError, KeyError):
    """An env spec or task name that is not registered."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes.
        return str(self.args[0])


class InvalidActionError(EnvError, ValueError):
    """An action of the wrong shape, dtype or with non-finite values."""


class LayoutError(EnvError, ValueError):
    """Feature names that do not form a state or action layout (envs.features)."""


class InstructionError(EnvError, ValueError):
    """An instruction the env's observation space cannot hold (characters or length)."""
