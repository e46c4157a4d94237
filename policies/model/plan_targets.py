"""Auxiliary targets: where the named cube and plate are, from what the policy sees.

Behaviour cloning learns "where is the red cube" only through the action loss, a weak and
late signal: the expert's action points at the cube, but it is clipped to the step limit and
shared with everything else the action depends on. On a CPU budget of a few thousand steps the
image encoder barely learns to localise (issue 5: position error near that of predicting the
mean). The simulator knows the answer, so training also regresses it (Levine et al. 2016 and
robomimic use the same privileged supervision): from the hidden state just before the action
chunk (end_state), predict where the instruction's cube and plate are *relative to the tool*
(what the next action is a clipped copy of) and every object's position.

Training only. The head's output is never read when acting, and the policy's inputs stay
camera frames, instruction and proprioception; a real robot has no environment state.
"""

from __future__ import annotations

import numpy as np

from envs.features import StateLayout

POSE = 7  # x y z qw qx qy qz, as envs.features lays out the environment state
N_GOAL_SLOTS = 2  # goal_object, goal_target come first (envs.features.GOAL_SLOTS)


def aux_dim(env_state_dim: int) -> int:
    """Width of aux_targets for an environment state of `env_state_dim` dims."""
    if env_state_dim % POSE or env_state_dim < N_GOAL_SLOTS * POSE:
        raise ValueError(f"environment state of {env_state_dim} dims is not goal slots + "
                         f"objects of {POSE} (x y z quaternion) each")
    return 3 * N_GOAL_SLOTS + 4 + 3 * (env_state_dim // POSE - N_GOAL_SLOTS)


def _yaw(quat: np.ndarray) -> np.ndarray:
    """(B, 4) wxyz -> (B,) rotation about world z of each quaternion's x axis."""
    w, x, y, z = quat.T
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def _gripper_yaw(quat: np.ndarray) -> np.ndarray:
    """(B, 4) EE quaternions -> (B,) finger-axis heading of a downward gripper: the yaw of
    q * (0, 0, -1, 0) (policies.scripted's convention), written out for a batch."""
    w, x, y, z = quat.T
    return np.arctan2(-2 * (x * y + w * z), 1 - 2 * (w * w + x * x))


def aux_targets(env_state: np.ndarray, state: np.ndarray, layout: StateLayout) -> np.ndarray:
    """(B, E) environment state and (B, Ds) proprioception laid out as `layout` ->
    (B, aux_dim(E)) float32:
    goal cube and goal plate xyz minus the tool's, the goal cube's yaw as (sin 4y, cos 4y) and
    its yaw relative to the fingers the same way (a cube looks the same after a quarter turn,
    so only 4y is observable), then every object's world xyz (NaN for an object the episode's
    task lacks, in a state packed over a union of tasks' objects)."""
    B = len(env_state)
    poses = env_state.reshape(B, -1, POSE)  # (B, slots, 7)
    ee = state[:, layout.ee_pos]  # (B, 3)
    yaw = _yaw(poses[:, 0, 3:])
    rel = yaw - _gripper_yaw(state[:, layout.ee_quat])
    return np.concatenate([(poses[:, :N_GOAL_SLOTS, :3] - ee[:, None]).reshape(B, -1),
                           np.stack([np.sin(4 * yaw), np.cos(4 * yaw),
                                     np.sin(4 * rel), np.cos(4 * rel)], axis=1),
                           poses[:, N_GOAL_SLOTS:, :3].reshape(B, -1)],
                          axis=1).astype(np.float32)


class AuxNormalizer:
    """Per-dimension standardisation of aux targets, fitted on the training episodes, so every
    target weighs the same in the loss (a z of 2 cm matters as much as an x of 20 cm).

    Environment states packed over the union of several tasks' objects (policies.training.
    mixed) are NaN where an episode's task lacks an object: its targets stay NaN (the loss
    masks them out, policies.training.losses.masked_mse), and each dimension is fitted on its
    present values only. A dimension no episode has (a union policy fine-tuned on a subset of
    its tasks) keeps mean 0, std 1: nothing is ever normalised with it."""

    def __init__(self, env_states: list[np.ndarray], states: list[np.ndarray],
                 layout: StateLayout) -> None:
        self.layout = layout
        t = aux_targets(np.concatenate(env_states), np.concatenate(states), layout)
        present = ~np.isnan(t)
        if present.all():  # one task's objects: exactly the statistics it always had
            self.mean, self.std = t.mean(0), np.maximum(t.std(0), 1e-3)
            return
        n = present.sum(0)
        mean = np.where(present, t, 0).sum(0) / np.maximum(n, 1)
        var = np.where(present, (t - mean) ** 2, 0).sum(0) / np.maximum(n, 1)
        self.mean = mean.astype(np.float32)
        self.std = np.where(n > 0, np.maximum(np.sqrt(var), 1e-3), 1.0).astype(np.float32)

    def __call__(self, env_state: np.ndarray, state: np.ndarray) -> np.ndarray:
        t = aux_targets(env_state, state, self.layout)
        return ((t - self.mean) / self.std).astype(np.float32)


# -- plan tokens -------------------------------------------------------------------------------
# The same privileged supervision, as tokens the policy itself writes before its actions
# (policies.model.token_policy, an embodied chain of thought): the numbers the expert's next action
# is
# a clipped copy of. With only an auxiliary head, the trunk learned where the cube is (error
# ~6 mm at step 2000, issue 5) but the action tokens still ignored it; as tokens in context,
# each action reads them through one embedding instead of re-deriving them from pixels.
PLAN_NAMES = ("cube_dx", "cube_dy", "cube_dz", "plate_dx", "plate_dy", "plate_dz",
              "grasp_dyaw")
# The goal part is always the plan's last len(PLAN_NAMES) values, with or without objects.
PLAN_GOAL = slice(-len(PLAN_NAMES), None)


def plan_dim(env_state_dim: int, objects: bool) -> int:
    """Width of plan_targets for an environment state of `env_state_dim` dims."""
    aux_dim(env_state_dim)  # raises on a state that is not goal slots + object poses
    n_objects = env_state_dim // POSE - N_GOAL_SLOTS
    return len(PLAN_NAMES) + (3 * n_objects if objects else 0)


def plan_targets(env_state: np.ndarray, state: np.ndarray, layout: StateLayout,
                 objects: bool = False) -> np.ndarray:
    """(B, E) environment state and (B, Ds) proprioception laid out as `layout` ->
    (B, plan_dim) float32.

    With `objects`, first every object's xyz minus the tool's, in the task's object order
    (pick_place: red, green, blue cube, yellow, purple plate). Then always (PLAN_GOAL): the goal
    cube and goal plate xyz minus the tool's, and the turn (rad, in [-pi, pi)) from the fingers'
    heading to the nearest grasp of the cube (its yaw folded into [-pi/4, pi/4], policies.
    scripted's aim).

    An environment state packed over the union of several tasks' objects (policies.training.
    mixed.pack_env_state) is NaN where the episode's task lacks an object; so are that
    object's three plan values (encoded as the plan's absent id, never as a bin).

    Why objects first: issue 5's goal-only plan followed a cube the instruction did not name
    (experiments/perception/plan.py). Written object by object, "where is each cube" is vision
    alone, supervised per colour, and "which one is named" becomes copying one earlier plan
    entry picked by a word of the instruction, which attention does in one step.
    """
    B = len(env_state)
    poses = env_state.reshape(B, -1, POSE)  # (B, slots, 7)
    ee = state[:, layout.ee_pos]  # (B, 3)
    grasp = (_yaw(poses[:, 0, 3:]) + np.pi / 4) % (np.pi / 2) - np.pi / 4
    turn = (grasp - _gripper_yaw(state[:, layout.ee_quat]) + np.pi) % (2 * np.pi) - np.pi
    parts = [(poses[:, N_GOAL_SLOTS:, :3] - ee[:, None]).reshape(B, -1)] if objects else []
    parts += [(poses[:, :N_GOAL_SLOTS, :3] - ee[:, None]).reshape(B, -1), turn[:, None]]
    return np.concatenate(parts, axis=1).astype(np.float32)
