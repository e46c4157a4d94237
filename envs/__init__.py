"""Gymnasium environments: `motoken/<Task>-v0` ids, each taking `backend=` as a keyword.

    >>> import envs
    >>> env = envs.make("mujoco:pick_place")          # the CLI spec, resolved by envs.registry
    >>> env = gymnasium.make("motoken/PickPlace-v0", backend="pybullet")
    >>> env = envs.make("metaworld:mt10")             # Meta-World, in its own venv's worker
"""

from __future__ import annotations

import gymnasium as gym

from envs.errors import EnvError, InvalidActionError, UnknownEnvError
from envs.metaworld.tasks import MAX_STEPS as METAWORLD_MAX_STEPS
from envs.registry import (
    METAWORLD_ID,
    TASK_IDS,
    covered_by,
    known_specs,
    make,
    register_factory,
    resolve,
    spec_tasks,
    task_family,
)
from sims.tasks import TASKS

__all__ = ["EnvError", "InvalidActionError", "UnknownEnvError", "covered_by", "known_specs",
           "make", "register_factory", "resolve", "spec_tasks", "task_family"]

for _task, _id in TASK_IDS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point="envs.tabletop:TableTopEnv",
                     kwargs={"task": _task}, max_episode_steps=TASKS[_task].max_steps)
if METAWORLD_ID not in gym.registry:
    gym.register(id=METAWORLD_ID, entry_point="envs.metaworld.env:MetaWorldEnv",
                 max_episode_steps=METAWORLD_MAX_STEPS)
