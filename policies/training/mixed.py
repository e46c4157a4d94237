"""Episodes as a policy trained on several robots and tasks reads them.

Two things differ between the episodes of a mixed dataset (experiments/generalist/NOTE.md,
section 4), and both are made uniform here, once, before sampling:

- The state: each robot's own layout (the mk6's 6 joints, the Panda's 7). A multi-robot policy
  reads it packed into its shared layout (policies.model.robots.RobotStates.pack).
- The environment state, which only the plan and aux targets read: the instruction's named
  object and target (envs.features.GOAL_SLOTS), then every object's pose in the task's order,
  so pick_place (red, green, blue cube, yellow, purple plate: 49 values), push (red, blue
  cube, yellow plate) and reach (red, green, blue ball) hold other objects. Where the tasks'
  objects differ, every episode's environment state is packed into one layout, the goal
  slots then the union of the objects by name (union_objects, in PolicyConfig.
  plan_object_names), NaN where its task lacks an object: the plan keeps its per-object part
  (issue 5's goal-only plan followed a cube the instruction did not name), with an absent id
  at the missing objects (action_codec.absent), and the aux targets leave them out of the loss
  (policies.training.losses). Names, not positions: push's first object is a cube, reach's a
  ball, at the same width.
  A policy without a per-object plan (--no-plan-objects, or one trained before the union
  existed: no plan_object_names) still reads each episode cut to its goal slots there. Where
  every episode has the same objects, nothing changes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from envs.features import GOAL_SLOTS, POSE_NAMES
from policies.model.checkpoint import PolicyConfig
from policies.model.plan_targets import N_GOAL_SLOTS, POSE, aux_dim, plan_dim
from policies.model.robots import RobotStates
from policies.training.data import DemoEpisode

GOAL_WIDTH = N_GOAL_SLOTS * POSE  # the goal object's and goal target's poses


def objects_of(names: tuple[str, ...]) -> tuple[str, ...]:
    """Environment state names (envs.features.env_state_names) -> the objects after the goal
    slots, in order.

    Raises:
        ValueError: names that are not the goal slots then whole poses of named objects.
    """
    slots = [n.rsplit(".", 1)[0] for n in names[::POSE]]
    want = tuple(f"{slot}.{p}" for slot in slots for p in POSE_NAMES)
    if tuple(names) != want or tuple(slots[:N_GOAL_SLOTS]) != GOAL_SLOTS:
        raise ValueError(f"environment state names {list(names)} are not {list(GOAL_SLOTS)} "
                         f"then objects, each as {list(POSE_NAMES)}")
    return tuple(slots[N_GOAL_SLOTS:])


def objects_differ(demos: list[DemoEpisode]) -> bool:
    """Whether the episodes' environment states hold other objects (other widths, or other
    names where they are known); episodes without one are left out (they train no plan)."""
    found = {(d.env_state.shape[1], d.env_state_names) for d in demos if d.env_state is not None}
    widths = {w for w, _ in found}
    return len(widths) > 1 or len({n for _, n in found if n is not None}) > 1


def union_objects(demos: list[DemoEpisode]) -> tuple[str, ...] | None:
    """The objects of every episode's environment state, where they differ (objects_differ);
    None where they agree. Order: the episodes' distinct object lists sorted by length (most
    first), then by name, each adding the objects not yet seen, so the order does not depend
    on the order of the datasets (the five envs: pick_place's five, then reach's balls).

    Raises:
        ValueError: objects differ but an episode does not name its environment state's dims.
    """
    if not objects_differ(demos):
        return None
    lists = set()
    for d in demos:
        if d.env_state is None:
            continue
        if d.env_state_names is None:
            raise ValueError(f"the episodes' environment states hold other objects, matched by "
                             f"name, but an episode ({d.task!r}) does not name its "
                             f"{d.env_state.shape[1]} values (its dataset's info.json features"
                             f"[\"observation.environment_state\"][\"names\"])")
        lists.add(objects_of(d.env_state_names))
    ordered = sorted(lists, key=lambda names: (-len(names), names))
    return tuple(dict.fromkeys(o for names in ordered for o in names))


def env_state_names(objects: tuple[str, ...]) -> tuple[str, ...]:
    """The names of an environment state of the goal slots, then `objects`."""
    return tuple(f"{slot}.{p}" for slot in GOAL_SLOTS + objects for p in POSE_NAMES)


def pack_env_state(env_state: np.ndarray, names: tuple[str, ...] | None,
                   objects: tuple[str, ...]) -> np.ndarray:
    """(T, E) environment state named `names` -> (T, (2 + len(objects)) * 7) float32: the
    goal slots, then each of `objects` by name, NaN for one the episode lacks (module doc).

    Raises:
        ValueError: no names, or an object that `objects` does not hold.
    """
    if names is None:
        raise ValueError(f"this policy's plan covers the objects {list(objects)}, matched by "
                         f"name; an episode does not name its environment state's values")
    own = objects_of(names)
    extra = [o for o in own if o not in objects]
    if extra:
        raise ValueError(f"an episode holds objects {extra} this policy's plan does not cover "
                         f"({list(objects)}); train it on tasks with those objects, or start a "
                         f"new policy")
    poses = env_state.reshape(len(env_state), -1, POSE)  # (T, slots, 7)
    out = np.full((len(env_state), N_GOAL_SLOTS + len(objects), POSE), np.nan, np.float32)
    out[:, :N_GOAL_SLOTS] = poses[:, :N_GOAL_SLOTS]
    for i, o in enumerate(own):
        out[:, N_GOAL_SLOTS + objects.index(o)] = poses[:, N_GOAL_SLOTS + i]
    return out.reshape(len(env_state), -1)


def as_policy_reads(demos: list[DemoEpisode], robots: RobotStates | None,
                    objects: tuple[str, ...] | None = None) -> list[DemoEpisode]:
    """The episodes with states packed into `robots`' shared layout (a multi-robot policy;
    None: as they are) and environment states packed over `objects` (a union plan's,
    PolicyConfig.plan_object_names); without `objects`, where tasks with other objects mix
    (objects_differ), each environment state cut to its goal slots (module doc).

    Raises:
        ValueError: an episode whose robot `robots` does not hold, or that names none; one
            with objects `objects` lacks, or unnamed (pack_env_state).
    """
    cut = objects is None and objects_differ(demos)
    out = []
    for d in demos:
        changes: dict = {}
        if objects is not None and d.env_state is not None:
            changes["env_state"] = pack_env_state(d.env_state, d.env_state_names, objects)
            changes["env_state_names"] = env_state_names(objects)
        elif cut and d.env_state is not None:
            changes["env_state"] = d.env_state[:, :GOAL_WIDTH]
            changes["env_state_names"] = env_state_names(())
        if robots is not None:
            changes["state"] = robots.pack(d.robot_type, d.state)
            changes["state_layout"] = robots.shared
        out.append(replace(d, **changes) if changes else d)
    return out


def check_targets_fit(config: PolicyConfig, model_aux_dim: int,
                      demos: list[DemoEpisode]) -> None:
    """A policy (resumed, or --init) whose plan or aux head has another width than the
    episodes (as_policy_reads gave them) make is an error saying why, not a shape error."""
    widths = {d.env_state.shape[1] for d in demos if d.env_state is not None}
    if len(widths) != 1 or len(demos) != sum(d.env_state is not None for d in demos):
        return  # no plan or aux targets from these episodes (batch_loss says so if needed)
    width = widths.pop()
    why = (f"environment states of {width} values"
           + (" (cut to the named object and target: tasks with other objects mix)"
              if width == GOAL_WIDTH and config.plan_object_names is None else ""))
    if config.plan_dim and config.plan_dim != plan_dim(width, config.plan_objects):
        raise ValueError(f"this policy writes {config.plan_dim} plan values"
                         f"{' starting with every object' if config.plan_objects else ''}, "
                         f"but the episodes' {why} give "
                         f"{plan_dim(width, config.plan_objects)}; train it on tasks with the "
                         f"objects it was trained on, or start a new policy")
    if model_aux_dim and model_aux_dim != aux_dim(width):
        raise ValueError(f"this policy's object-pose head has {model_aux_dim} outputs, but "
                         f"the episodes' {why} give {aux_dim(width)}; train it on tasks with "
                         f"the objects it was trained on, or start a new policy")


def fit_columns_present(states: np.ndarray) -> list[np.ndarray]:
    """(N, D) packed states (or union plan targets) -> per dimension its present (non-NaN)
    values, for BinningCodec.fit_columns: an absent joint slot (object) must not shape that
    slot's bins."""
    return [col[~np.isnan(col)] for col in states.T]


def describe_union(config: PolicyConfig) -> str:
    """One line for `agent train`: the objects a union plan (plan_object_names) covers and
    what that costs in plan tokens."""
    objects = config.plan_object_names or ()
    what = (f"plan: {config.plan_dim} tokens, {len(objects)} objects x xyz then the named "
            f"object, target and grasp turn" if config.plan_dim else "object-pose targets")
    return (f"{what}, over the union of the tasks' objects ({', '.join(objects)}); an object "
            f"a task lacks is an absent id, never a value")
