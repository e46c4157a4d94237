"""Lookahead: sample K candidate action chunks, imagine each one's future, execute the best.

The policy samples K chunks; a predictor (the video head's future-state output, decoded by the
state codec) gives each chunk's predicted state `horizon` steps ahead; a predicted state with
a joint outside the arm's joint limits (less the safety margin) or the tool centre point
outside the workspace box is rejected (-inf), the rest are scored by predicted task progress
(by default minus the EE's distance to a goal point). The best chunk is executed (the greedy
row 0 unless another beats it by more than a margin: `pick_best`); if every
candidate is rejected that is an error, never a silent fallback to a rejected chunk.

The limits are the ones the robot side enforces (hw_bridge.safety.SafetyLimits, the arm's
RobotSpec joint range), so lookahead refuses what the bridge would clamp anyway.

Predicted states are laid out as the env's (envs.features.StateLayout: joints, EE xyz, EE quat
wxyz, gripper opening); every slice of them goes through that layout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro

from envs.features import StateLayout
from envs.types import Observation
from hw_bridge.safety import SafetyLimits
from sims.base import RobotSpec

#: (K, state_dim) predicted states -> (K,) progress, higher is better.
ProgressFn = Callable[[np.ndarray], np.ndarray]
#: (observation, K) -> (K, H, Da) candidate chunks.
SampleFn = Callable[[Observation, int], np.ndarray]
#: (observation, (K, H, Da) chunks) -> (K, state_dim) predicted future states.
PredictFn = Callable[[Observation, np.ndarray], np.ndarray]


class LookaheadError(ValueError):
    """Base class of every lookahead error."""


class AllCandidatesRejectedError(LookaheadError):
    """Every candidate's predicted state left the joint limits or the workspace."""


class CandidateShapeError(LookaheadError):
    """Chunks, predicted states or scores of the wrong shape."""


@dataclass(frozen=True)
class StateLimits:
    """Where a predicted state must lie to be accepted (all tuples in the state's units)."""

    joint_lower: tuple[float, ...]  # rad, per arm joint
    joint_upper: tuple[float, ...]
    workspace_low: tuple[float, float, float]  # m, world frame, TCP position
    workspace_high: tuple[float, float, float]
    layout: StateLayout  # where the joints and the TCP position sit in a state

    def __post_init__(self) -> None:
        n = self.layout.n_joints
        if not len(self.joint_lower) == len(self.joint_upper) == n:
            raise ValueError(f"joint_lower ({len(self.joint_lower)}) and joint_upper "
                             f"({len(self.joint_upper)}) must have one value per joint of the "
                             f"state layout ({n}: {list(self.layout.joint_names)})")
        if not all(lo < hi for lo, hi in zip(self.joint_lower, self.joint_upper, strict=True)):
            raise ValueError(f"joint_lower {self.joint_lower} must be below joint_upper "
                             f"{self.joint_upper} for every joint")

    @classmethod
    def from_robot(cls, robot: RobotSpec, safety: SafetyLimits | None = None) -> StateLimits:
        """The robot's joint range less the bridge's joint margin, and the bridge's box."""
        s = safety or SafetyLimits()
        return cls(tuple(lo + s.joint_margin for lo in robot.joint_lower),
                   tuple(hi - s.joint_margin for hi in robot.joint_upper),
                   s.workspace_low, s.workspace_high, StateLayout.for_robot(robot))

    def accepted(self, states: np.ndarray) -> np.ndarray:
        """(K, state_dim) -> (K,) bool: joints within limits and EE inside the box."""
        q, ee = states[:, self.layout.joints], states[:, self.layout.ee_pos]  # (K, n), (K, 3)
        ok_q = ((q >= self.joint_lower) & (q <= self.joint_upper)).all(1)  # (K,)
        ok_ee = ((ee >= self.workspace_low) & (ee <= self.workspace_high)).all(1)  # (K,)
        return ok_q & ok_ee & np.isfinite(states).all(1)  # (K,)


def distance_progress(goal_xyz: np.ndarray, layout: StateLayout) -> ProgressFn:
    """Progress = minus the EE's distance (m) to a goal point."""
    goal = np.asarray(goal_xyz, dtype=np.float64)
    if goal.shape != (3,):
        raise CandidateShapeError(f"goal_xyz must have shape (3,), got {goal.shape}")
    return lambda s: -np.linalg.norm(s[:, layout.ee_pos] - goal, axis=1)  # (K,)


def funnel_progress(target_xyz: np.ndarray, layout: StateLayout, slope: float = 2.0,
                    rise: float = 0.08) -> ProgressFn:
    """Progress = minus the EE's distance (m) to a goal that rises above `target_xyz` by
    `slope` times the EE's remaining xy error (at most `rise`).

    The scripted expert approaches a cube or a plate down such a funnel (policies.scripted).
    Plain distance to the target rewards the candidate that cuts the corner: low and still
    off to one side, where the fingers sweep the neighbouring cubes. On the funnel, getting
    lower pays only once the EE is over the target.
    """
    target = np.asarray(target_xyz, dtype=np.float64)
    if target.shape != (3,):
        raise CandidateShapeError(f"target_xyz must have shape (3,), got {target.shape}")
    if not (slope >= 0 and rise >= 0):
        raise ValueError(f"funnel slope and rise must be >= 0, got {slope} and {rise}")

    def progress(s: np.ndarray) -> np.ndarray:
        ee = s[:, layout.ee_pos]  # (K, 3)
        xy_err = np.linalg.norm(ee[:, :2] - target[:2], axis=1)  # (K,)
        z_err = ee[:, 2] - (target[2] + np.minimum(slope * xy_err, rise))  # (K,)
        return -np.hypot(xy_err, z_err)  # (K,)

    return progress


#: --lookahead-score: progress functions by name, (goal (3,), state layout) -> ProgressFn.
SCORES: dict[str, Callable[[np.ndarray, StateLayout], ProgressFn]] = {
    "distance": distance_progress, "funnel": funnel_progress}
#: --lookahead-when (agent.lookahead_agent.LookaheadPolicy): "always" chooses every chunk by
#: lookahead; "missed-grasp" runs the policy alone until the fingers close on nothing, then
#: chooses by lookahead for the rest of the episode.
WHEN = ("always", "missed-grasp")


def _flag(field: str) -> str:
    """The `agent run`/`agent eval` flag of a LookaheadConfig field."""
    return {"k": "lookahead", "tokenizer": "tokenizer"}.get(field, "lookahead-" + field)


def _arg(field: str, metavar: str) -> object:
    return tyro.conf.arg(name=_flag(field), metavar=metavar)


ScoreName = Literal[tuple(sorted(SCORES))]  # type: ignore[valid-type]
WhenName = Literal[WHEN]  # type: ignore[valid-type]


@dataclass(frozen=True)
class LookaheadConfig:
    """(experimental) Lookahead (agent/lookahead_agent.py): sample K candidate chunks per
    decision, predict each one's future with the run's video head, execute the best."""

    # Field docstrings are the flags' help (`_flag`), one line each.
    k: Annotated[int | None, _arg("k", "K")] = None
    """(experimental) choose among K >= 2 sampled chunks by the video head (a --tokenizer run)"""
    horizon: Annotated[int | None, _arg("horizon", "STEPS")] = None
    """(experimental) score the state this many steps ahead (None: the head's horizon)"""
    temperature: Annotated[float, _arg("temperature", "T")] = 1.0
    """(experimental) sampling temperature of the candidates after the greedy one"""
    margin: Annotated[float, _arg("margin", "M")] = 0.0
    """(experimental) keep the greedy chunk unless another's progress beats it by > M metres"""
    # "funnel": the distance to a point above the goal that falls as the EE lines up.
    score: Annotated[ScoreName, _arg("score", "{" + ",".join(sorted(SCORES)) + "}")] = "distance"
    """(experimental) progress: distance to the plan's goal, or funnel (see funnel_progress)"""
    # "missed-grasp": the policy alone until the fingers close on nothing, then lookahead.
    when: Annotated[WhenName, _arg("when", "{" + ",".join(WHEN) + "}")] = "always"
    """(experimental) always choose by lookahead, or only after a missed grasp"""
    tokenizer: Annotated[Path | None, _arg("tokenizer", "TOK")] = None
    """(experimental) the head's tokenizer, if it moved (None: RUN's copy, else its record)"""

    def __post_init__(self) -> None:
        if self.k is None:
            given = [f"--{_flag(f.name)}" for f in fields(self)
                     if getattr(self, f.name) != f.default]
            if given:
                raise ValueError(f"{' and '.join(given)} apply to --lookahead K only")
            return
        if self.k < 2:
            raise ValueError(f"--lookahead K needs K >= 2 candidates, got {self.k}")
        if self.horizon is not None and self.horizon < 1:
            raise ValueError(f"--lookahead-horizon must be >= 1 steps, got {self.horizon}")
        if not self.temperature > 0:  # not > also refuses NaN
            raise ValueError(f"lookahead temperature must be > 0, got {self.temperature}")
        if not self.margin >= 0:
            raise ValueError(f"lookahead margin must be >= 0, got {self.margin}")


def score_candidates(predicted_states: np.ndarray, goal: np.ndarray | ProgressFn,
                     limits: StateLimits) -> np.ndarray:
    """(K, state_dim) predicted states -> (K,) float64 scores, -inf where rejected.

    Args:
        predicted_states: one predicted future state per candidate.
        goal: a goal point (3,) for the EE (score = minus the distance to it) or a progress
            function (K, state_dim) -> (K,).
        limits: joint limits and workspace box a state must respect.
    """
    s = np.asarray(predicted_states, dtype=np.float64)  # (K, state_dim)
    need = limits.layout.dim
    if s.ndim != 2 or s.shape[1] != need or not len(s):
        raise CandidateShapeError(f"predicted_states must be (K >= 1, {need}) for a "
                                  f"{limits.layout.n_joints}-joint arm, got {s.shape}")
    progress = goal if callable(goal) else distance_progress(goal, limits.layout)
    scores = np.asarray(progress(s), dtype=np.float64)  # (K,)
    if scores.shape != (len(s),):
        raise CandidateShapeError(f"progress function returned shape {scores.shape}, "
                                  f"expected ({len(s)},)")
    scores = np.where(np.isnan(scores), -np.inf, scores)  # a NaN score is no score
    return np.where(limits.accepted(s), scores, -np.inf)  # (K,)


def pick_best(chunks: np.ndarray, scores: np.ndarray, margin: float = 0.0
              ) -> tuple[int, np.ndarray]:
    """The chunk to execute (K, H, Da) -> (index, (H, Da)); error if all are rejected.

    Row 0 is the incumbent (the policy's greedy chunk): another candidate replaces it only
    when its score beats row 0's by more than `margin` (in score units; for the distance
    progress, metres). A predicted future is a noisy estimate, so a difference smaller than
    its error is no reason to leave the chunk the policy itself would have chosen. A rejected
    row 0 never wins: then the best accepted candidate does.
    """
    chunks, scores = np.asarray(chunks), np.asarray(scores, dtype=np.float64)
    if chunks.ndim != 3 or scores.shape != (len(chunks),) or not len(chunks):
        raise CandidateShapeError(f"chunks must be (K >= 1, H, Da) and scores (K,), got "
                                  f"{chunks.shape} and {scores.shape}")
    if not margin >= 0:
        raise ValueError(f"lookahead margin must be >= 0, got {margin}")
    if not np.isfinite(scores).any():
        raise AllCandidatesRejectedError(
            f"all {len(scores)} candidate chunks were rejected (predicted state outside the "
            f"joint limits or workspace, or no finite score); refusing to execute any of them")
    best = int(np.argmax(np.where(np.isfinite(scores), scores, -np.inf)))
    if np.isfinite(scores[0]) and scores[best] <= scores[0] + margin:
        best = 0
    return best, chunks[best]


@dataclass(frozen=True)
class LookaheadRecord:
    """What one lookahead decision cost and chose (for the run's JSON summary)."""

    k: int
    best: int
    scores: tuple[float | None, ...]  # None where rejected (JSON has no -inf)
    rejected: int
    sample_s: float
    predict_s: float
    total_s: float

    def to_dict(self) -> dict:
        return asdict(self)


class Lookahead:
    """Sample K chunks, predict, score, return the best chunk and a LookaheadRecord."""

    def __init__(self, sample: SampleFn, predict: PredictFn, goal: np.ndarray | ProgressFn,
                 limits: StateLimits, k: int, margin: float = 0.0) -> None:
        if k < 1:
            raise ValueError(f"lookahead k must be >= 1 candidates, got {k}")
        if not margin >= 0:
            raise ValueError(f"lookahead margin must be >= 0, got {margin}")
        self.sample, self.predict, self.goal, self.limits, self.k = (
            sample, predict, goal, limits, k)
        self.margin = margin

    def __call__(self, obs: Observation) -> tuple[np.ndarray, LookaheadRecord]:
        """obs -> best chunk (H, Da), record. Raises AllCandidatesRejectedError."""
        t0 = time.perf_counter()
        chunks = np.asarray(self.sample(obs, self.k))  # (K, H, Da)
        t1 = time.perf_counter()
        states = np.asarray(self.predict(obs, chunks))  # (K, state_dim)
        t2 = time.perf_counter()
        if len(chunks) != self.k or len(states) != self.k:
            raise CandidateShapeError(f"asked for {self.k} candidates, sampler gave "
                                      f"{len(chunks)} chunks and predictor {len(states)} states")
        scores = score_candidates(states, self.goal, self.limits)  # (K,)
        best, chunk = pick_best(chunks, scores, self.margin)
        record = LookaheadRecord(
            k=self.k, best=best,
            scores=tuple(float(s) if np.isfinite(s) else None for s in scores),
            rejected=int((~np.isfinite(scores)).sum()), sample_s=t1 - t0, predict_s=t2 - t1,
            total_s=time.perf_counter() - t0)
        return chunk, record
