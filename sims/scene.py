"""MuJoCo models of any described arm (sims/robots/*.toml), alone or on the table-top scene.

Built with MuJoCo's model-editing API (`mujoco.MjSpec`): the arm's own model file (URDF or MJCF)
is parsed, made drivable, and attached to the table scene of `sims.mujoco_sim.scene_xml`. What
is added to every arm, so that all arms present the same interface to the simulator and the
bridge:

- position servos on the arm joints, each a critically damped `SERVO_OMEGA` rad/s loop at the
  joint's inertia in the home pose, capped at the model's effort limit; gravity compensation on
  every link (what each commercial arm controller runs, as mk6's `gravcomp`);
- a parallel gripper with one position servo: the model's own fingers where it has them (coupled
  by the model's mimic joint, or an equality added here), else two plain fingers on the flange;
- a `tcp` site at the description's tool centre point and a `wrist` camera beside it.

mk6 does not come through here: its hand-written `assets/arm.xml` scene stays as it was, so its
simulation (and what the shipped policy was trained on) is unchanged bit for bit.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sims.robots import RobotDescription

ARM_PREFIX = "arm/"  # names of the arm's own bodies and joints inside the scene
SERVO_OMEGA = 40.0  # rad/s: mk6's shoulder servo (kp 2000 on ~1.3 kg m^2), for every joint
ARMATURE = 0.1  # kg m^2 of reflected rotor inertia per joint, as mk6's
JOINT_DAMPING, JOINT_FRICTION = 1.0, 0.1  # as mk6's arm joints
FINGER_KP, FINGER_KV, FINGER_FORCE = 1000.0, 20.0, 40.0  # mk6's gripper servo: ~20 N of grip
FINGER_INERTIA_RADIUS = 0.02  # m: a finger's rotational inertia, that of a 2 cm bar
# mk6's wrist camera, relative to its TCP: 7 cm to the side, 6 cm back along the approach,
# looking down past the fingertips.
WRIST_CAMERA_POS = np.array([0.07, 0.0, -0.06])
WRIST_CAMERA_XYAXES = (0.0, 1.0, 0.0, 0.94, 0.0, 0.34)
WRIST_CAMERA_FOVY = 75.0
# The plain gripper for arms modelled without one: mk6's finger and palm sizes.
FINGER_HALF = (0.01, 0.006, 0.025)  # box half sizes (m): 2 x 1.2 x 5 cm fingers
PALM_HALF = (0.025, 0.055, 0.02)
ADDED_FINGERS = ("finger_left", "finger_right")  # their joints' names


def arm_spec(desc: RobotDescription) -> mujoco.MjSpec:
    """The arm's own model file, parsed, with mesh paths resolved against its folder."""
    spec = mujoco.MjSpec.from_file(str(desc.model))
    for mesh in spec.meshes:
        # URDFs name meshes `package://REL`; pybullet_data keeps REL under the URDF's folder.
        mesh.file = str(desc.model.parent / mesh.file.removeprefix("package://"))
    return spec


def build(desc: RobotDescription, world: mujoco.MjSpec) -> mujoco.MjSpec:
    """Attach the described arm to `world` (a scene or an empty spec) at its `base_pos`, with
    its servos, gripper, tcp site and wrist camera. Returns `world`."""
    arm = arm_spec(desc)
    frame = world.worldbody.add_frame(pos=list(desc.base_pos))
    frame.attach_body(arm.worldbody.first_body(), ARM_PREFIX, "")
    bodies = {b.name: b for b in world.bodies}
    tcp_body = bodies.get(ARM_PREFIX + desc.tcp)
    if tcp_body is None:
        raise ValueError(f"robot {desc.name!r}: tcp {desc.tcp!r} is no body of {desc.model}; "
                         f"bodies: {sorted(n.removeprefix(ARM_PREFIX) for n in bodies)}")
    for body in world.bodies:
        if body.name.startswith(ARM_PREFIX):
            body.gravcomp = 1.0
            if body.mass <= 0.0:  # a bare frame (e.g. panda_grasptarget): no inertia either
                _set_inertia(body, 1e-9)  # MuJoCo needs it positive
    for geom in world.geoms:
        if geom.name.startswith(ARM_PREFIX) or _in_arm(geom):
            geom.contype, geom.conaffinity = 2, 1  # collide with the world, not each other
    tcp, tcp_rot = np.asarray(desc.tcp_offset, float), _rotation(desc.tcp_quat)
    tcp_body.add_site(name="tcp", pos=tcp, quat=list(desc.tcp_quat), size=[0.005, 0, 0],
                      rgba=[1, 0, 0, 0.5], group=3)
    x, y = np.array(WRIST_CAMERA_XYAXES[:3]), np.array(WRIST_CAMERA_XYAXES[3:])
    cam_quat = np.zeros(4)  # the camera's axes given in the TCP's frame, into the body's
    mujoco.mju_mat2Quat(cam_quat, (tcp_rot @ np.column_stack([x, y, np.cross(x, y)])).ravel())
    tcp_body.add_camera(name="wrist", pos=tcp + tcp_rot @ WRIST_CAMERA_POS, quat=cam_quat,
                        fovy=WRIST_CAMERA_FOVY)
    for name in desc.joint_names:
        j = world.joint(ARM_PREFIX + name)
        j.armature, j.frictionloss = ARMATURE, JOINT_FRICTION
        j.damping = [JOINT_DAMPING, 0.0, 0.0]  # MuJoCo 4: polynomial damping coefficients
        world.add_actuator(name=name, target=ARM_PREFIX + name,
                           trntype=mujoco.mjtTrn.mjTRN_JOINT)
    fingers = desc.gripper.joints or _add_fingers(tcp_body, desc)
    _drive_fingers(world, fingers, desc)
    return world


def _rotation(quat: tuple[float, ...]) -> np.ndarray:
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, float))
    return mat.reshape(3, 3)


def _in_arm(geom: mujoco.MjsGeom) -> bool:
    parent = geom.parent
    return parent is not None and parent.name.startswith(ARM_PREFIX)


def _set_inertia(body: mujoco.MjsBody, moment: float) -> None:
    """The same principal moment about every axis (a URDF's inertial is a `fullinertia`)."""
    body.explicitinertial = True
    body.inertia = [0.0, 0.0, 0.0]
    body.fullinertia = [moment, moment, moment, 0.0, 0.0, 0.0]


def _add_fingers(hand: mujoco.MjsBody, desc: RobotDescription) -> tuple[str, str]:
    """Two slide fingers meeting at the TCP, a palm behind them, a post back to the flange,
    all along the flange's z, closing along its y (the TCP must be on that axis, unturned)."""
    tcp = np.asarray(desc.tcp_offset, float)
    if np.abs(tcp[:2]).max() > 1e-9 or tuple(desc.tcp_quat) != (1.0, 0.0, 0.0, 0.0):
        raise ValueError(f"robot {desc.name!r}: the plain gripper is built along the flange's "
                         f"z axis; tcp_offset {desc.tcp_offset} / tcp_quat {desc.tcp_quat} "
                         "put the TCP off it (model the gripper, or move the TCP onto it)")
    fx, fy, fz = FINGER_HALF
    palm_z = tcp[2] - 2 * fz - PALM_HALF[2]
    hand.add_geom(name="gripper_post", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                  size=[0.03, palm_z / 2, 0], pos=[0, 0, palm_z / 2], mass=0.3,
                  rgba=[0.25, 0.25, 0.28, 1], contype=2, conaffinity=1)
    hand.add_geom(name="gripper_palm", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(PALM_HALF),
                  pos=[0, 0, palm_z], mass=0.4, rgba=[0.25, 0.25, 0.28, 1], contype=2,
                  conaffinity=1)
    names = ADDED_FINGERS
    for name, side in zip(names, (1.0, -1.0), strict=True):
        f = hand.add_body(name=name, pos=[0, 0, tcp[2] - 2 * fz], gravcomp=1.0)
        f.add_joint(name=name, type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, side, 0],
                    range=[0, desc.gripper.max_opening / 2], damping=[5.0, 0, 0], armature=0.01)
        f.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=[fx, fy, fz],
                   pos=[0, side * fy, fz], mass=0.05, rgba=[0.2, 0.2, 0.22, 1])
    return names


def _drive_fingers(world: mujoco.MjSpec, fingers: tuple[str, ...] | list[str],
                   desc: RobotDescription) -> None:
    names = {j.name for j in world.joints}
    full = [f if f in names else ARM_PREFIX + f for f in fingers]
    for f in full:
        body = world.joint(f).parent
        # pybullet_data's panda fingers carry a placeholder 0.1 kg m^2 (that of a 1.4 m bar):
        # a finger's inertia is its mass on a 2 cm radius.
        if body.explicitinertial and body.mass > 0:
            _set_inertia(body, body.mass * FINGER_INERTIA_RADIUS**2)
        for g in body.geoms:  # grip like mk6's fingers (mk6 arm.xml, class "finger")
            g.friction = [1.5, 0.02, 0.001]
            g.condim = 4
            g.contype, g.conaffinity = 2, 1
            g.solref = [0.01, 1]
            g.solimp = [0.95, 0.99, 0.001, 0.5, 2]
        for other in world.bodies:  # fingers never collide with their own hand
            if other is not body and other.name.startswith(ARM_PREFIX):
                world.add_exclude(bodyname1=body.name, bodyname2=other.name)
    if not any(e.type == mujoco.mjtEq.mjEQ_JOINT for e in world.equalities):
        world.add_equality(type=mujoco.mjtEq.mjEQ_JOINT, name1=full[1], name2=full[0],
                           data=[0, 1, 0, 0, 0] + [0] * 7, solref=[0.005, 1])
    world.add_actuator(name="gripper", target=full[0], trntype=mujoco.mjtTrn.mjTRN_JOINT)


def tune_servos(model: mujoco.MjModel, desc: RobotDescription, home: np.ndarray,
                qpos_adr: np.ndarray, dof_adr: np.ndarray) -> None:
    """Set every servo's gains on a compiled model: arm joints critically damped at
    SERVO_OMEGA for their inertia at `home`, capped at the model's effort; the gripper mk6's."""
    data = mujoco.MjData(model)
    data.qpos[qpos_adr] = home
    mujoco.mj_forward(model, data)
    full = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, data, full)
    for i, name in enumerate(desc.joint_names):
        a = model.actuator(name).id
        inertia = full[dof_adr[i], dof_adr[i]]
        _set_position_gains(model, a, inertia * SERVO_OMEGA**2, 2 * inertia * SERVO_OMEGA,
                            _effort(model, ARM_PREFIX + name))
        model.actuator_ctrlrange[a] = (desc.joint_lower[i], desc.joint_upper[i])
        model.actuator_ctrllimited[a] = 1
    g = model.actuator("gripper").id
    _set_position_gains(model, g, FINGER_KP, FINGER_KV, FINGER_FORCE)
    model.actuator_ctrlrange[g] = (0.0, desc.gripper.max_opening / 2)
    model.actuator_ctrllimited[g] = 1


def _effort(model: mujoco.MjModel, joint: str) -> float:
    j = model.joint(joint).id
    lo, hi = model.jnt_actfrcrange[j]
    return float(hi) if model.jnt_actfrclimited[j] and hi > 0 else np.inf


def _set_position_gains(model: mujoco.MjModel, a: int, kp: float, kv: float,
                        force: float) -> None:
    model.actuator_gaintype[a] = mujoco.mjtGain.mjGAIN_FIXED
    model.actuator_biastype[a] = mujoco.mjtBias.mjBIAS_AFFINE
    model.actuator_gainprm[a, :3] = (kp, 0, 0)
    model.actuator_biasprm[a, :3] = (0, -kp, -kv)
    if np.isfinite(force):
        model.actuator_forcerange[a] = (-force, force)
        model.actuator_forcelimited[a] = 1
