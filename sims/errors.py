"""Errors raised by the simulators and their tasks."""

from __future__ import annotations


class SimError(Exception):
    """Base class for motoken simulator errors."""


class UnknownTaskError(SimError, KeyError):
    """A task name that is not defined in sims.tasks."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes.
        return str(self.args[0])
