"""`MetaWorldEnv`: a Meta-World task (or a set of them) as a motoken Gymnasium env.

The simulation runs in a worker process under Meta-World's own venv (envs/metaworld/__init__.py
says why); this class is its thin client with TableTopEnv's contract:

- Observation: `images` (128x128x3 uint8 per camera: `corner2` at LeRobot's pose, turned the
  right way up, and the wrist camera `gripperPOV`), `state` (the Sawyer's 7 joint angles, the
  hand's position and quaternion wxyz, the gap between the claw bodies in metres, as
  Meta-World measures it: a StateLayout), `instruction`
  (the task's description, envs.metaworld.tasks).
- Action: our 7-D EE-delta contract (envs.features.ACTION_LAYOUT). dx dy dz in metres, within
  Meta-World's reach per step (`action_scale`, 0.01 m: its action is clipped to [-1, 1] and
  scaled by that); drx dry drz are pinned to 0 by the action space (Meta-World's hand does not
  turn), so clipping makes them 0 and `info["applied_action"]` shows it; gripper 0 (open) .. 1
  (closed) is Meta-World's effort 2g - 1. Meta-World's action = (dx, dy, dz) / action_scale and
  that effort; the map is linear and exact both ways. Meta-World moves its mocap target by the
  delta (not the measured hand): a zero action still means "hold here".
- Episodes: the seed picks the task of a set (seed % n) and which of the task's 50 goal
  variations Meta-World's MT1 benchmark defines (`set_task`; (seed // n) % 50): Meta-World's
  MT protocol, where those 50 are both the training and the test goals. `goals="random"`
  instead draws each episode's object and goal positions afresh from the task's own
  random_reset_space, seeded by the episode seed (LeRobot's env draws them afresh too, from
  numpy's global generator): positions no collection seed repeats exactly. Success is
  Meta-World's own `info["success"]`, and ends the episode (terminated) as in LeRobot's env;
  500 steps (Meta-World's max_path_length) truncate it. 80 Hz control (frame_skip 5 x 2.5 ms).
- `info["privileged"]` holds Meta-World's 39-D observation and its scripted policy's action for
  this step (metaworld.policies, mapped to the 7-D contract): the scripted expert replays it.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.features import ACTION_LAYOUT, EE_NAMES, StateLayout, check_action
from envs.metaworld.client import WorkerProcess
from envs.metaworld.tasks import DESCRIPTIONS, tasks_of
from envs.metaworld.venv import WORKER, worker_python
from envs.tabletop import INSTRUCTION_CHARSET, INSTRUCTION_MAX_LEN, check_instruction
from sims.base import RobotSpec, SimTiming

CAMERAS = ("corner2", "gripperPOV")
GOALS = ("mt1", "random")
# The fingers open to ~0.1 m (Meta-World normalises the gap by 0.1 and clips the last 0.5 mm).
MAX_OPENING = 0.1
PRIVILEGED_TASK = "metaworld"  # privileged["task"]: the scripted expert's key (policies.scripted)
# The rotation dims' low == high (0) on purpose (the hand cannot turn); Gymnasium's passive
# checker warns about exactly that on every make. Only that message is silenced.
warnings.filterwarnings("ignore", message=".*Box action space maximum and minimum values are equal")


class MetaWorldEnv(gym.Env):
    """A Meta-World task or task set; see the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(self, task: str = "mt10", image_size: int = 128,
                 cameras: tuple[str, ...] = CAMERAS, instruction: str | None = None,
                 control_hz: float | None = None, render_mode: str | None = None,
                 goals: str = "mt1") -> None:
        """task: a Meta-World task name or a set (envs.metaworld.tasks.SETS).
        goals: "mt1" (the 50 set_task variations) or "random" (module docstring).
        instruction: said in every episode instead of the task's description.
        control_hz: Meta-World's rate is fixed (80 Hz); any other value is refused."""
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} not supported; use 'rgb_array' or None")
        if not cameras:
            raise ValueError("a Meta-World env needs at least one camera (its observation "
                             "holds images), e.g. cameras=('corner2',)")
        if goals not in GOALS:
            raise ValueError(f"goals={goals!r}; allowed: {', '.join(GOALS)}")
        self.goals = goals
        self.tasks = tasks_of(task)
        self.target = task
        self.fixed_instruction = None if instruction is None else check_instruction(instruction)
        self.render_mode, self.cameras, self.image_size = render_mode, tuple(cameras), image_size
        self.worker = WorkerProcess(worker_python(), WORKER,
                                    env={"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
        try:
            first = self._reset_worker(self.tasks[0], 0)  # the arm's facts, before any episode
        except BaseException:
            self.worker.close()
            raise
        self.control_hz = float(first["control_hz"])
        if control_hz is not None and abs(control_hz - self.control_hz) > 1e-9:
            self.worker.close()
            raise ValueError(f"Meta-World runs at {self.control_hz:g} Hz (frame_skip x "
                             f"timestep); control_hz={control_hz:g} is not possible")
        self.metadata = {**self.metadata, "render_fps": self.control_hz}
        self.scale = float(first["action_scale"])
        self.variations = int(first["variations"])
        lo, hi = np.asarray(first["joint_range"], dtype=np.float64).T
        names = tuple(first["joint_names"])
        self.robot = RobotSpec("sawyer", names, tuple(lo), tuple(hi),
                               tuple(np.asarray(first["state"])[:len(names)]), MAX_OPENING)
        self.state_layout = StateLayout(names + EE_NAMES)
        self.action_layout = ACTION_LAYOUT
        s = self.scale
        self.action_space = spaces.Box(
            low=np.array([-s] * 3 + [0.0] * 3 + [0.0], dtype=np.float32),
            high=np.array([s] * 3 + [0.0] * 3 + [1.0], dtype=np.float32))
        image = spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        margin = 0.1  # joints may sit slightly past their soft limits
        self.observation_space = spaces.Dict({
            "images": spaces.Dict({name: image for name in self.cameras}),
            "state": spaces.Box(
                np.concatenate([lo - margin, [-2.0] * 3, [-1.0] * 4, [0.0]]).astype(np.float32),
                np.concatenate([hi + margin, [2.0] * 3, [1.0] * 4, [MAX_OPENING + 0.02]]
                               ).astype(np.float32)),
            "instruction": spaces.Text(INSTRUCTION_MAX_LEN, min_length=1,
                                       charset=INSTRUCTION_CHARSET),
        })
        self.current_task: str | None = None
        self.last_timing = SimTiming(0.0, 0.0)
        self._last: dict[str, Any] | None = None

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None:  # still reproducible from the generator Gymnasium seeded
            seed = int(self.np_random.integers(2**31))
        n = len(self.tasks)
        self.current_task = self.tasks[seed % n]
        reply = self._reset_worker(self.current_task, (seed // n) % self.variations,
                                   seed if self.goals == "random" else None)
        return self._observe(reply), self._info(reply, None)

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict]:
        if self._last is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        applied = check_action(action, self.action_space.low, self.action_space.high)
        reply = self.worker.request("step", action=self.to_metaworld(applied))
        success = bool(reply["success"])
        info = self._info(reply, applied)
        info["is_success"] = success
        # Meta-World's own reward (dense, 0..10); success also ends the episode.
        return self._observe(reply), float(reply["reward"]), success, bool(reply["truncated"]), info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._last is None:
            return None
        return np.concatenate([self._last["images"][c] for c in self.cameras], axis=1)

    def close(self) -> None:
        self.worker.close()

    # -- the action map ----------------------------------------------------------------------
    def to_metaworld(self, action: np.ndarray) -> np.ndarray:
        """(7,) EE-delta action -> (4,) Meta-World action: xyz / action_scale, effort 2g - 1."""
        a = self.action_layout
        return np.concatenate([action[a.dpos] / self.scale,
                               [2.0 * action[a.gripper] - 1.0]]).astype(np.float64)

    def from_metaworld(self, mw_action: np.ndarray) -> np.ndarray:
        """(4,) Meta-World action (clipped to [-1, 1] as Meta-World does) -> (7,) EE delta."""
        mw = np.clip(np.asarray(mw_action, dtype=np.float64), -1.0, 1.0)
        out = np.zeros(self.action_layout.dim, dtype=np.float32)
        out[self.action_layout.dpos] = mw[:3] * self.scale
        out[self.action_layout.gripper] = (mw[3] + 1.0) / 2.0
        return out

    # -- helpers -----------------------------------------------------------------------------
    def _reset_worker(self, task: str, variation: int, seed: int | None = None
                      ) -> dict[str, Any]:
        return self.worker.request("reset", task=task, variation=variation, seed=seed,
                                   cameras=list(self.cameras), size=self.image_size)

    def _observe(self, reply: dict[str, Any]) -> dict[str, Any]:
        self._last = reply
        self.last_timing = SimTiming(float(reply["sim_s"]), float(reply["render_s"]))
        assert self.current_task is not None
        said = self.fixed_instruction or DESCRIPTIONS[self.current_task]
        images = {c: np.asarray(reply["images"][c]) for c in self.cameras}
        return {"images": images, "state": np.asarray(reply["state"], dtype=np.float32),
                "instruction": said}

    def _info(self, reply: dict[str, Any], applied: np.ndarray | None) -> dict[str, Any]:
        info: dict[str, Any] = {
            "task": self.current_task, "robot": self.robot.name,  # Observation.robot
            "privileged": {"task": PRIVILEGED_TASK, "metaworld_task": self.current_task,
                           "metaworld_obs": np.asarray(reply["mw_obs"]),
                           "expert_action": self.from_metaworld(reply["expert"])}}
        if applied is not None:
            info["applied_action"] = applied
        return info

