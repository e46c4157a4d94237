"""The feature names an env's observations and actions carry into datasets and checkpoints.

The environment state (`observation.environment_state`) is the simulator's ground truth per
frame: every object's pose, the instruction's named object and target first. A real arm has no
such sensor; the bridge env returns no names for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ACTION_NAMES = ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
EE_NAMES = ("ee_x", "ee_y", "ee_z", "ee_qw", "ee_qx", "ee_qy", "ee_qz", "gripper_opening")
POSE_NAMES = ("x", "y", "z", "qw", "qx", "qy", "qz")
# The environment state starts with the poses of what the instruction names, so a trainer can
# use "where is the thing I was asked about" without parsing the instruction; then every object.
GOAL_SLOTS = ("goal_object", "goal_target")


def env_state_names(env: Any) -> tuple[str, ...]:
    """Names of the per-frame environment state a sim env gives; () for an env without ground
    truth (the hardware bridge). Goal slots first, then each object in the task's order."""
    task = getattr(env.unwrapped, "task", None)
    if task is None or not hasattr(env.unwrapped, "privileged"):
        return ()
    slots = GOAL_SLOTS + tuple(o.name for o in task.objects)
    return tuple(f"{slot}.{n}" for slot in slots for n in POSE_NAMES)


def env_state_vector(priv: dict, names: tuple[str, ...]) -> np.ndarray:
    """The frame's environment state, laid out as `names`. A goal without an object (reach the
    ball) repeats the target in the goal_object slot."""
    goal = priv["goal"]
    slots = {"goal_object": goal["object"] or goal["target"], "goal_target": goal["target"]}
    out = []
    for slot in dict.fromkeys(n.rsplit(".", 1)[0] for n in names):
        obj = priv["objects"][slots.get(slot, slot)]
        out.append(np.concatenate([obj["pos"], obj["quat"]]))
    return np.concatenate(out).astype(np.float32)
