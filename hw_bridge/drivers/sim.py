"""The `sim` driver: a described arm in MuJoCo standing in for hardware behind the same server.

Any robot description (sims/robots/NAME.toml: mk6, panda, iiwa14, ...) gives the arm, its
cameras, its safety limits and the name of its workstation kinematics; the task gives the scene.

The control thread owns physics (`write`, `wait_period`, `read`); the stream thread renders
from its own copy of the scene (`snapshot`), so a 5 ms render never stalls the 500 Hz loop
beyond the microseconds it takes to copy the state under the lock. Task facts a real arm
cannot know (object poses, goal, success) are returned only in `Snapshot.sim_only`.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import Any

import mujoco
import numpy as np

from hw_bridge.drivers.base import ArmState, Driver, DriverState, Snapshot
from hw_bridge.errors import DriverFault
from hw_bridge.safety import SafetyLimits
from sims.mujoco_sim import PHYSICS_DT, MujocoSim
from sims.robots import load_robot
from sims.tasks import Goal, make_task


class SimDriver(Driver):
    """The described arm `robot` in MuJoCo with the scene of table-top task `task`.

    Args:
        task: e.g. "pick_place" (sims.tasks).
        image_size: (height, width) of every camera; None: each camera's own from the
            description.
        limits: the server's limits; None: the description's safety numbers.
        robot: a description name (sims/robots/), mk6 by default.
    """

    def __init__(self, task: str = "pick_place", image_size: tuple[int, int] | None = None,
                 limits: SafetyLimits | None = None, robot: str = "mk6") -> None:
        super().__init__()
        self.desc = load_robot(robot)
        self.task = make_task(task)
        self.kinematics = self.desc.name  # the workstation loads the same description's model
        cams = self.desc.cameras
        self.image_size = image_size or ((cams[0].height, cams[0].width) if cams else (128, 128))
        self.period = PHYSICS_DT
        self.limits = limits or SafetyLimits(**asdict(self.desc.safety))
        self.cameras = {c.name: image_size or (c.height, c.width) for c in cams}
        self._lock = threading.Lock()
        self._sim: MujocoSim | None = None
        self._goal: Goal | None = None
        self._episode = 0
        self._facts: dict[str, Any] = {}

    # -- lifecycle ------------------------------------------------------------------------
    def connect(self) -> None:
        self._sim = MujocoSim(list(self.task.objects), image_size=self.image_size,
                              robot=self.desc.name)
        self.robot = self._sim.robot
        self._fk_data = mujoco.MjData(self._sim.model)
        self._render_data = mujoco.MjData(self._sim.model)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}  # one per camera size
        self._tcp = self._sim.model.site("tcp").id
        self.reset_episode(0)
        self.state = DriverState.INACTIVE

    def disconnect(self) -> None:
        if self._sim is not None:
            self._sim.close()
        self._sim = None
        self.state = DriverState.DISCONNECTED

    @property
    def sim(self) -> MujocoSim:
        if self._sim is None:
            raise DriverFault("sim driver is not connected")
        return self._sim

    # -- control thread -------------------------------------------------------------------
    def read(self) -> ArmState:
        with self._lock:
            return self._read_locked()

    def _read_locked(self) -> ArmState:
        sim = self.sim
        pos, quat = sim.ee_pose()
        return ArmState(sim.joint_positions(), pos, quat, sim.gripper_opening())

    def write(self, q: np.ndarray, gripper: float) -> None:
        with self._lock:
            self.sim.set_joint_targets(q, gripper)

    def hold(self) -> None:
        if self._sim is None:
            return
        with self._lock:
            self._sim.set_joint_targets(self._sim.joint_positions(), self._sim.gripper_command)

    def wait_period(self, n: int) -> None:
        with self._lock:
            self.sim.physics_step(n)
            failure = self.sim.divergence()
        if failure:
            raise DriverFault(failure)

    def tcp_position(self, q: np.ndarray) -> np.ndarray:
        d = self._fk_data
        d.qpos[self.sim.qpos_adr] = q
        mujoco.mj_kinematics(self.sim.model, d)
        return d.site_xpos[self._tcp].copy()

    def reset_episode(self, seed: int | None) -> dict[str, Any]:
        episode = self.task.sample(np.random.default_rng(seed))
        with self._lock:
            self.sim.reset(episode.placements)
            self._goal = episode.goal
            self._episode += 1
        self._facts = {"episode": self._episode, "instruction": episode.goal.instruction,
                       "task": self.task.name, "max_steps": self.task.max_steps}
        return dict(self._facts)

    def current_episode(self) -> dict[str, Any]:
        return dict(self._facts)

    # -- stream thread --------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        sim, rd = self.sim, self._render_data
        with self._lock:
            state = self._read_locked()
            rd.qpos[:] = sim.data.qpos
            rd.mocap_pos[:] = sim.data.mocap_pos
            rd.mocap_quat[:] = sim.data.mocap_quat
            sim_only = self._privileged_locked(state)
        mujoco.mj_forward(sim.model, rd)
        images = {}
        for cam, size in self.cameras.items():
            renderer = self._renderers.get(size)
            if renderer is None:  # created here: a GL context belongs to its thread
                renderer = self._renderers[size] = mujoco.Renderer(sim.model, *size)
            renderer.update_scene(rd, camera=cam)
            images[cam] = renderer.render().copy()
        return Snapshot(state, images, sim_only)

    def release_stream(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def _privileged_locked(self, state: ArmState) -> dict[str, Any]:
        sim, goal = self.sim, self._goal
        assert goal is not None
        objects = {}
        for o in self.task.objects:
            p, q = sim.object_pose(o.name)
            objects[o.name] = {"pos": p, "quat": q}
        return {"task": self.task.name, "episode": self._episode, "ee_pos": state.ee_pos,
                "ee_quat": state.ee_quat, "gripper": state.gripper, "objects": objects,
                "goal": {"object": goal.object, "target": goal.target},
                "instruction": goal.instruction, "success": self.task.success(sim, goal)}
