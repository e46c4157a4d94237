"""PyBullet backend: the Franka Panda from `pybullet_data` on a table, objects added per task.

Physics runs at 240 Hz (`PHYSICS_DT`, Bullet's tuned default); a 20 Hz control step is 12 physics
steps. End-effector targets become joint targets through Bullet's null-space IK
(`calculateInverseKinematics` with limits and rest poses, so the elbow stays up), solved from the
measured joint state; the arm is then driven only through its position servos.

Each instance owns its own `p.DIRECT` client, so several envs can live in one process. `reset`
rebuilds the world from scratch (`resetSimulation`, ~12 ms): `restoreState` leaves Bullet's
contact caches from the previous episode behind, so a replayed seed would drift by ~1e-2 rad/s
after the settle; a fresh world makes seeded episodes bit-identical.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pybullet as p
import pybullet_data

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
    quat_mul,
)

PANDA_URDF = Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf"
PHYSICS_DT = 1.0 / 240.0  # Bullet's default rate; its solver and contact defaults are tuned for it.
ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
# The URDF's grasp-target link sits 0.105 m along the hand axis: between the fingertip pads.
TCP_LINK = "panda_grasptarget"
# The hand's y axis points opposite to the world y of our convention at home, so the TCP frame is
# the grasp-target frame turned half a turn about its own z (wxyz). Then the home pose reports
# DOWN = (0, 0, 1, 0) and the fingers open along world +-y, as on the MuJoCo arm.
TCP_FROM_LINK = np.array([0.0, 0.0, 0.0, 1.0])
# Home: gripper straight down (q6 = q2 - q4), TCP at ~(0.42, 0, 0.33) like the MuJoCo arm; q7 =
# pi/4 undoes the hand's -45 deg mounting so the fingers open along world y.
HOME_QPOS = (0.0, -0.39, 0.0, -2.47, 0.0, 2.08, np.pi / 4)
FINGER_OPEN = 0.04  # m per finger (URDF limit): 0.08 m between the fingers.
# N per finger, the URDF's effort limit: with friction 1.0 two fingers hold 40 N, ~80x a cube's
# weight, and sink < 1 mm into the URDF's soft (30 kN/m) finger contacts.
FINGER_FORCE = 20.0
# The finger-coupling gear must out-pull one finger's servo to keep the two symmetric; ERP 0.1
# corrects drift gently enough not to fight the contact solver (pybullet's Panda grasp demo).
FINGER_GEAR_FORCE = 2 * FINGER_FORCE
FINGER_GEAR_ERP = 0.1
FINGER_SPEED = 0.2  # m/s per finger, the URDF's velocity limit: closing on a cube takes 0.1 s.
CUBE_MASS = 0.05  # kg: a 4 cm wooden cube (same as MuJoCo).
CUBE_FRICTION = 1.0  # wood on the Panda's rubber-like pads; the fingers' URDF friction is 1.0.
CUBE_SPINNING_FRICTION = 0.001  # damps the cube's spin on the table and between the pads.
TABLE_FRICTION = 0.8  # as in the MuJoCo scene.
TABLE_HALF = (0.5, 0.6, 0.02)  # m, top at z = 0 centred at x = 0.45 like the MuJoCo table.
TABLE_RGBA = (0.62, 0.5, 0.38, 1.0)
FLOOR_HALF = (5.0, 5.0, 0.01)  # m, top 0.75 m below the table top as in the MuJoCo scene;
# wide enough to fill the front camera up to its top edge.
FLOOR_RGBA = (0.35, 0.35, 0.38, 1.0)
SETTLE_STEPS = 24  # 0.1 s at 240 Hz for cubes to settle onto the table at reset.
IK_ITERATIONS = 100  # Bullet stops earlier once the residual is below IK_RESIDUAL.
IK_RESIDUAL = 1e-5  # m
# Cameras as in the MuJoCo scene: (eye, viewing direction, image-up), metres. "front" stands
# in front of the table looking 45 deg down towards the robot; "wrist" sits 7 cm off the gripper
# axis (on the base side at home) and 6 cm behind the TCP, looking along the fingers.
FRONT_CAMERA = (np.array([1.0, 0.0, 0.6]), np.array([-0.707, 0.0, -0.707]),
                np.array([-0.707, 0.0, 0.707]))
WRIST_CAMERA = (np.array([0.07, 0.0, -0.06]), np.array([-0.34, 0.0, 0.94]),
                np.array([0.94, 0.0, 0.34]))
CAMERA_FOVY = {"front": 50.0, "wrist": 75.0}  # degrees, vertical
DISC_SEGMENTS = 32  # a plate's outline, 1.3 cm per segment: round at 128 px
CAMERA_NEAR, CAMERA_FAR = 0.01, 5.0  # m: the wrist camera sees the fingers 5 cm away
# Faster than any commanded motion (the Panda's joints top out at 2.6 rad/s, the fingers at
# 0.2 m/s; a dropped cube falls at ~2 m/s), so exceeding it means the solver blew up.
MAX_SANE_SPEED = 50.0  # rad/s or m/s


def _lowpoly_panda_urdf() -> Path:
    """The shipped Panda URDF with its collision meshes also used as visuals.

    The visual meshes have ~100k triangles against ~3.5k for the collision ones, and the tiny
    renderer's cost is per triangle: a 128 px frame of the arm takes 21 ms against 1 ms, and
    128 px cannot show the detail. Physics is untouched. The file goes to the temp dir, named by
    its content, written atomically so concurrent processes never read half a file.
    """
    mesh_dir = PANDA_URDF.parent / "meshes" / "collision"
    text = PANDA_URDF.read_text()
    for kind in ("visual", "collision"):
        text = text.replace(f"package://meshes/{kind}/", f"{mesh_dir}/")
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"motoken_panda_lowpoly_{digest}.urdf"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".urdf")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return path


def _xyzw(q: np.ndarray) -> list[float]:
    return [float(q[1]), float(q[2]), float(q[3]), float(q[0])]


def _wxyz(q: tuple[float, ...] | list[float]) -> np.ndarray:
    out = np.array([q[3], q[0], q[1], q[2]], dtype=np.float64)
    return out if out[0] >= 0 else -out  # as MuJoCo's free bodies report small yaws


def _mujoco_sign(q: np.ndarray) -> np.ndarray:
    """q or -q, whichever `mju_mat2Quat` would return: the same rotation, the same numbers.

    MuJoCo makes w positive when |w| > 1/2 (positive trace), else the largest of x, y, z. For a
    downward gripper w ~ 0 and y dominates, so the TCP quaternion reads (0, ., +1, .) on both
    backends and never flips sign as the gripper tilts through w = 0.
    """
    w, x, y, z = np.abs(q)
    if w > 0.5:
        i = 0
    elif x > y and x > z:  # mju_mat2Quat's branch order, ties included
        i = 1
    else:
        i = 2 if y > z else 3
    return q if q[i] > 0 else -q


class PybulletSim:
    """The Franka Panda and a table scene in PyBullet. See `sims.base.Sim` for the contract."""

    def __init__(self, objects: list[ObjectSpec], control_dt: float = 0.05,
                 image_size: tuple[int, int] = (128, 128)) -> None:
        self.client = p.connect(p.DIRECT)
        self.objects = {o.name: o for o in objects}
        self.control_dt = control_dt
        self.physics_dt = PHYSICS_DT
        self.n_substeps = max(1, round(control_dt / PHYSICS_DT))
        self.camera_names = ("front", "wrist")
        self.image_size = image_size
        self.last_timing = SimTiming(0.0, 0.0)
        self._build_world()
        self.robot = self._robot_spec()
        self._lower = np.array(self.robot.joint_lower)
        self._upper = np.array(self.robot.joint_upper)
        self._set_home()
        height, width = image_size
        self._projection = {name: p.computeProjectionMatrixFOV(fovy, width / height, CAMERA_NEAR,
                                                               CAMERA_FAR)
                            for name, fovy in CAMERA_FOVY.items()}

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A pybullet function on this instance's client."""
        return getattr(p, name)(*args, physicsClientId=self.client, **kwargs)

    # -- scene -----------------------------------------------------------------------------
    def _build_world(self) -> None:
        """An empty world, then the table scene. Body ids come out the same every time."""
        self._call("resetSimulation")
        self._call("setGravity", 0.0, 0.0, -9.81)
        self._call("setTimeStep", PHYSICS_DT)
        # Sorted broadphase pairs: the contact order, hence the result, no longer depends on
        # memory layout, so a seed replays identically in any process.
        self._call("setPhysicsEngineParameter", deterministicOverlappingPairs=1)
        # The floor, seen by the front camera beyond the table; untextured (a texture costs the
        # tiny renderer ~3 ms a frame) and visual only (nothing falls that far).
        floor = self._body("box", FLOOR_HALF, FLOOR_RGBA, 0.0, collide=False)
        self._call("resetBasePositionAndOrientation", floor, [0.0, 0.0, -0.75 - FLOOR_HALF[2]],
                   [0, 0, 0, 1])
        table = self._body("box", TABLE_HALF, TABLE_RGBA, 0.0)
        self._call("resetBasePositionAndOrientation", table, [0.45, 0.0, -TABLE_HALF[2]],
                   [0, 0, 0, 1])
        self._call("changeDynamics", table, -1, lateralFriction=TABLE_FRICTION)
        self.arm = self._call("loadURDF", str(_lowpoly_panda_urdf()), [0, 0, 0], [0, 0, 0, 1],
                              useFixedBase=True, flags=p.URDF_ENABLE_CACHED_GRAPHICS_SHAPES)
        index = {}
        for j in range(self._call("getNumJoints", self.arm)):
            info = self._call("getJointInfo", self.arm, j)
            index[info[1].decode()] = j
            index[info[12].decode()] = j  # child link name -> link index (same number)
        self._arm_idx = [index[n] for n in ARM_JOINTS]
        self._finger_idx = [index[n] for n in FINGER_JOINTS]
        self._tcp_idx = index[TCP_LINK]
        # The URDF's <mimic> is not enforced by Bullet: without this gear, two force-limited
        # fingers clamping a cube float sideways together (the cube drifts 2 cm off the TCP).
        gear = self._call("createConstraint", self.arm, self._finger_idx[0], self.arm,
                          self._finger_idx[1], p.JOINT_GEAR, [1, 0, 0], [0, 0, 0], [0, 0, 0])
        self._call("changeConstraint", gear, gearRatio=-1, erp=FINGER_GEAR_ERP,
                   maxForce=FINGER_GEAR_FORCE)
        self._arm_forces = [float(self._call("getJointInfo", self.arm, j)[10])
                            for j in self._arm_idx]  # the URDF's effort limits, N·m
        self._bodies = {name: self._object_body(o) for name, o in self.objects.items()}

    def _body(self, shape: str, size: tuple[float, ...], rgba: tuple[float, ...], mass: float,
              collide: bool = True, visual: int | None = None) -> int:
        """A single-link body: a box (half extents), cylinder (radius, half height) or sphere."""
        if shape == "box":
            geom, col_dims, vis_dims = p.GEOM_BOX, {"halfExtents": size}, {"halfExtents": size}
        elif shape == "cylinder":  # Bullet names a cylinder's length differently in the two calls
            geom = p.GEOM_CYLINDER
            col_dims = {"radius": size[0], "height": 2 * size[1]}
            vis_dims = {"radius": size[0], "length": 2 * size[1]}
        else:
            geom, col_dims, vis_dims = p.GEOM_SPHERE, {"radius": size[0]}, {"radius": size[0]}
        col = self._call("createCollisionShape", geom, **col_dims) if collide else -1
        if visual is None:
            visual = self._call("createVisualShape", geom, rgbaColor=rgba, **vis_dims)
        return self._call("createMultiBody", baseMass=mass, baseCollisionShapeIndex=col,
                          baseVisualShapeIndex=visual, basePosition=[0, 0, -1])

    def _disc_visual(self, radius: float, half_height: float, rgba: tuple[float, ...]) -> int:
        """A flat disc at the top of a cylinder. The tiny renderer shades Bullet's own cylinder
        caps with interpolated side normals, which makes a thin plate look like a cone."""
        angles = np.linspace(0.0, 2 * np.pi, DISC_SEGMENTS, endpoint=False)
        rim = [[radius * np.cos(a), radius * np.sin(a), half_height] for a in angles]
        fan = [k for i in range(DISC_SEGMENTS) for k in (0, 1 + i, 1 + (i + 1) % DISC_SEGMENTS)]
        return self._call("createVisualShape", p.GEOM_MESH, rgbaColor=rgba,
                          vertices=[[0.0, 0.0, half_height], *rim], indices=fan,
                          normals=[[0.0, 0.0, 1.0]] * (DISC_SEGMENTS + 1))

    def _object_body(self, o: ObjectSpec) -> int:
        rgba = COLORS[o.color]
        if o.kind == "cube":
            body = self._body("box", (CUBE_HALF,) * 3, rgba, CUBE_MASS)
            self._call("changeDynamics", body, -1, lateralFriction=CUBE_FRICTION,
                       spinningFriction=CUBE_SPINNING_FRICTION)
            return body
        if o.kind == "plate":  # static and thin: a target zone the cube rests on, not an obstacle.
            disc = self._disc_visual(PLATE_RADIUS, PLATE_HALF_HEIGHT, rgba)
            return self._body("cylinder", (PLATE_RADIUS, PLATE_HALF_HEIGHT), rgba, 0.0,
                              visual=disc)
        # marker: a visual-only ball (reach goals), never collides.
        return self._body("sphere", (MARKER_RADIUS,), rgba, 0.0, collide=False)

    def _robot_spec(self) -> RobotSpec:
        infos = [self._call("getJointInfo", self.arm, j) for j in self._arm_idx]
        return RobotSpec("panda", ARM_JOINTS, tuple(float(i[8]) for i in infos),
                         tuple(float(i[9]) for i in infos), HOME_QPOS,
                         max_gripper_opening=2 * FINGER_OPEN)

    def _set_home(self) -> None:
        for j, q in zip(self._arm_idx, HOME_QPOS, strict=True):
            self._call("resetJointState", self.arm, j, q, 0.0)
        for j in self._finger_idx:
            self._call("resetJointState", self.arm, j, FINGER_OPEN, 0.0)
        self._command(np.array(HOME_QPOS), 0.0)

    # -- episode ---------------------------------------------------------------------------
    def reset(self, placements: list[Placement]) -> None:
        t0 = time.perf_counter()
        self._build_world()
        self._set_home()
        for pl in placements:
            if pl.name not in self._bodies:
                raise KeyError(f"no object {pl.name!r} in this scene; "
                               f"objects: {sorted(self._bodies)}")
            self._call("resetBasePositionAndOrientation", self._bodies[pl.name], list(pl.pos),
                       _xyzw(quat_from_yaw(pl.yaw)))
            self._call("resetBaseVelocity", self._bodies[pl.name], [0, 0, 0], [0, 0, 0])
        self.physics_step(SETTLE_STEPS)
        self.last_timing = SimTiming(time.perf_counter() - t0, 0.0)

    # -- control ---------------------------------------------------------------------------
    def step(self, ee_pos: np.ndarray, ee_quat: np.ndarray, gripper: float) -> None:
        t0 = time.perf_counter()
        self._command(self.solve_ik(ee_pos, ee_quat), gripper)
        self.physics_step(self.n_substeps)
        self.last_timing = SimTiming(time.perf_counter() - t0, 0.0)

    def set_joint_targets(self, q: np.ndarray, gripper: float) -> None:
        """Low-level servo command (used by the hardware-bridge sim driver)."""
        self._command(np.clip(np.asarray(q, dtype=np.float64), self._lower, self._upper), gripper)

    def physics_step(self, n: int = 1) -> None:
        """Advance physics by n * PHYSICS_DT with the current servo targets."""
        for _ in range(n):
            self._call("stepSimulation")

    def _command(self, q: np.ndarray, gripper: float) -> None:
        self._call("setJointMotorControlArray", self.arm, self._arm_idx, p.POSITION_CONTROL,
                   targetPositions=q.tolist(), forces=self._arm_forces)
        finger = FINGER_OPEN * (1.0 - float(np.clip(gripper, 0.0, 1.0)))
        for j in self._finger_idx:  # the URDF's <mimic> is not enforced by Bullet: drive both
            self._call("setJointMotorControl2", self.arm, j, p.POSITION_CONTROL,
                       targetPosition=finger, force=FINGER_FORCE, maxVelocity=FINGER_SPEED)

    def solve_ik(self, pos: np.ndarray, quat: np.ndarray) -> np.ndarray:
        """Joint angles putting the TCP at (pos, quat wxyz), starting from the measured state.

        Bullet's IK iterates from the body's current joint state. Seeding it elsewhere through
        `currentPositions` gave solutions 5 cm off target in pybullet 3.2.7, so we do not; the
        measured state is also what a real controller would start from.
        """
        # Rz(pi) is its own inverse, so the same product maps TCP to link orientation.
        link_quat = quat_mul(np.asarray(quat, dtype=np.float64), TCP_FROM_LINK)
        q = self._call("calculateInverseKinematics", self.arm, self._tcp_idx,
                       [float(v) for v in pos], _xyzw(link_quat),
                       lowerLimits=self._lower.tolist(), upperLimits=self._upper.tolist(),
                       jointRanges=(self._upper - self._lower).tolist(),
                       restPoses=list(HOME_QPOS), maxNumIterations=IK_ITERATIONS,
                       residualThreshold=IK_RESIDUAL)
        return np.clip(np.array(q[:len(self._arm_idx)]), self._lower, self._upper)

    # -- readings --------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        states = self._call("getJointStates", self.arm, self._arm_idx)
        return np.array([s[0] for s in states])

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        state = self._call("getLinkState", self.arm, self._tcp_idx, computeForwardKinematics=True)
        return np.array(state[4]), _mujoco_sign(quat_mul(_wxyz(state[5]), TCP_FROM_LINK))

    def gripper_opening(self) -> float:
        opening = sum(s[0] for s in self._call("getJointStates", self.arm, self._finger_idx))
        # Bullet's joint limits are soft: fingers squeezed shut read ~-1 mm, which no gap can be.
        return float(np.clip(opening, 0.0, 2 * FINGER_OPEN))

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        pos, quat = self._call("getBasePositionAndOrientation", self._bodies[name])
        return np.array(pos), _wxyz(quat)

    def render(self, camera: str) -> np.ndarray:
        t0 = time.perf_counter()
        if camera not in CAMERA_FOVY:
            raise KeyError(f"no camera {camera!r}; cameras: {list(self.camera_names)}")
        eye, forward, up = FRONT_CAMERA
        if camera == "wrist":  # mounted on the hand: its pose is given in the TCP frame
            pos, quat = self.ee_pose()
            rot = np.array(p.getMatrixFromQuaternion(_xyzw(quat))).reshape(3, 3)
            eye, forward, up = (pos + rot @ WRIST_CAMERA[0], rot @ WRIST_CAMERA[1],
                                rot @ WRIST_CAMERA[2])
        view = p.computeViewMatrix(list(eye), list(np.add(eye, forward)), list(up))
        height, width = self.image_size
        _, _, rgba, _, _ = self._call("getCameraImage", width, height, view,
                                      self._projection[camera], renderer=p.ER_TINY_RENDERER,
                                      flags=p.ER_NO_SEGMENTATION_MASK, shadow=0)
        image = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()
        self.last_timing = SimTiming(self.last_timing.sim_s,
                                     self.last_timing.render_s + time.perf_counter() - t0)
        return image

    def begin_frame(self) -> None:
        """Start a new timing frame (render time accumulates across cameras)."""
        self.last_timing = SimTiming(self.last_timing.sim_s, 0.0)

    def divergence(self) -> str | None:
        joints = self._call("getJointStates", self.arm, self._arm_idx + self._finger_idx)
        q = np.array([s[0] for s in joints])
        dq = np.array([s[1] for s in joints])
        if not (np.isfinite(q).all() and np.isfinite(dq).all()):
            return "physics diverged: non-finite joint positions or velocities"
        if np.abs(dq).max() > MAX_SANE_SPEED:
            return (f"physics diverged: joint speed {np.abs(dq).max():.0f} (rad|m)/s "
                    f"> {MAX_SANE_SPEED:g}")
        for name, body in self._bodies.items():
            pos, _ = self._call("getBasePositionAndOrientation", body)
            lin, ang = self._call("getBaseVelocity", body)
            speed = np.abs(np.r_[lin, ang])
            if not (np.isfinite(pos).all() and np.isfinite(speed).all()):
                return f"physics diverged: non-finite pose or velocity of {name}"
            if speed.max() > MAX_SANE_SPEED:
                return f"physics diverged: {name} moves at {speed.max():.0f} (m|rad)/s"
        return None

    def close(self) -> None:
        if self.client >= 0:
            p.disconnect(physicsClientId=self.client)
            self.client = -1
