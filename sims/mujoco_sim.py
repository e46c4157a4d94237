"""MuJoCo backend: the mk6 arm (assets/arm.xml) on a table, objects added per task.

Physics runs at 500 Hz (`PHYSICS_DT`); a control step at 20 Hz is 25 physics steps. End-effector
targets become joint targets by damped-least-squares differential IK on MuJoCo's site Jacobian,
solved on a scratch `MjData` so the simulated arm is only ever driven through its servos.
"""

from __future__ import annotations

import time
from pathlib import Path

import mujoco
import numpy as np

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

ASSETS = Path(__file__).parent / "assets"
PHYSICS_DT = 0.002  # 500 Hz: stiff position servos (kp 2000) stay stable with implicitfast.
ARM_JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6")
# Home: shoulder leaning forward, elbow bent, wrist pitched so the gripper points straight down
# with the TCP ~0.3 m above the table at x ~0.45 m (centre of the workspace).
HOME_QPOS = (0.0, 0.15, 1.75, 0.0, 1.2416, 0.0)
CUBE_MASS = 0.05  # kg: a 4 cm wooden cube.
IK_DAMPING = 1e-3  # Levenberg-Marquardt damping (m^2); keeps steps bounded near singularities.
IK_ITERATIONS = 8


def scene_xml(objects: list[ObjectSpec], camera_fovy: float = 50.0) -> str:
    """MJCF for the table scene with the given objects (positions are set at reset)."""
    bodies = [_object_xml(o) for o in objects]
    return f"""
<mujoco model="motoken_table">
  <include file="arm.xml"/>
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


class MujocoSim:
    """The mk6 arm and a table scene in MuJoCo. See `sims.base.Sim` for the contract."""

    def __init__(self, objects: list[ObjectSpec], control_dt: float = 0.05,
                 image_size: tuple[int, int] = (128, 128)) -> None:
        xml = scene_xml(objects)
        assets = {"arm.xml": (ASSETS / "arm.xml").read_bytes()}
        self.model = mujoco.MjModel.from_xml_string(xml, assets)
        self.data = mujoco.MjData(self.model)
        self._ik_data = mujoco.MjData(self.model)
        self.objects = {o.name: o for o in objects}
        self.control_dt = control_dt
        self.n_substeps = max(1, round(control_dt / PHYSICS_DT))
        self.camera_names = ("front", "wrist")
        self.image_size = image_size
        self._renderer: mujoco.Renderer | None = None
        m = self.model
        self.qpos_adr = np.array([m.jnt_qposadr[m.joint(j).id] for j in ARM_JOINTS])
        self._dofadr = np.array([m.jnt_dofadr[m.joint(j).id] for j in ARM_JOINTS])
        self._finger_qadr = [m.jnt_qposadr[m.joint(f).id] for f in ("finger_left", "finger_right")]
        self._tcp = m.site("tcp").id
        lower = m.jnt_range[[m.joint(j).id for j in ARM_JOINTS], 0]
        upper = m.jnt_range[[m.joint(j).id for j in ARM_JOINTS], 1]
        self.robot = RobotSpec("mk6", ARM_JOINTS, tuple(lower), tuple(upper), HOME_QPOS,
                               max_gripper_opening=0.08)
        self._q_target = np.array(HOME_QPOS)
        self.last_timing = SimTiming(0.0, 0.0)

    # -- episode ---------------------------------------------------------------------------
    def reset(self, placements: list[Placement]) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self.qpos_adr] = HOME_QPOS
        d.qpos[self._finger_qadr] = 0.04  # open
        for p in placements:
            self._place(p)
        self._q_target = np.array(HOME_QPOS)
        d.ctrl[:6] = HOME_QPOS
        d.ctrl[6] = 0.04
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
        self.data.ctrl[:6] = self._q_target
        self.data.ctrl[6] = 0.04 * (1.0 - float(np.clip(gripper, 0.0, 1.0)))
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
        self.data.ctrl[:6] = self._q_target
        self.data.ctrl[6] = 0.04 * (1.0 - float(np.clip(gripper, 0.0, 1.0)))

    def physics_step(self, n: int = 1) -> None:
        """Advance physics by n * PHYSICS_DT with the current servo targets."""
        mujoco.mj_step(self.model, self.data, nstep=n)

    def solve_ik(self, pos: np.ndarray, quat: np.ndarray, q0: np.ndarray) -> np.ndarray:
        """Joint angles putting the TCP at (pos, quat), by damped least squares from q0."""
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
