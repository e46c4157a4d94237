"""The policy interface every runtime component talks to."""

from __future__ import annotations

from typing import Protocol

from envs.types import ActionChunk, Observation


class PolicyCheckpointError(ValueError):
    """A policy checkpoint that cannot be loaded: a file missing, damaged (empty, truncated,
    overwritten) or disagreeing with the others (config.json vs the weights). The message names
    the file, what is wrong and what to do. Lives here, not beside the model, so a command can
    catch it without importing torch."""


class Policy(Protocol):
    """Maps an observation to a chunk of H actions (H = 1 for reactive policies)."""

    name: str

    def reset(self) -> None:
        """Forget per-episode state (called before every episode)."""

    def infer(self, obs: Observation) -> ActionChunk:
        """Actions to execute from now on, shape (H, 7)."""
