"""Gymnasium environments: `motoken/<Task>-v0` ids, each taking `backend=` as a keyword.

    >>> import envs
    >>> env = envs.make("mujoco:pick_place")          # the CLI spec, resolved by envs.registry
    >>> env = gymnasium.make("motoken/PickPlace-v0", backend="pybullet")
"""

from __future__ import annotations

import gymnasium as gym

from envs.errors import EnvError, InvalidActionError, UnknownEnvError
from envs.registry import TASK_IDS, known_specs, make, register_factory, resolve, task_family
from sims.tasks import TASKS

__all__ = ["EnvError", "InvalidActionError", "UnknownEnvError", "known_specs", "make",
           "register_factory", "resolve", "task_family"]

for _task, _id in TASK_IDS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point="envs.tabletop:TableTopEnv",
                     kwargs={"task": _task}, max_episode_steps=TASKS[_task].max_steps)
