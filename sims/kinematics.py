"""Forward and inverse kinematics of any described arm, from its own model file.

FK is MuJoCo's (`mj_kinematics` on the arm's model with a `tcp` site at the description's tool
centre point). IK is differential, solved with `mink` (a maintained QP-based IK library on
MuJoCo): each iteration asks for the joint step that best moves the TCP onto the target pose,
with Levenberg-Marquardt damping `IK_DAMPING` on every joint (the same damped least squares
`MujocoSim.solve_ik` runs for mk6) and the joint limits as hard QP constraints instead of a clip
afterwards. An arm with more joints than the pose needs (the 7-joint Panda, iiwa) also has a
weak pull towards its home pose, which picks one elbow among the infinitely many that reach the
pose and keeps it from wandering between calls.

`mink` is imported on first IK use only: the robot side (the bridge's sim driver) needs FK alone.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from sims.robots import RobotDescription, load_robot

IK_DAMPING = 1e-3  # mk6's DLS damping (m^2): bounded steps near singularities
IK_ITERATIONS = 8  # mk6's: at 20 Hz a target is <= 5 cm / 0.3 rad from the last solution
POS_TOL, ROT_TOL = 1e-5, 1e-4  # m, rad: close enough to stop iterating (mk6's)
POSTURE_COST = 1e-3  # per rad, against 1 per m / rad on the TCP: the elbow's weak pull home


def kinematic_model(desc: RobotDescription) -> mujoco.MjModel:
    """The arm's model alone (no scene), with a `tcp` site where the description puts it."""
    from sims.scene import arm_spec

    spec = arm_spec(desc)
    for body in spec.worldbody.bodies:  # the arm's root(s) stand at the description's base_pos
        body.pos = np.asarray(body.pos) + np.asarray(desc.base_pos)
    sites = {s.name for s in spec.sites}
    if desc.tcp not in sites:
        bodies = {b.name: b for b in spec.bodies}
        if desc.tcp not in bodies:
            raise ValueError(f"robot {desc.name!r}: tcp {desc.tcp!r} is neither a site nor a "
                             f"body of {desc.model}")
        bodies[desc.tcp].add_site(name="tcp", pos=list(desc.tcp_offset),
                                  quat=list(desc.tcp_quat))
    return spec.compile()


class ArmKinematics:
    """FK and IK of one described arm (see the module docstring).

    Attributes:
        joint_names: the arm joints, in the order of every `q` here.
    """

    def __init__(self, desc: RobotDescription) -> None:
        self.desc = desc
        self.joint_names = desc.joint_names
        self.model = kinematic_model(desc)
        m = self.model
        self._site = m.site("tcp" if desc.tcp not in _site_names(m) else desc.tcp).id
        joints = [m.joint(j).id for j in desc.joint_names]
        self.qpos_adr = m.jnt_qposadr[joints]
        self.dof_adr = m.jnt_dofadr[joints]
        self._data = mujoco.MjData(m)
        self._lower = np.array(desc.joint_lower)
        self._upper = np.array(desc.joint_upper)
        self._ik: dict[str, Any] | None = None

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) and wxyz quaternion (4,) for joint angles q."""
        d = self._data
        d.qpos[self.qpos_adr] = q
        mujoco.mj_kinematics(self.model, d)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self._site])
        return d.site_xpos[self._site].copy(), quat

    def solve_ik(self, pos: np.ndarray, quat: np.ndarray, q0: np.ndarray) -> np.ndarray:
        """Joint angles putting the TCP at (pos, wxyz quat), iterating from q0."""
        ik = self._ik or self._setup_ik()
        mink, config = ik["mink"], ik["configuration"]
        q = config.q.copy()
        q[self.qpos_adr] = np.clip(q0, self._lower, self._upper)  # MuJoCo's limits are soft
        config.update(q)
        target = mink.SE3.from_rotation_and_translation(mink.SO3(np.asarray(quat, float)),
                                                        np.asarray(pos, float))
        ik["frame"].set_target(target)
        for _ in range(IK_ITERATIONS):
            err = ik["frame"].compute_error(config)  # (6,): translation, rotation
            if np.linalg.norm(err[:3]) < POS_TOL and np.linalg.norm(err[3:]) < ROT_TOL:
                break
            v = mink.solve_ik(config, ik["tasks"], 1.0, "daqp", damping=IK_DAMPING,
                              limits=ik["limits"], constraints=ik["constraints"])
            config.integrate_inplace(v, 1.0)
        return config.q[self.qpos_adr].copy()

    def _setup_ik(self) -> dict[str, Any]:
        import mink

        m = self.model
        config = mink.Configuration(m)
        frame = mink.FrameTask("tcp", "site", position_cost=1.0, orientation_cost=1.0)
        tasks: list[Any] = [frame]
        if len(self.joint_names) > 6:  # redundant: a weak pull to home picks the elbow
            posture = mink.PostureTask(m, cost=POSTURE_COST)
            home = config.q.copy()
            home[self.qpos_adr] = self.desc.home
            posture.set_target(home)
            tasks.append(posture)
        others = sorted(set(range(m.nv)) - set(self.dof_adr.tolist()))  # fingers stay put
        constraints = [mink.DofFreezingTask(m, dof_indices=others)] if others else []
        self._ik = {"mink": mink, "configuration": config, "frame": frame, "tasks": tasks,
                    "limits": [mink.ConfigurationLimit(m)], "constraints": constraints}
        return self._ik


def _site_names(m: mujoco.MjModel) -> set[str]:
    return {m.site(i).name for i in range(m.nsite)}


def make_arm_kinematics(robot: str) -> ArmKinematics:
    """The kinematics of the described robot `robot` (UnknownRobotDescriptionError lists the
    known ones)."""
    return ArmKinematics(load_robot(robot))
