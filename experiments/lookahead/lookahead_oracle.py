"""Lookahead scored on the simulator's true futures: can the score itself raise success?

    python experiments/lookahead/lookahead_oracle.py --policy RUN [--env mujoco:pick_place_hard]
        [--episodes 50] [--k 4] [--horizon 4] [--temperature 0.5] [--margins 0,0.01]
        [--score distance] [--jobs 2] [--when always] [--control random] [--target true]

The same decisions as `agent eval --lookahead K` (agent.lookahead_agent.LookaheadPolicy: K sampled
chunks, the greedy one first, scored by progress toward the plan's goal), except that each
candidate's future state is not the video head's prediction but the truth: the MuJoCo state
is saved, the candidate's first --horizon actions are stepped, the state is read, and the
saved state is put back. The simulator's joint limits are soft, so a true future can pass
the lookahead's joint limits (the robot's range less the bridge's margin) by a few hundredths
of a radian where the head's binned prediction never does; --joint-slack widens the limits
the oracle checks by that much, or every candidate near a limit is rejected. If lookahead
does not raise success with true futures, a better head cannot make it: the score or the
candidates are what to change. --target true goes one step further and aims the score at the
simulator's true cube and plate rather than the plan's (the policy's own reading of the
frames): if that wins where the plan's target does not, perception is what fails; if it
does not win either, the K candidates themselves are. Held-out seeds from 1,000,000, as
`agent eval` uses; one cell "off" (the policy alone) and one per margin. The last stdout
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from policies.video.lookahead import SCORES, WHEN  # noqa: E402

SEED0 = 1_000_000  # agent eval's held-out seeds


class SimFutures:
    """A lookahead predictor that steps the real simulator and rewinds it (module doc)."""

    def __init__(self, env, max_horizon: int) -> None:
        self.env = env.unwrapped
        self.head = SimpleNamespace(cfg=SimpleNamespace(max_horizon=max_horizon,
                                                        horizon=max_horizon))
        sim = self.env.sim
        self._spec = mujoco.mjtState.mjSTATE_INTEGRATION  # qpos, qvel, act, ctrl, mocap, time
        self._buf = np.empty(mujoco.mj_stateSize(sim.model, self._spec))

    def predict(self, obs, chunks: np.ndarray, horizon: int):
        sim = self.env.sim
        mujoco.mj_getState(sim.model, sim.data, self._buf, self._spec)
        saved, q_target = self._buf.copy(), sim.joint_targets
        states = []
        for chunk in chunks:
            for action in chunk[:horizon]:
                out = self.env.step(action)[0]
            states.append(out["state"])
            mujoco.mj_setState(sim.model, sim.data, saved, self._spec)
            sim.set_joint_targets(q_target, 1.0 - float(sim.data.ctrl[6]) / 0.04)  # ctrl restored
            mujoco.mj_forward(sim.model, sim.data)
        return None, np.stack(states).astype(np.float32)  # (K, state_dim)


def cell(job: tuple) -> list[bool]:
    """Successes of one (policy, env, k, margin) cell on `seeds`; k None: the policy alone."""
    import torch

    import envs
    from agent.execution import SyncBroker
    from agent.lookahead_agent import (
        EMPTY_CLOSED_FRACTION,
        HOLD_CLOSED_FRACTION,
        HOLD_RADIUS_M,
        LookaheadPolicy,
        robot_spec,
    )
    from agent.runtime import run_episode
    from agent.timing import StageTimer
    from policies.registry import load_policy

    policy_path, env_spec, k, margin, seeds, horizon, temperature, slack, score, when, \
        control, target = job
    torch.set_num_threads(1)
    policy = load_policy(policy_path)
    env = envs.make(env_spec)
    robot = robot_spec(env)
    robot = replace(robot, joint_lower=tuple(q - slack for q in robot.joint_lower),
                    joint_upper=tuple(q + slack for q in robot.joint_upper))

    class RandomChoice(LookaheadPolicy):
        """The control: the same candidates and rejections, a uniformly random score."""

        def _progress(self, states: np.ndarray) -> np.ndarray:
            return self.rng.random(len(states))  # (K,)

    class TrueTarget(LookaheadPolicy):
        """The diagnosis: the same score, aimed at the simulator's true cube and plate."""

        def _progress(self, states: np.ndarray) -> np.ndarray:
            priv = env.unwrapped.privileged()
            cube = priv["objects"][priv["goal"]["object"]]["pos"]
            plate = priv["objects"][priv["goal"]["target"]]["pos"]
            opening = priv["gripper"] / self.robot.max_gripper_opening
            held = (np.linalg.norm(cube - priv["ee_pos"]) < HOLD_RADIUS_M
                    and EMPTY_CLOSED_FRACTION < opening < HOLD_CLOSED_FRACTION)
            goal = plate if held else cube  # as plan_goal: the plan's offsets are to these
            return SCORES[self.score](goal, self.layout)(states)  # (K,)

    kind = {"random": RandomChoice, "none": LookaheadPolicy}[control]
    kind = TrueTarget if target == "true" else kind
    agent = policy if k is None else kind(
        policy, SimFutures(env, 8), robot, k, horizon, seed=seeds[0],
        temperature=temperature, margin=margin, score=score, when=when)
    broker = SyncBroker(agent)
    try:
        return [run_episode(env, broker, s, StageTimer()).success for s in seeds]
    finally:
        env.close()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--policy", required=True, type=Path, metavar="RUN")
    p.add_argument("--env", default="mujoco:pick_place_hard")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--horizon", type=int, default=4)
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--margins", default="0,0.01")
    p.add_argument("--score", choices=sorted(SCORES), default="distance",
                   help="the lookahead's progress score (policies.video.lookahead.SCORES)")
    p.add_argument("--when", choices=WHEN, default="always",
                   help="when lookahead chooses (policies.video.lookahead.WHEN)")
    p.add_argument("--control", choices=("none", "random"), default="none",
                   help="'random': choose among the accepted candidates at random, to tell "
                        "the score's effect from the effect of trying other chunks")
    p.add_argument("--target", choices=("plan", "true"), default="plan",
                   help="'true': aim the score at the simulator's true cube and plate instead "
                        "of the plan's, to tell perception errors from the score's")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--joint-slack", type=float, default=0.05, metavar="RAD",
                   help="widen the joint limits the true futures are checked against")
    args = p.parse_args(argv)
    if args.control == "random" and args.target == "true":
        p.error("--control random chooses without a score, so --target true has nothing to aim; "
                "use one or the other")
    margins = [float(m) for m in args.margins.split(",") if m]
    seeds = list(range(SEED0, SEED0 + args.episodes))
    halves = [seeds[i::args.jobs] for i in range(args.jobs)]
    cells = [("off", None, 0.0)] + [(f"k{args.k}_m{m:g}", args.k, m) for m in margins]
    jobs = [(str(args.policy), args.env, k, m, part, args.horizon, args.temperature,
             args.joint_slack, args.score, args.when, args.control, args.target)
            for _, k, m in cells for part in halves]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(cell, jobs))
    out: dict = {"policy": str(args.policy), "env": args.env, "k": args.k,
                 "horizon": args.horizon, "temperature": args.temperature,
                 "joint_slack": args.joint_slack, "score": args.score,
                 "when": args.when, "control": args.control, "target": args.target,
                 "futures": "simulated", "cells": {}}
    for i, (name, _, _) in enumerate(cells):
        ok = [s for part, res in zip(halves, results[i * args.jobs:(i + 1) * args.jobs],
                                     strict=True) for s, r in zip(part, res, strict=True) if r]
        out["cells"][name] = {"successes": len(ok), "episodes": len(seeds),
                              "failed_seeds": sorted(set(seeds) - set(ok))}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
