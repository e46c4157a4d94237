"""`bridge:tcp://HOST:PORT` as a Gymnasium env with TableTopEnv's action/observation contract.

step(action): the 7-D EE delta is applied to the *measured* pose from the newest observation,
IK (workstation side) turns it into a joint target, the server clamps it and acks what it will
actually drive to, the env waits out the control period and returns the newest frame taken
after the ack. `info["applied_action"]` is the server-applied joint target converted back into
an EE delta (FK), so what gets recorded is what the arm was told to do, after every clamp.
Sim-only task facts arrive as `sim_only` and become `info["privileged"]`; a real arm sends none,
and the scripted expert then refuses clearly (NoPrivilegedStateError).

Cameras: every camera of the handshake (the driver's and those attached with `--camera`) is
in `observation_space["images"]`. Each frame's capture time reaches `info["camera_time"]` on
this workstation's `time.monotonic()` clock (so a dataset can store when each image was
really taken), with `info["camera_seq"]` and `info["camera_stale"]` (True: the robot flagged
the image stale or its camera dead). A dead camera ends the episode with `info["failure"]`:
a policy must not go on acting on an image that no longer changes.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.features import ACTION_LAYOUT, StateLayout, check_action
from envs.tabletop import (
    INSTRUCTION_CHARSET,
    INSTRUCTION_MAX_LEN,
    MAX_DPOS,
    MAX_DROT,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
    check_instruction,
    state_bounds,
)
from hw_bridge.client import BridgeClient, ClientConfig
from hw_bridge.errors import BridgeError, Rejected, Timeout
from hw_bridge.kinematics import make_kinematics
from sims.base import RobotSpec, SimTiming, axis_angle_from_quat, quat_from_axis_angle, quat_mul

CONJ = np.array([1.0, -1.0, -1.0, -1.0])
# step() returns this long before the control period is over, so that a runtime pacing the same
# period (agent.runtime) finds its tick still ahead instead of counting a deadline miss.
PACE_LEAD_S = 0.004
# A command refused for these reasons only means "this step did nothing new"; anything else
# (session lost, e-stop, fault, no reply) ends the episode with info["failure"].
RECOVERABLE = ("expired",)


class BridgeEnv(gym.Env):
    """A robot behind a bridge server, as a Gymnasium env. See the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, address: str, keys: str | None = None, key_name: str = "client",
                 instruction: str | None = None, max_steps: int | None = None,
                 timeout_s: float = 1.0, render_mode: str | None = None) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} not supported; use 'rgb_array' or None")
        if instruction is not None:
            check_instruction(instruction)  # before a session is opened on the robot
        self.render_mode = render_mode
        self.client = BridgeClient(address, ClientConfig(keys=keys, key_name=key_name,
                                                         timeout_s=timeout_s))
        hello = self.client.connect()
        r = hello["robot"]
        self.robot = RobotSpec(r["name"], tuple(r["joint_names"]), tuple(r["joint_lower"]),
                               tuple(r["joint_upper"]), tuple(r["home"]),
                               r["max_gripper_opening"])
        self.state_layout = StateLayout.for_robot(self.robot)  # as TableTopEnv's
        self.action_layout = ACTION_LAYOUT
        self.kin = make_kinematics(r["kinematics"])
        if tuple(self.kin.joint_names) != self.robot.joint_names:
            raise BridgeError(f"server joints {self.robot.joint_names} do not match the "
                              f"{r['kinematics']} model's {self.kin.joint_names}")
        # The first IK loads the solver (~2 s): here, not inside the first step's deadline.
        home = np.array(self.robot.home_qpos)
        self.kin.solve_ik(*self.kin.fk(home), home)
        self.control_hz = float(hello["control_hz"])
        self.period = 1.0 / self.control_hz
        self.last_timing = SimTiming(0.0, 0.0)  # time waiting on the robot, for the runtime
        self.metadata = {**self.metadata, "render_fps": hello["control_hz"]}
        self.fixed_instruction = instruction
        self.max_steps = max_steps or hello["episode"].get("max_steps") or 200
        self.action_space = spaces.Box(
            low=np.array([-MAX_DPOS] * 3 + [-MAX_DROT] * 3 + [0.0], dtype=np.float32),
            high=np.array([MAX_DPOS] * 3 + [MAX_DROT] * 3 + [1.0], dtype=np.float32))
        self.observation_space = spaces.Dict({
            "images": spaces.Dict({name: spaces.Box(0, 255, (h, w, 3), np.uint8)
                                   for name, (h, w) in hello["cameras"].items()}),
            "state": spaces.Box(*state_bounds(self.robot), dtype=np.float32),
            "instruction": spaces.Text(INSTRUCTION_MAX_LEN, min_length=1,
                                       charset=INSTRUCTION_CHARSET)})
        self._frame: dict[str, Any] | None = None
        self._instruction = instruction or "do the task"
        self._steps = 0
        self._goal_q: np.ndarray | None = None
        self._gripper = 0.0
        self._lost = False  # the session ended under us: reconnect at the next reset

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        if self._lost or self.client.session_error:
            self._reconnect()
        episode_seed = int(self.np_random.integers(2**31))
        try:
            episode = self.client.reset(episode_seed)
        except Rejected as exc:
            # The watchdog may have ended the session while this process was too busy to send
            # heartbeats (building a policy holds the GIL), before any reply told us so. A reset
            # starts a new episode from a held arm, so a fresh session is safe here, and only here.
            if exc.code != "unknown_session":
                raise
            self._reconnect()
            episode = self.client.reset(episode_seed)
        self._instruction = self.fixed_instruction or episode.get("instruction") or "do the task"
        self._frame = self.client.observation(after_t=self.client.server_now())
        self._steps = 0
        self._goal_q = None
        self._gripper = 0.0
        return self._observe(), self._info()

    def _reconnect(self) -> None:
        self.client.close()
        self.client = BridgeClient(self.client.address, self.client.config)
        self.client.connect()
        self._lost = False

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict]:
        if self._frame is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        t_start = time.monotonic()
        a = check_action(action, self.action_space.low, self.action_space.high)
        s, act = self.state_layout, self.action_layout
        state = self._frame["state"].astype(np.float64)
        pos, quat = state[s.ee_pos], state[s.ee_quat]
        target_pos = np.clip(pos + a[act.dpos], WORKSPACE_LOW, WORKSPACE_HIGH)
        target_quat = quat_mul(quat_from_axis_angle(a[act.drot].astype(np.float64)), quat)
        q0 = state[s.joints] if self._goal_q is None else self._goal_q
        t_sent = self.client.server_now()
        ack, problem = self._send(self.kin.solve_ik(target_pos, target_quat, q0),
                                  float(a[act.gripper]))
        time.sleep(max(0.0, t_start + self.period - PACE_LEAD_S - time.monotonic()))
        if problem is None or getattr(problem, "code", "") in RECOVERABLE:  # Timeout: none
            try:
                self._frame = self.client.observation(after_t=ack["t"] if ack else t_sent)
            except Timeout as exc:  # the stream stalled (server or machine): end the episode
                problem = exc
        self.last_timing = SimTiming(time.monotonic() - t_start, 0.0)
        self._steps += 1
        return self._outcome(ack, problem, pos, quat)

    def _send(self, q: np.ndarray, gripper: float) -> tuple[dict | None, BridgeError | None]:
        try:
            ack = self.client.command(q, gripper)
        except (Rejected, Timeout) as exc:
            return None, exc
        self._goal_q = np.array(ack["q"], dtype=np.float64)
        return ack, None

    def _outcome(self, ack: dict | None, problem: BridgeError | None, pos: np.ndarray,
                 quat: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict]:
        info = self._info()
        if ack is not None:
            info["applied_action"] = self._applied_action(ack, pos, quat)
            info["applied_command"] = {"q": self._goal_q, "gripper": ack["gripper"],
                                       "clamped": list(ack["clamped"])}
        else:  # nothing new ran: the arm kept its previous goal
            info["applied_action"] = np.zeros(self.action_layout.dim, np.float32)
            info["applied_action"][self.action_layout.gripper] = self._gripper
            info["bridge"]["rejected"] = str(problem)
        if ack is not None:
            self._gripper = float(ack["gripper"])
        success = bool((self._frame.get("sim_only") or {}).get("success", False))
        info["is_success"] = success
        if self._frame["mode"] in ("fault", "estop"):
            info["failure"] = f"robot in {self._frame['mode']}: {self._frame['reason']}"
        elif problem is not None and getattr(problem, "code", "") not in RECOVERABLE:
            info["failure"] = f"bridge: {problem}"  # session lost or server gone: arm is held
            self._lost = True
        elif dead := self._dead_cameras():
            info["failure"] = "; ".join(dead)  # the runtime stops commanding; the arm holds
        truncated = "failure" in info or self._steps >= self.max_steps
        return self._observe(), float(success), success, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._frame is None:
            return None
        return np.concatenate(list(self._frame["images"].values()), axis=1)

    def close(self) -> None:
        self.client.close()

    # -- helpers -----------------------------------------------------------------------------
    def _applied_action(self, ack: dict, pos: np.ndarray, quat: np.ndarray) -> np.ndarray:
        goal_pos, goal_quat = self.kin.fk(self._goal_q)
        drot = axis_angle_from_quat(quat_mul(goal_quat, quat * CONJ))
        applied = np.concatenate([goal_pos - pos, drot, [ack["gripper"]]]).astype(np.float32)
        return np.clip(applied, self.action_space.low, self.action_space.high)

    def _observe(self) -> dict[str, Any]:
        assert self._frame is not None
        images = {name: np.array(img) for name, img in self._frame["images"].items()}
        return {"images": images, "state": np.array(self._frame["state"], dtype=np.float32),
                "instruction": self._instruction}

    def _info(self) -> dict[str, Any]:
        assert self._frame is not None
        info: dict[str, Any] = {"bridge": {"mode": self._frame["mode"],
                                           "frame_seq": self._frame["seq"]},
                                "robot": self.robot.name}  # Observation.robot
        if self._frame.get("sim_only"):
            info["privileged"] = self._frame["sim_only"]
        cams = self._frame.get("cameras", {})
        offset = self.client.offset  # server clock minus ours
        info["camera_time"] = {n: float(c["t"]) - offset for n, c in cams.items()}
        info["camera_seq"] = {n: int(c["seq"]) for n, c in cams.items()}
        info["camera_stale"] = {n: bool(c["stale"]) for n, c in cams.items()}
        return info

    def _dead_cameras(self) -> list[str]:
        assert self._frame is not None
        return [c.get("reason") or f"camera {n!r} dead"
                for n, c in self._frame.get("cameras", {}).items() if c.get("state") == "dead"]
