"""Typed values that cross the env/policy boundary inside the runtime.

Gymnasium envs return plain dicts (the edge); the runtime wraps them once into these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Observation:
    """One observation.

    Attributes:
        images: camera name -> (H, W, 3) uint8 image.
        state: (state_dim,) float32 proprioception: joint positions, EE position, EE quaternion
            (wxyz), gripper opening; the env's `state_layout` (envs.features) names each.
        instruction: the task in words, e.g. "put the red cube on the yellow plate".
        privileged: simulator ground truth (object poses, goal), for scripted experts only;
            None where the env cannot provide it (a real robot).
        robot: the arm's name (RobotSpec.name, e.g. "mk6"), from the env's info["robot"];
            None where the source does not say. A policy trained on several robots reads it
            to know whose state `state` is (policies.model.robots).
    """

    images: dict[str, np.ndarray]
    state: np.ndarray
    instruction: str
    privileged: dict[str, Any] | None = field(default=None, compare=False)
    robot: str | None = None

    @classmethod
    def from_env(cls, obs: dict[str, Any], info: dict[str, Any]) -> Observation:
        return cls(images=obs["images"], state=obs["state"], instruction=str(obs["instruction"]),
                   privileged=info.get("privileged"), robot=info.get("robot"))


@dataclass(frozen=True)
class ActionChunk:
    """H consecutive actions a policy commits to, shape (H, action_dim) float32."""

    actions: np.ndarray

    def __post_init__(self) -> None:
        if self.actions.ndim != 2:
            raise ValueError(f"ActionChunk needs (H, action_dim) actions, got {self.actions.shape}")

    def __len__(self) -> int:
        return int(self.actions.shape[0])
