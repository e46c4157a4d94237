"""`agent run --lookahead K`: execute the best of K sampled chunks, judged by imagined futures.

Each decision (policies.video.lookahead.Lookahead): the token policy samples K chunks
(TokenPolicy.sample_chunks: row 0 greedy, the rest sampled), the video head predicts the state
`horizon` steps after each chunk starts (policies.video.imagine.FuturePredictor), a predicted state
outside the arm's joint limits or the workspace box is rejected (StateLimits from the robot's
spec and the bridge's safety limits), the rest are scored by plan progress and the best chunk
runs (the greedy one unless another beats it by more than `margin`, metres). Every candidate
rejected is an error (AllCandidatesRejectedError), never a fallback.

Plan progress: the runtime has no privileged state (a real arm has none), so the goal point
comes from the policy's own plan tokens (policies.model.plan_targets.PLAN_GOAL, the greedy chunk's
plan):
the current EE position plus the plan's named-cube offset while the cube is not held, plus its
named-plate offset once it is (held: the plan puts the cube at the tool and the fingers are
closed on something, not all the way). Progress (`score`): "distance", minus the predicted EE's
distance to that point; or "funnel", minus its distance to a point that rises above the goal
with the EE's remaining xy error, as the scripted expert comes down onto cube and plate
(policies.video.lookahead.funnel_progress).

When (`when`): "always", every chunk; or "missed-grasp", the policy alone until its fingers
close on nothing, then lookahead for the rest of the episode. The policy's failures on the
hard variant are repeated grasps at a misperceived cube (experiments/lookahead/NOTE.md);
lookahead from the first step trades too many of its successes for the different chunks it
tries.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from envs.features import ACTION_LAYOUT, StateLayout
from envs.types import ActionChunk, Observation
from policies.model.plan_targets import PLAN_GOAL
from policies.model.token_policy import TokenPolicy
from policies.video.imagine import FuturePredictor
from policies.video.lookahead import SCORES, WHEN, Lookahead, LookaheadRecord, StateLimits
from sims.base import RobotSpec

# "Holding the cube": the plan puts it within this of the tool (policies.scripted's `held`
# test uses the same 3 cm) and the fingers are closed past this fraction of fully open (a
# 4 cm cube stops an 8 cm gripper at half).
HOLD_RADIUS_M = 0.03
HOLD_CLOSED_FRACTION = 0.9
# Fingers closed past this fraction of fully open hold nothing (the 4 cm cube stops them at
# half): a grasp that closes this far has missed.
EMPTY_CLOSED_FRACTION = 0.25


class Prediction(NamedTuple):
    """The chosen chunk's predicted frame, for side-by-side videos (agent.episode_video)."""

    serial: int  # increases with every decision
    frame: np.ndarray  # (H, W, 3) uint8, the head camera's frame `horizon` steps ahead
    horizon: int


def plan_goal(state: np.ndarray, plan: np.ndarray, layout: StateLayout, max_opening: float
              ) -> np.ndarray:
    """(Ds,) state laid out as `layout` and (plan_dim,) decoded plan -> (3,) goal point for
    the EE (module doc)."""
    goal = plan[PLAN_GOAL]  # (7,) cube offset (3), plate offset (3), grasp turn (1)
    ee, opening = state[layout.ee_pos], float(state[layout.gripper_opening])
    closed_on_cube = EMPTY_CLOSED_FRACTION < opening / max_opening < HOLD_CLOSED_FRACTION
    held = np.linalg.norm(goal[:3]) < HOLD_RADIUS_M and closed_on_cube
    return ee + (goal[3:6] if held else goal[:3])  # (3,)


def robot_spec(env: Any) -> RobotSpec:
    """The arm behind an env: a sim's (TableTopEnv.sim.robot) or a bridge's (BridgeEnv.robot)."""
    u = env.unwrapped
    robot = getattr(u, "robot", None) or getattr(getattr(u, "sim", None), "robot", None)
    if not isinstance(robot, RobotSpec):
        raise ValueError(f"--lookahead needs the robot's joint limits, and {type(u).__name__} "
                         f"exposes no RobotSpec (as .robot or .sim.robot)")
    return robot


class LookaheadPolicy:
    """A TokenPolicy whose chunks are chosen by lookahead; `records` keeps every decision."""

    name = "token+lookahead"

    def __init__(self, policy: TokenPolicy, predictor: FuturePredictor, robot: RobotSpec,
                 k: int, horizon: int | None = None, seed: int = 0, temperature: float = 1.0,
                 keep_frames: bool = False, margin: float = 0.0, score: str = "distance",
                 when: str = "always") -> None:
        if score not in SCORES:
            raise ValueError(f"unknown lookahead score {score!r}; choose one of {sorted(SCORES)}")
        if when not in WHEN:
            raise ValueError(f"unknown lookahead trigger {when!r}; choose one of {list(WHEN)}")
        if k < 2:
            raise ValueError(f"--lookahead K needs K >= 2 candidates to choose among, got {k}")
        if not policy.config.plan_dim:
            raise ValueError("--lookahead scores candidates by the policy's plan tokens (where "
                             "the named cube and plate are); this policy has none (plan_dim 0)")
        self.layout = StateLayout.for_robot(robot)
        policy.check_layouts(self.layout, ACTION_LAYOUT, f"robot {robot.name!r}")
        self.policy, self.predictor, self.robot = policy, predictor, robot
        top = predictor.head.cfg.max_horizon
        self.horizon = predictor.head.cfg.horizon if horizon is None else horizon
        if not 1 <= self.horizon <= top:
            raise ValueError(f"lookahead horizon must be in 1..{top} (the head's max_horizon), "
                             f"got {self.horizon}")
        self.rng = np.random.default_rng(seed)
        self.temperature, self.keep_frames, self.score = temperature, keep_frames, score
        self.when, self.engaged, self.engagements, self.passed = when, when == "always", 0, 0
        self.records: list[LookaheadRecord] = []
        self.prediction: Prediction | None = None
        self._obs: Observation | None = None
        self._logits = None  # (K, G, G, codebook_size) of the last decision's candidates
        self.lookahead = Lookahead(self._sample, self._predict, self._progress,
                                   StateLimits.from_robot(robot), k, margin)

    def _sample(self, obs: Observation, k: int) -> np.ndarray:
        return self.policy.sample_chunks(obs, k, self.rng, self.temperature)  # (K, H, Da)

    def _predict(self, obs: Observation, chunks: np.ndarray) -> np.ndarray:
        self._logits, states = self.predictor.predict(obs, chunks, self.horizon)
        return states  # (K, Ds)

    def _progress(self, states: np.ndarray) -> np.ndarray:
        plan = self.policy.last_plan  # (1, plan_dim): the greedy chunk's, set by _sample
        goal = plan_goal(self._obs.state, plan[0], self.layout, self.robot.max_gripper_opening)
        return SCORES[self.score](goal, self.layout)(states)  # (K,)

    def reset(self) -> None:
        self.policy.reset()
        self.prediction = None
        self.engaged = self.when == "always"

    def _engage(self, obs: Observation) -> bool:
        """Whether this decision is lookahead's (`when`); a missed grasp engages it for good."""
        if not self.engaged:
            opening = float(obs.state[self.layout.gripper_opening])
            if opening < EMPTY_CLOSED_FRACTION * self.robot.max_gripper_opening:
                self.engaged, self.engagements = True, self.engagements + 1
        return self.engaged

    def infer(self, obs: Observation) -> ActionChunk:
        return ActionChunk(self.infer_chunk(obs).actions[: self.policy.config.execute])

    def infer_chunk(self, obs: Observation, committed: np.ndarray | None = None) -> ActionChunk:
        """The best candidate's whole chunk. Raises AllCandidatesRejectedError."""
        if committed is not None:
            raise ValueError("lookahead chooses among freshly sampled chunks and cannot "
                             "continue committed actions (--exec rtc); use sync, naive or "
                             "ensemble")
        if not self._engage(obs):
            self.passed += 1
            return self.policy.infer_chunk(obs)
        self._obs = obs
        chunk, record = self.lookahead(obs)
        self.records.append(record)
        if self.keep_frames:
            frame = self.predictor.render(self._logits[record.best:record.best + 1])[0]
            serial = 0 if self.prediction is None else self.prediction.serial + 1
            self.prediction = Prediction(serial, frame, self.horizon)
        return ActionChunk(np.asarray(chunk, np.float32))

    def latest_prediction(self) -> Prediction | None:
        return self.prediction

    def summary(self, loop_hz: float) -> dict[str, Any]:
        """The run summary's "lookahead" object: what choosing cost and what it rejected."""
        ms = np.array([r.total_s for r in self.records]) * 1e3

        def pct(q: float, values: np.ndarray = ms) -> float | None:
            return round(float(np.percentile(values, q)), 2) if len(values) else None

        return {
            "k": self.lookahead.k, "horizon": self.horizon, "margin": self.lookahead.margin,
            "score": self.score, "when": self.when,
            "decisions": len(self.records), "policy_alone_decisions": self.passed,
            "engaged_episodes": self.engagements if self.when != "always" else None,
            "latency_ms": {"p50": pct(50), "p99": pct(99)},
            "predict_ms_p50": pct(50, np.array([r.predict_s for r in self.records]) * 1e3),
            "candidates": len(self.records) * self.lookahead.k,
            "rejected": int(sum(r.rejected for r in self.records)),
            "greedy_chosen": (round(float(np.mean([r.best == 0 for r in self.records])), 3)
                              if self.records else None),
            "loop_hz": loop_hz,
        }
