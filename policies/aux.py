"""Auxiliary targets: where the named cube and plate are, from what the policy sees.

Behaviour cloning learns "where is the red cube" only through the action loss, a weak and
late signal: the expert's action points at the cube, but it is clipped to the step limit and
shared with everything else the action depends on. On a CPU budget of a few thousand steps the
image encoder barely learns to localise (issue 5: position error near that of predicting the
mean). The simulator knows the answer, so training also regresses it (Levine et al. 2016 and
robomimic use the same privileged supervision): from the hidden state just before the action
chunk (end_state), predict the poses of the instruction's cube and plate and of every object.

Training only. The head's output is never read when acting, and the policy's inputs stay
camera frames, instruction and proprioception; a real robot has no environment state.
"""

from __future__ import annotations

import numpy as np

POSE = 7  # x y z qw qx qy qz, as agent.dataset.recorder lays out the environment state
N_GOAL_SLOTS = 2  # goal_object, goal_target come first (recorder.GOAL_SLOTS)


def aux_dim(env_state_dim: int) -> int:
    """Width of aux_targets for an environment state of `env_state_dim` dims."""
    if env_state_dim % POSE or env_state_dim < N_GOAL_SLOTS * POSE:
        raise ValueError(f"environment state of {env_state_dim} dims is not goal slots + "
                         f"objects of {POSE} (x y z quaternion) each")
    return 3 * N_GOAL_SLOTS + 2 + 3 * (env_state_dim // POSE - N_GOAL_SLOTS)


def _yaw(quat: np.ndarray) -> np.ndarray:
    w, x, y, z = quat.T
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def aux_targets(env_state: np.ndarray) -> np.ndarray:
    """(B, E) environment state -> (B, aux_dim(E)) float32 targets, world frame:
    goal cube xyz, goal plate xyz, the goal cube's yaw as (sin 4y, cos 4y) (a cube looks the
    same after a quarter turn, so only 4y is observable), then every object's xyz."""
    poses = env_state.reshape(len(env_state), -1, POSE)  # (B, slots, 7)
    yaw = _yaw(poses[:, 0, 3:])
    return np.concatenate([poses[:, :N_GOAL_SLOTS, :3].reshape(len(env_state), -1),
                           np.stack([np.sin(4 * yaw), np.cos(4 * yaw)], axis=1),
                           poses[:, N_GOAL_SLOTS:, :3].reshape(len(env_state), -1)],
                          axis=1).astype(np.float32)


class AuxNormalizer:
    """Per-dimension standardisation of aux targets, fitted on the training episodes, so every
    target weighs the same in the loss (a z of 2 cm matters as much as an x of 20 cm)."""

    def __init__(self, env_states: list[np.ndarray]) -> None:
        t = aux_targets(np.concatenate(env_states))
        self.mean, self.std = t.mean(0), np.maximum(t.std(0), 1e-3)

    def __call__(self, env_state: np.ndarray) -> np.ndarray:
        return ((aux_targets(env_state) - self.mean) / self.std).astype(np.float32)
