"""Scripted experts: state machines over privileged simulator state (the data source).

They read `Observation.privileged` (object poses, goal) — ground truth no camera gives — and
steer with the same 7-D delta actions a learned policy emits, so their demonstrations are
directly learnable. Each task has its own script, chosen by `privileged["task"]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.types import ActionChunk, Observation
from sims.base import (
    CUBE_HALF,
    GRIPPER_DOWN,
    PLATE_HALF_HEIGHT,
    axis_angle_from_quat,
    quat_from_yaw,
    quat_mul,
    yaw_from_quat,
)

MAX_DPOS = 0.05  # the env's per-step limits (envs.tabletop); the script plans within them.
MAX_DROT = 0.3
CARRY_Z = 0.15  # m: travel height, clears the other cubes (4 cm) with margin
GRASP_Z = CUBE_HALF + 0.004  # TCP slightly above the cube's centre: fingertips clear the table
PUSH_Z = 0.03  # m: the pusher's height while pushing, below the cube's top (4 cm)
PUSH_APPROACH_Z = 0.08  # m: height it travels at to get behind the cube, clear of both cubes
SETTLE_STEPS = 4  # control steps to let the fingers close/open (0.2 s at 20 Hz)
LIFT_Z = 0.09  # m: clear of the other 4 cm cubes before moving sideways with a cube in hand
FUNNEL_SLOPE = 2.0  # m of height per m of xy error while closing in on a target


class NoPrivilegedStateError(RuntimeError):
    """The scripted expert was given an env that exposes no simulator ground truth."""


@dataclass
class _Plan:
    pos: np.ndarray
    yaw: float
    gripper: float


def _gripper_yaw(quat: np.ndarray) -> float:
    """Heading of the gripper's finger axis for a downward gripper (0 at the home pose)."""
    return yaw_from_quat(quat_mul(quat, np.array([0.0, 0.0, -1.0, 0.0])))


def _grasp_yaw(cube_quat: np.ndarray) -> float:
    """Cube yaw folded into [-pi/4, pi/4]: a cube is symmetric under quarter turns."""
    yaw = yaw_from_quat(cube_quat)
    return float((yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)


def _servo(priv: dict, plan: _Plan) -> np.ndarray:
    """A 7-D action moving the measured EE towards the plan, within the env's step limits."""
    dpos = np.clip(plan.pos - priv["ee_pos"], -MAX_DPOS, MAX_DPOS)
    want = quat_mul(quat_from_yaw(plan.yaw), GRIPPER_DOWN)
    # World-frame rotation taking the measured orientation to the wanted one.
    conj = priv["ee_quat"] * np.array([1.0, -1.0, -1.0, -1.0])
    drot = np.clip(axis_angle_from_quat(quat_mul(want, conj)), -MAX_DROT, MAX_DROT)
    return np.concatenate([dpos, drot, [plan.gripper]]).astype(np.float32)


def _funnel_z(floor: float, xy_err: float, ceiling: float) -> float:
    """Height that falls to `floor` as the gripper closes in over its target in xy.

    Descending *while* aligning (instead of align, stop, then descend) makes the script's
    action a smooth function of what the cameras see, which is what a cloned policy can
    learn; a hidden "aligned yet?" switch is not.
    """
    return float(np.clip(floor + FUNNEL_SLOPE * (xy_err - 0.004), floor, ceiling))


class PickPlaceScript:
    """reach (funnel down onto the cube) -> grasp -> lift -> transport (funnel down onto the
    plate) -> release -> retreat."""

    def __init__(self) -> None:
        self.phase = "reach"
        self.wait = 0

    def act(self, priv: dict) -> np.ndarray:
        cube = priv["objects"][priv["goal"]["object"]]
        plate = priv["objects"][priv["goal"]["target"]]["pos"]
        ee = priv["ee_pos"]
        yaw = _grasp_yaw(cube["quat"])
        lifted = ee[2] > GRASP_Z + 0.03  # only then can we tell a held cube from a dropped one
        held = np.linalg.norm(cube["pos"][:2] - ee[:2]) < 0.03 and cube["pos"][2] > CUBE_HALF + 0.01
        if self.phase in ("lift", "transport") and lifted and not held:
            self.phase = "reach"  # dropped it: start over rather than place thin air
        place_z = 2 * PLATE_HALF_HEIGHT + GRASP_Z + 0.01
        to_cube = float(np.linalg.norm(cube["pos"][:2] - ee[:2]))
        to_plate = float(np.linalg.norm(plate[:2] - ee[:2]))
        plans = {
            "reach": _Plan(np.r_[cube["pos"][:2], _funnel_z(GRASP_Z, to_cube, CARRY_Z - 0.05)],
                           yaw, 0.0),
            "grasp": _Plan(np.r_[cube["pos"][:2], GRASP_Z], yaw, 1.0),
            "lift": _Plan(np.r_[ee[:2], LIFT_Z], yaw, 1.0),
            "transport": _Plan(np.r_[plate[:2], _funnel_z(place_z, to_plate, CARRY_Z)], yaw, 1.0),
            "release": _Plan(np.r_[plate[:2], place_z], yaw, 0.0),
            "retreat": _Plan(np.r_[plate[:2], CARRY_Z], yaw, 0.0),
        }
        plan = plans[self.phase]
        err = plan.pos - ee
        yaw_err = abs((_gripper_yaw(priv["ee_quat"]) - yaw + np.pi / 2) % np.pi - np.pi / 2)
        self._advance(np.linalg.norm(err[:2]), abs(err[2]), yaw_err)
        return _servo(priv, plan)

    def _advance(self, xy_err: float, z_err: float, yaw_err: float) -> None:
        close = xy_err < 0.008 and z_err < 0.01
        if self.phase in ("grasp", "release"):
            self.wait += 1
            if self.wait >= SETTLE_STEPS:
                self.wait = 0
                self.phase = "lift" if self.phase == "grasp" else "retreat"
        elif self.phase == "reach" and close and yaw_err < 0.1:
            self.phase = "grasp"
        elif self.phase == "lift" and z_err < 0.02:
            self.phase = "transport"
        elif self.phase == "transport" and close:
            self.phase = "release"


class PushScript:
    """Go behind the cube (opposite the plate), lower, push it onto the plate, steering: every
    step the pusher aims just behind the cube on the current cube-to-plate line and moves
    forward along it, so a cube that drifts sideways is followed rather than re-approached.

    A function of the current state alone (no phase carried between steps): pushing when
    the pusher is low, behind the cube and within 3.5 cm of its line to the plate; otherwise
    heading for the point behind the cube, descending as it closes in (the pick script's
    funnel). A cloned policy sees only the present, so a label that depends on a hidden phase
    is one it cannot copy; and a DAgger label (agent collect --expert) for a state the expert
    never visited is only defined for an expert without one. `phase` says what this step did.
    (The first script lifted whenever the cube was 2 cm off its line, ~3 re-approaches per DART
    episode; experiments/generalist/push_expert.py.)"""

    def __init__(self) -> None:
        self.phase = "behind"

    def act(self, priv: dict) -> np.ndarray:
        cube = priv["objects"][priv["goal"]["object"]]["pos"]
        plate = priv["objects"][priv["goal"]["target"]]["pos"]
        ee = priv["ee_pos"]
        gap = max(float(np.linalg.norm(plate[:2] - cube[:2])), 1e-6)
        direction = (plate[:2] - cube[:2]) / gap
        heading = float(np.arctan2(direction[1], direction[0]))
        yaw = float((heading + np.pi / 4) % (np.pi / 2) - np.pi / 4)
        if ee[2] < PUSH_Z + 0.015 and not self.lost(ee[:2] - cube[:2], direction):
            self.phase = "push"
            step = np.clip(self.push_target(cube[:2], plate[:2], direction) - ee[:2], -0.02, 0.02)
            plan = _Plan(np.r_[ee[:2] + step, PUSH_Z], yaw, 1.0)  # at most 0.4 m/s: push gently
        else:
            behind = cube[:2] - direction * (CUBE_HALF + 0.035)
            xy_err = float(np.linalg.norm(behind - ee[:2]))
            self.phase = "lower" if xy_err < 0.01 else "behind"
            plan = _Plan(np.r_[behind, _funnel_z(PUSH_Z, xy_err, PUSH_APPROACH_Z)], yaw, 1.0)
        return _servo(priv, plan)

    def lost(self, rel: np.ndarray, direction: np.ndarray) -> bool:
        """Is the push lost: the pusher (at `rel` from the cube) well off the cube-to-plate
        line, or no longer behind the cube?"""
        lateral, along = float(np.cross(direction, rel)), float(direction @ rel)
        return abs(lateral) > 0.035 or along > -CUBE_HALF

    def push_target(self, cube: np.ndarray, plate: np.ndarray,
                    direction: np.ndarray) -> np.ndarray:
        """Where the pusher heads this step: just behind the cube on its line to the plate,
        one step forward (less as the cube nears the plate's centre)."""
        gap = float(np.linalg.norm(plate - cube))
        return cube - direction * (CUBE_HALF + 0.012) + direction * min(0.02, gap)


class ReachScript:
    def act(self, priv: dict) -> np.ndarray:
        ball = priv["objects"][priv["goal"]["target"]]["pos"]
        return _servo(priv, _Plan(np.asarray(ball, dtype=np.float64), 0.0, 0.0))


class MetaWorldScript:
    """Meta-World's own scripted policy (metaworld.policies, one per task). It runs beside the
    simulation in Meta-World's venv, which hands its action, mapped to the 7-D contract, over as
    privileged["expert_action"] (envs.metaworld.env); replaying it is all there is to do here."""

    def act(self, priv: dict) -> np.ndarray:
        return np.asarray(priv["expert_action"], dtype=np.float32)


SCRIPTS = {"pick_place": PickPlaceScript, "pick_place_hard": PickPlaceScript, "push": PushScript,
           "reach": ReachScript, "metaworld": MetaWorldScript}


class ScriptedExpert:
    """A policy that dispatches to the script of the env's task. One action per chunk."""

    name = "scripted"

    def __init__(self) -> None:
        self._script: PickPlaceScript | PushScript | ReachScript | MetaWorldScript | None = None

    def reset(self) -> None:
        self._script = None

    def infer(self, obs: Observation) -> ActionChunk:
        priv = obs.privileged
        if priv is None:
            raise NoPrivilegedStateError(
                "the scripted expert reads privileged simulator state (object poses), but this "
                "env provides none; use a learned policy (--policy PATH) on real robots")
        if self._script is None:
            task = priv["task"]
            if task not in SCRIPTS:
                raise NoPrivilegedStateError(
                    f"no script for task {task!r}; scripted tasks: {sorted(SCRIPTS)}")
            self._script = SCRIPTS[task]()
        return ActionChunk(self._script.act(priv)[None, :])
