"""`TableTopEnv`: the Gymnasium env behind every `motoken/<Task>-v0` id.

Action (7 float32): end-effector delta position (m), delta rotation as an axis-angle vector
(rad, world frame) and a gripper command (0 open .. 1 closed). Deltas are applied to the
*measured* end-effector pose, so a zero action means "hold here" and nothing winds up when the
arm is blocked. Values outside `action_space` are clipped to it (documented behaviour); the
action actually applied is returned in `info["applied_action"]`. Non-finite values or a wrong
shape raise `InvalidActionError` before anything reaches the simulator.
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.errors import InstructionError
from envs.features import ACTION_LAYOUT, StateLayout, check_action
from envs.phrasings import phrase, wording
from sims import make_sim
from sims.base import (
    GRIPPER_DOWN,
    RobotSpec,
    SimTiming,
    quat_from_axis_angle,
    quat_from_yaw,
    quat_mul,
)
from sims.tasks import Goal, Start, make_task

MAX_DPOS = 0.05  # m per control step: 1 m/s at 20 Hz, a cobot's usual speed cap.
MAX_DROT = 0.3  # rad per control step: 6 rad/s at 20 Hz.
# The tool centre point is kept inside this box (m); below 0.015 m the fingertips would be
# pressed into the table.
WORKSPACE_LOW = np.array([0.15, -0.45, 0.015])
WORKSPACE_HIGH = np.array([0.80, 0.45, 0.55])
INSTRUCTION_CHARSET = string.ascii_lowercase + string.digits + " ,.'-"
INSTRUCTION_MAX_LEN = 128


def check_instruction(text: str) -> str:
    """`text` if the observation's instruction space holds it, else InstructionError."""
    bad = sorted({c for c in text if c not in INSTRUCTION_CHARSET})
    if not 1 <= len(text) <= INSTRUCTION_MAX_LEN or bad:
        why = (f"characters {bad} are not allowed" if bad else
               f"it has {len(text)} characters")
        raise InstructionError(f"instruction {text!r}: {why}; an instruction is 1 to "
                               f"{INSTRUCTION_MAX_LEN} of lowercase letters, digits and "
                               f"{INSTRUCTION_CHARSET[36:]!r}")
    return text


def state_bounds(robot: RobotSpec) -> tuple[np.ndarray, np.ndarray]:
    # Joints may sit slightly past their limits (MuJoCo's limits are soft), hence the margin.
    margin = 0.1
    low = np.concatenate([np.array(robot.joint_lower) - margin, [-2.0] * 3, [-1.0] * 4, [0.0]])
    high = np.concatenate([np.array(robot.joint_upper) + margin, [2.0] * 3, [1.0] * 4,
                           [robot.max_gripper_opening + 0.01]])
    return low.astype(np.float32), high.astype(np.float32)


class TableTopEnv(gym.Env):
    """A table-top manipulation task on a simulator backend. See the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, task: str = "pick_place", backend: str = "mujoco", image_size: int = 128,
                 control_hz: float = 20.0, render_mode: str | None = None,
                 instruction: str | None = None, robot: str | None = None,
                 phrasings: str | None = None) -> None:
        """instruction: said in every episode instead of the task's own sentence.
        robot: a described arm (sims/robots/*.toml; None: the backend's own).
        phrasings: "train" or "heldout": each episode says its goal in a phrasing of that
        split (envs.phrasings), drawn from the episode's seed."""
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} not supported; use 'rgb_array' or None")
        self.task = make_task(task)
        self.backend = backend
        self.render_mode = render_mode
        self.control_hz = control_hz
        self.metadata = {**self.metadata, "render_fps": control_hz}
        self.sim = make_sim(backend, list(self.task.objects), 1.0 / control_hz,
                            (image_size, image_size), robot)
        robot = self.sim.robot
        # What each dimension of `state` and of an action means (envs.features).
        self.state_layout = StateLayout.for_robot(robot)
        self.action_layout = ACTION_LAYOUT
        self.action_space = spaces.Box(
            low=np.array([-MAX_DPOS] * 3 + [-MAX_DROT] * 3 + [0.0], dtype=np.float32),
            high=np.array([MAX_DPOS] * 3 + [MAX_DROT] * 3 + [1.0], dtype=np.float32))
        image = spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        self.observation_space = spaces.Dict({
            "images": spaces.Dict({name: image for name in self.sim.camera_names}),
            "state": spaces.Box(*state_bounds(robot), dtype=np.float32),
            "instruction": spaces.Text(INSTRUCTION_MAX_LEN, min_length=1,
                                       charset=INSTRUCTION_CHARSET),
        })
        self._goal: Goal | None = None
        self.fixed_instruction = None if instruction is None else check_instruction(instruction)
        if phrasings is not None:
            if instruction is not None:
                raise InstructionError("give an instruction or phrasings, not both")
            wording(self.task.family or self.task.name, phrasings)  # refuses unknowns
        self.phrasings = phrasings
        self._said: str | None = None

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        episode = self.task.sample(self.np_random)
        self.sim.reset(episode.placements)
        if episode.start is not None:
            self._move_to(episode.start)
        self._goal = episode.goal
        # Drawn after the layout, so each seed's layout is the same with or without phrasings.
        self._said = None if self.phrasings is None else phrase(
            self.task.family or self.task.name, self.phrasings, episode.goal, self.np_random)
        return self._observe(), self._info(applied=None, failure=None)

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict]:
        if self._goal is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        applied = check_action(action, self.action_space.low, self.action_space.high)
        pos, quat = self.sim.ee_pose()
        a = self.action_layout
        target_pos = np.clip(pos + applied[a.dpos], WORKSPACE_LOW, WORKSPACE_HIGH)
        target_quat = quat_mul(quat_from_axis_angle(applied[a.drot].astype(np.float64)), quat)
        self.sim.step(target_pos, target_quat, float(applied[a.gripper]))
        failure = self.sim.divergence()
        obs = self._observe()
        success = failure is None and self.task.success(self.sim, self._goal)
        reward = float(success)
        # A diverged simulation is truncated (not terminated): the task did not reach an end
        # state, the physics did. info["failure"] says why.
        info = self._info(applied, failure)
        info["is_success"] = success
        return obs, reward, success, failure is not None, info

    @property
    def last_timing(self) -> SimTiming:
        """Seconds spent in physics and in rendering during the last reset/step.

        Kept out of `info` because it differs between identical runs (Gymnasium's determinism
        check compares infos)."""
        return self.sim.last_timing

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return np.concatenate([self.sim.render(c) for c in self.sim.camera_names], axis=1)

    def close(self) -> None:
        self.sim.close()

    # -- helpers -----------------------------------------------------------------------------
    def _move_to(self, start: Start, steps: int = 8, settle: int = 4) -> None:
        """Drive the tool from home to `start` (gripper down, open) before the episode begins,
        in `steps` straight-line increments (each within the IK's reach) plus a settle."""
        pos0, _ = self.sim.ee_pose()
        goal = np.array(start.pos)
        for i in range(1, steps + settle + 1):
            f = min(1.0, i / steps)
            quat = quat_mul(quat_from_yaw(f * start.yaw), GRIPPER_DOWN)
            self.sim.step(pos0 + f * (goal - pos0), quat, 0.0)

    def _observe(self) -> dict[str, Any]:
        self.sim.begin_frame()
        images = {name: self.sim.render(name) for name in self.sim.camera_names}
        pos, quat = self.sim.ee_pose()
        state = np.concatenate([self.sim.joint_positions(), pos, quat,
                                [self.sim.gripper_opening()]]).astype(np.float32)
        assert self._goal is not None
        said = self.fixed_instruction or self._said or self._goal.instruction
        return {"images": images, "state": state, "instruction": said}

    def privileged(self) -> dict[str, Any]:
        """Ground truth for scripted experts: EE, objects, goal (plain data, wire-friendly)."""
        assert self._goal is not None
        pos, quat = self.sim.ee_pose()
        objects = {}
        for name in (o.name for o in self.task.objects):
            p, q = self.sim.object_pose(name)
            objects[name] = {"pos": p, "quat": q}
        return {"task": self.task.name, "ee_pos": pos, "ee_quat": quat,
                "gripper": self.sim.gripper_opening(), "objects": objects,
                "goal": {"object": self._goal.object, "target": self._goal.target}}

    def _info(self, applied: np.ndarray | None, failure: str | None) -> dict[str, Any]:
        # "robot": which arm (Observation.robot), for a policy trained on several.
        info: dict[str, Any] = {"privileged": self.privileged(), "robot": self.sim.robot.name}
        if applied is not None:
            info["applied_action"] = applied
        if failure is not None:
            info["failure"] = failure
        return info
