"""Episodes as a policy trained on several robots and tasks reads them.

Two things differ between the episodes of a mixed dataset (experiments/generalist/NOTE.md,
section 4), and both are made uniform here, once, before sampling:

- The state: each robot's own layout (the mk6's 6 joints, the Panda's 7). A multi-robot policy
  reads it packed into its shared layout (policies.model.robots.RobotStates.pack).
- The environment state, which only the plan and aux targets read: every object's pose, so
  pick_place (5 objects, 49 values) and push or reach (3 objects, 35) differ in width. Every
  task's environment state starts with the instruction's named object and target
  (envs.features.GOAL_SLOTS), and the goal part of the plan and aux targets reads only those
  two slots. So where the widths differ, each episode keeps just its goal slots: the plan is
  the named object and target (the --no-plan-objects form, 7 values on every task) instead
  of being switched off, which would lose what pick_place's success relies on. Where the
  widths agree, nothing changes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from policies.model.checkpoint import PolicyConfig
from policies.model.plan_targets import N_GOAL_SLOTS, POSE, aux_dim, plan_dim
from policies.model.robots import RobotStates
from policies.training.data import DemoEpisode

GOAL_WIDTH = N_GOAL_SLOTS * POSE  # the goal object's and goal target's poses


def objects_differ(demos: list[DemoEpisode]) -> bool:
    """Whether the episodes' environment states differ in width (tasks with other objects);
    episodes without one are left out (they train no plan either way)."""
    return len({d.env_state.shape[1] for d in demos if d.env_state is not None}) > 1


def as_policy_reads(demos: list[DemoEpisode], robots: RobotStates | None
                    ) -> list[DemoEpisode]:
    """The episodes with states packed into `robots`' shared layout (a multi-robot policy;
    None: as they are) and, where tasks with other objects mix (objects_differ), each
    environment state cut to its goal slots (module doc).

    Raises:
        ValueError: an episode whose robot `robots` does not hold, or that names none.
    """
    cut = objects_differ(demos)
    out = []
    for d in demos:
        changes: dict = {}
        if cut and d.env_state is not None:
            changes["env_state"] = d.env_state[:, :GOAL_WIDTH]
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
              if width == GOAL_WIDTH else ""))
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
    """(N, D) packed states -> per dimension its present (non-NaN) values, for
    BinningCodec.fit_columns: an absent joint slot must not shape that slot's bins."""
    return [col[~np.isnan(col)] for col in states.T]
