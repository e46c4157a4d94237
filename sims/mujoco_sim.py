"""MuJoCo backend: a described arm on a table, objects added per task.

The default arm is mk6 (assets/arm.xml, included into the scene as written); any other
description (sims/robots/*.toml) is attached to the same table by `sims.scene`.

Physics runs at 500 Hz (`PHYSICS_DT`); a control step at 20 Hz is 25 physics steps. End-effector
targets become joint targets by damped-least-squares differential IK on MuJoCo's site Jacobian,
solved on a scratch `MjData` so the simulated arm is only ever driven through its servos
(other arms: `sims.kinematics`, the same damped least squares through mink, with a pull to
home for 7-joint arms).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import mujoco
import numpy as np

from sims import scene
from sims.base import (
    COLORS,
    CUBE_HALF,
    MARKER_RADIUS,
    PLATE_HALF_HEIGHT,
    PLATE_RADIUS,
    ObjectSpec,
    Placement,
    RobotSpec,
    SimTiming,
    quat_from_yaw,
)
from sims.kinematics import ArmKinematics
from sims.robots import RobotDescription, load_robot

ASSETS = Path(__file__).parent / "assets"
PHYSICS_DT = 0.002  # 500 Hz: stiff position servos (kp 2000) stay stable with implicitfast.
ARM_JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6")
# Home: shoulder leaning forward, elbow bent, wrist pitched so the gripper points straight down
# with the TCP ~0.3 m above the table at x ~0.45 m (centre of the workspace).
HOME_QPOS = (0.0, 0.15, 1.75, 0.0, 1.2416, 0.0)
CUBE_MASS = 0.05  # kg: a 4 cm wooden cube.
IK_DAMPING = 1e-3  # Levenberg-Marquardt damping (m^2); keeps steps bounded near singularities.
IK_ITERATIONS = 8


def scene_xml(objects: list[ObjectSpec], camera_fovy: float = 50.0,
              include: str | None = "arm.xml") -> str:
    """MJCF for the table scene with the given objects (positions are set at reset), with the
    arm file `include` in it (None: no arm, one is attached with `sims.scene`)."""
    bodies = [_object_xml(o) for o in objects]
    arm = f'\n  <include file="{include}"/>' if include else ""
    return f"""
<mujoco model="motoken_table">{arm}
  <option timestep="{PHYSICS_DT}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <quality shadowsize="0"/>
    <global offwidth="640" offheight="480"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5"/>
  </visual>
  <worldbody>
    <light pos="0.4 0 1.5" dir="0 0 -1" diffuse="0.5 0.5 0.5"/>
    <geom name="floor" type="plane" size="2 2 0.05" pos="0 0 -0.75" rgba="0.35 0.35 0.38 1"/>
    <geom name="table" type="box" size="0.5 0.6 0.02" pos="0.45 0 -0.02"
          rgba="0.62 0.5 0.38 1" friction="0.8 0.01 0.001"/>
    <camera name="front" pos="1.0 0 0.6" xyaxes="0 1 0 -0.707 0 0.707" fovy="{camera_fovy}"/>
    {"".join(bodies)}
  </worldbody>
</mujoco>"""


def _object_xml(o: ObjectSpec) -> str:
    rgba = " ".join(f"{c:g}" for c in COLORS[o.color])
    if o.kind == "cube":
        h = CUBE_HALF
        return (f'<body name="{o.name}"><freejoint name="{o.name}"/>'
                f'<geom type="box" size="{h} {h} {h}" rgba="{rgba}" mass="{CUBE_MASS}" '
                f'friction="1.2 0.02 0.001" condim="4"/></body>')
    if o.kind == "plate":  # static and thin: a target zone the cube rests on, not an obstacle.
        return (f'<body name="{o.name}" mocap="true"><geom type="cylinder" '
                f'size="{PLATE_RADIUS} {PLATE_HALF_HEIGHT}" rgba="{rgba}"/></body>')
    # marker: a visual-only ball (reach goals), never collides.
    return (f'<body name="{o.name}" mocap="true"><geom type="sphere" size="{MARKER_RADIUS}" '
            f'rgba="{rgba}" contype="0" conaffinity="0"/></body>')


def _joint_names(m: mujoco.MjModel) -> set[str]:
    return {m.joint(i).name for i in range(m.njnt)}


def can_simulate(desc: RobotDescription) -> bool:
    """Whether the table scene can hold this arm: a URDF (made drivable by `sims.scene`), or an
    MJCF written for simulation, with a servo on every arm joint (mk6's arm.xml). An MJCF of
    kinematics only (fr3.xml, for the franka driver's FK and the workstation's IK) cannot."""
    if desc.model.suffix != ".xml":
        return True
    actuators = {a.name for a in mujoco.MjSpec.from_file(str(desc.model)).actuators}
    return set(desc.joint_names) <= actuators


def _scene_model(desc: RobotDescription, objects: list[ObjectSpec]) -> tuple[mujoco.MjModel, str]:
    """The compiled table scene with the arm, and the prefix of the arm's names in it."""
    if desc.model.suffix == ".xml":
        # An MJCF arm is written with its servos, tcp site and wrist camera (mk6's arm.xml), and
        # is included as it always was: mk6's scene stays the same bit for bit.
        assets = {desc.model.name: desc.model.read_bytes()}
        return mujoco.MjModel.from_xml_string(scene_xml(objects, include=desc.model.name),
                                              assets), ""
    world = mujoco.MjSpec.from_string(scene_xml(objects, include=None))
    with warnings.catch_warnings():  # our prefix is not empty; MuJoCo warns on the frame's
        warnings.simplefilter("ignore")
        return scene.build(desc, world).compile(), scene.ARM_PREFIX


class MujocoSim:
    """A described arm (default mk6) and a table scene in MuJoCo. See `sims.base.Sim`."""

    def __init__(self, objects: list[ObjectSpec], control_dt: float = 0.05,
                 image_size: tuple[int, int] = (128, 128), robot: str = "mk6") -> None:
        self.desc = load_robot(robot)
        self.model, prefix = _scene_model(self.desc, objects)
        self.data = mujoco.MjData(self.model)
        self._ik_data = mujoco.MjData(self.model)
        self.objects = {o.name: o for o in objects}
        self.control_dt = control_dt
        self.n_substeps = max(1, round(control_dt / PHYSICS_DT))
        self.camera_names = tuple(c.name for c in self.desc.cameras)
        self.image_size = image_size
        self._renderer: mujoco.Renderer | None = None
        m, desc = self.model, self.desc
        joints = [m.joint(prefix + j).id for j in desc.joint_names]
        self.qpos_adr = m.jnt_qposadr[joints]
        self._dofadr = m.jnt_dofadr[joints]
        fingers = [m.joint(f if f in _joint_names(m) else prefix + f).id
                   for f in desc.gripper.joints or scene.ADDED_FINGERS]
        self._finger_qadr = [m.jnt_qposadr[f] for f in fingers]
        self._arm_act = np.array([m.actuator(j).id for j in desc.joint_names])
        self._grip_act = m.actuator("gripper").id
        self._half_open = desc.gripper.max_opening / 2  # one finger's travel (m)
        self._tcp = m.site("tcp").id
        self.home = np.array(desc.home)
        self._built = bool(prefix)
        if self._built:  # servo gains come from the arm's own inertia
            scene.tune_servos(m, desc, self.home, self.qpos_adr, self._dofadr)
        model_range = m.jnt_range[joints]
        said = np.column_stack([desc.joint_lower, desc.joint_upper])
        if not np.allclose(model_range, said, atol=1e-3):  # a description must cite its model
            raise ValueError(f"robot {desc.name!r}: joint limits {said.tolist()} differ from "
                             f"its model's {model_range.tolist()} ({desc.model})")
        self.robot: RobotSpec = desc.spec()
        # A written arm (mk6) keeps this file's solver, which the shipped policy was trained
        # with; built arms use sims.kinematics, made on first use.
        self._kin: ArmKinematics | None = None
        self._q_target = self.home.copy()
        self.last_timing = SimTiming(0.0, 0.0)

    # -- episode ---------------------------------------------------------------------------
    def reset(self, placements: list[Placement]) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self.qpos_adr] = self.home
        d.qpos[self._finger_qadr] = self._half_open  # open
        for p in placements:
            self._place(p)
        self._q_target = self.home.copy()
        d.ctrl[self._arm_act] = self.home
        d.ctrl[self._grip_act] = self._half_open
        mujoco.mj_forward(m, d)
        for _ in range(50):  # 0.1 s for cubes to settle onto the table
            mujoco.mj_step(m, d)

    def _place(self, p: Placement) -> None:
        if p.name not in self.objects:
            raise KeyError(f"no object {p.name!r} in this scene; objects: {sorted(self.objects)}")
        body = self.model.body(p.name)
        quat = quat_from_yaw(p.yaw)
        if self.model.body_mocapid[body.id] >= 0:
            mocap = self.model.body_mocapid[body.id]
            self.data.mocap_pos[mocap] = p.pos
            self.data.mocap_quat[mocap] = quat
        else:
            adr = self.model.jnt_qposadr[self.model.joint(p.name).id]
            self.data.qpos[adr:adr + 3] = p.pos
            self.data.qpos[adr + 3:adr + 7] = quat

    # -- control ---------------------------------------------------------------------------
    def step(self, ee_pos: np.ndarray, ee_quat: np.ndarray, gripper: float) -> None:
        t0 = time.perf_counter()
        self._q_target = self.solve_ik(ee_pos, ee_quat, self._q_target)
        self.set_joint_targets(self._q_target, gripper)
        for _ in range(self.n_substeps):
            mujoco.mj_step(self.model, self.data)
        self.last_timing = SimTiming(time.perf_counter() - t0, 0.0)

    @property
    def joint_targets(self) -> np.ndarray:
        """The arm's current servo targets (rad), a copy."""
        return self._q_target.copy()

    def set_joint_targets(self, q: np.ndarray, gripper: float) -> None:
        """Low-level servo command (used by the hardware-bridge sim driver)."""
        self._q_target = np.asarray(q, dtype=np.float64).copy()
        self.data.ctrl[self._arm_act] = self._q_target
        self.data.ctrl[self._grip_act] = self._half_open * (1.0 - float(np.clip(gripper, 0, 1)))

    @property
    def gripper_command(self) -> float:
        """The gripper servo's current command, 0 open .. 1 closed."""
        return float(1.0 - self.data.ctrl[self._grip_act] / self._half_open)

    def physics_step(self, n: int = 1) -> None:
        """Advance physics by n * PHYSICS_DT with the current servo targets."""
        mujoco.mj_step(self.model, self.data, nstep=n)

    def solve_ik(self, pos: np.ndarray, quat: np.ndarray, q0: np.ndarray) -> np.ndarray:
        """Joint angles putting the TCP at (pos, quat), by damped least squares from q0."""
        if self._built:
            if self._kin is None:
                self._kin = ArmKinematics(self.desc)
            return self._kin.solve_ik(pos, quat, q0)
        m, d = self.model, self._ik_data
        q = np.array(q0, dtype=np.float64)
        jac = np.zeros((6, m.nv))
        err = np.zeros(6)
        site_quat = np.zeros(4)
        lower, upper = np.array(self.robot.joint_lower), np.array(self.robot.joint_upper)
        for _ in range(IK_ITERATIONS):
            d.qpos[self.qpos_adr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            err[:3] = pos - d.site_xpos[self._tcp]
            mujoco.mju_mat2Quat(site_quat, d.site_xmat[self._tcp])
            mujoco.mju_subQuat(err[3:], quat, site_quat)
            # subQuat gives the error in the site frame; the Jacobian is in the world frame.
            err[3:] = d.site_xmat[self._tcp].reshape(3, 3) @ err[3:]
            if np.linalg.norm(err[:3]) < 1e-5 and np.linalg.norm(err[3:]) < 1e-4:
                break
            mujoco.mj_jacSite(m, d, jac[:3], jac[3:], self._tcp)
            j = jac[:, self._dofadr]
            dq = j.T @ np.linalg.solve(j @ j.T + IK_DAMPING * np.eye(6), err)
            q = np.clip(q + dq, lower, upper)
        return q

    # -- readings --------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self.qpos_adr].copy()

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self._tcp])
        return self.data.site_xpos[self._tcp].copy(), quat

    def gripper_opening(self) -> float:
        return float(self.data.qpos[self._finger_qadr].sum())

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        b = self.data.body(name)
        return b.xpos.copy(), b.xquat.copy()

    def render(self, camera: str) -> np.ndarray:
        t0 = time.perf_counter()
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, *self.image_size)
        self._renderer.update_scene(self.data, camera=camera)
        image = self._renderer.render()
        self.last_timing = SimTiming(self.last_timing.sim_s,
                                     self.last_timing.render_s + time.perf_counter() - t0)
        return image

    def begin_frame(self) -> None:
        """Start a new timing frame (render time accumulates across cameras)."""
        self.last_timing = SimTiming(self.last_timing.sim_s, 0.0)

    def divergence(self) -> str | None:
        d = self.data
        if not (np.isfinite(d.qpos).all() and np.isfinite(d.qvel).all()):
            return "physics diverged: non-finite joint positions or velocities"
        if d.warning[mujoco.mjtWarning.mjWARN_BADQACC].number > 0:
            return "physics diverged: MuJoCo reported a bad acceleration (mjWARN_BADQACC)"
        if np.abs(d.qvel).max() > 100.0:
            return f"physics diverged: joint speed {np.abs(d.qvel).max():.0f} (rad|m)/s > 100"
        return None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
