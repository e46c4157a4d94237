"""One registry from CLI specs (`backend:task`) to Gymnasium ids and keyword arguments.

Gymnasium reads a `:` in an id as "import this module first", so `gym.make("mujoco:pick_place")`
would try to import a module called `mujoco`. Our spec is resolved here instead: the task picks
the registered id (`motoken/PickPlace-v0`), the backend becomes the `backend` keyword. Backends
that are not simulators (the hardware bridge, `bridge:tcp://HOST:PORT`) register a factory.
`metaworld:TASK` (a Meta-World task or set, envs.metaworld) resolves to `motoken/MetaWorld-v0`
with the task as the `task` keyword.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from envs.errors import UnknownEnvError
from envs.metaworld.tasks import SETS as METAWORLD_SETS
from envs.metaworld.tasks import spec_targets as metaworld_targets
from envs.metaworld.tasks import tasks_of as metaworld_tasks_of
from sims.tasks import TASKS

# task name -> registered Gymnasium id. Every id takes `backend=` as a keyword.
TASK_IDS: dict[str, str] = {
    "pick_place": "motoken/PickPlace-v0",
    "pick_place_hard": "motoken/PickPlaceHard-v0",
    "push": "motoken/Push-v0",
    "reach": "motoken/Reach-v0",
}
# backend -> tasks it supports.
SIM_BACKENDS: dict[str, tuple[str, ...]] = {
    "mujoco": ("pick_place", "pick_place_hard", "push", "reach"),
    "pybullet": ("pick_place",),
}
METAWORLD = "metaworld"
METAWORLD_ID = "motoken/MetaWorld-v0"  # takes `task=` (a Meta-World task or set name)


def _bridge(address: str, **kwargs: Any) -> gym.Env:
    # Imported on first use only, so `import envs` does not pull in ZeroMQ.
    from envs.bridge import BridgeEnv

    return BridgeEnv(address, **kwargs)


# scheme backends: the rest of the spec is an address, handed to the factory as is.
_FACTORIES: dict[str, Callable[..., gym.Env]] = {"bridge": _bridge}


@dataclass(frozen=True)
class EnvSpec:
    """A resolved spec: what `make` will build."""

    spec: str
    backend: str
    target: str  # a task name for simulators, an address for factory backends
    gym_id: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


def register_factory(backend: str, factory: Callable[..., gym.Env]) -> None:
    """Register a non-simulator backend, e.g. `bridge`, called as factory(address, **kwargs)."""
    _FACTORIES[backend] = factory


def known_specs() -> list[str]:
    """Every spec `make` accepts, with address backends shown as `name:ADDRESS`."""
    sims = [f"{b}:{t}" for b, tasks in SIM_BACKENDS.items() for t in tasks]
    metaworld = [f"{METAWORLD}:{s}" for s in METAWORLD_SETS] + [f"{METAWORLD}:TASK"]
    return sims + metaworld + [f"{b}:ADDRESS" for b in sorted(_FACTORIES)]


def resolve(spec: str) -> EnvSpec:
    """Parse `backend:task` (or `backend:address`) into an EnvSpec, with helpful errors."""
    backend, sep, target = spec.partition(":")
    if backend in _FACTORIES and target:
        return EnvSpec(spec, backend, target)
    if sep and backend in SIM_BACKENDS and target in SIM_BACKENDS[backend]:
        return EnvSpec(spec, backend, target, TASK_IDS[target], {"backend": backend})
    if sep and backend == METAWORLD:
        metaworld_tasks_of(target)  # UnknownEnvError with the closest task name
        return EnvSpec(spec, backend, target, METAWORLD_ID, {"task": target})
    # A misspelt backend before a good Meta-World name: offer that name, not `metaworld:TASK`.
    named = [f"{METAWORLD}:{target}"] if target in metaworld_targets() else []
    close = difflib.get_close_matches(spec, named + known_specs(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownEnvError(f"unknown env spec {spec!r}; known: {', '.join(known_specs())}{hint}")


def task_family(spec: str) -> str:
    """`backend:family` of a simulator spec, the spec itself for address backends and
    Meta-World specs: variants of one task share it (`mujoco:pick_place_hard` ->
    `mujoco:pick_place`)."""
    resolved = resolve(spec)
    if resolved.gym_id is None or resolved.backend == METAWORLD:
        return spec
    task = TASKS[resolved.target]
    return f"{resolved.backend}:{task.family or task.name}"


def spec_tasks(spec: str) -> frozenset[str]:
    """The task families a spec runs: its task_family, or for a Meta-World set each of its
    tasks (`metaworld:mt10` -> `metaworld:reach`, `metaworld:push`, ...)."""
    resolved = resolve(spec)
    if resolved.backend == METAWORLD:
        return frozenset(f"{METAWORLD}:{t}" for t in metaworld_tasks_of(resolved.target))
    return frozenset({task_family(spec)})


def covered_by(spec: str, trained_on: list[str]) -> bool:
    """Whether every task `spec` runs is one of (a variant of) the tasks of `trained_on`: a
    policy trained on `metaworld:mt10` covers `metaworld:push`, not `metaworld:mt50`."""
    seen = frozenset().union(*(spec_tasks(s) for s in trained_on))
    return spec_tasks(spec) <= seen


def make(spec: str, **kwargs: Any) -> gym.Env:
    """Build the env for a CLI spec such as `mujoco:pick_place` or `bridge:tcp://host:5555`."""
    resolved = resolve(spec)
    if resolved.gym_id is None:
        return _FACTORIES[resolved.backend](resolved.target, **kwargs)
    return gym.make(resolved.gym_id, **resolved.kwargs, **kwargs)
