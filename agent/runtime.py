"""The control loop: observe -> policy -> act -> step, at a fixed rate.

Deliberately small (openpi's runtime is the model): the loop knows nothing about chunking,
recording or rendering. A `ChunkBroker` turns a chunk-producing policy into one action per
tick; recorders hook in through `on_step`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from agent.timing import StageTimer
from envs.types import ActionChunk, Observation
from policies.base import Policy

StepHook = Callable[[Observation, np.ndarray, dict], None]


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    success: bool
    steps: int
    duration_s: float  # wall time from reset to the last step, pacing included
    deadline_misses: int
    failure: str | None = None
    task: str | None = None  # info["task"] where the env names one (a Meta-World set's pick)


class ChunkBroker:
    """Serves a policy's action chunks one action per control tick."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._chunk: ActionChunk | None = None
        self._next = 0

    def reset(self) -> None:
        self.policy.reset()
        self._chunk, self._next = None, 0

    def act(self, obs: Observation) -> np.ndarray:
        if self._chunk is None or self._next >= len(self._chunk):
            self._chunk, self._next = self.policy.infer(obs), 0
        action = self._chunk.actions[self._next]
        self._next += 1
        return action


def run_episode(env: gym.Env, agent: ChunkBroker, seed: int, timer: StageTimer,
                rate_hz: float = 0.0, on_step: StepHook | None = None) -> EpisodeResult:
    """Run one episode. rate_hz > 0 paces ticks on time.monotonic(); 0 runs flat out."""
    obs, info = env.reset(seed=seed)
    agent.reset()
    period = 1.0 / rate_hz if rate_hz > 0 else 0.0
    start = next_tick = time.monotonic()
    steps = misses = 0
    terminated = truncated = False
    while not (terminated or truncated):
        t0 = time.perf_counter()
        observation = Observation.from_env(obs, info)
        action = agent.act(observation)
        t1 = time.perf_counter()
        obs, _, terminated, truncated, info = env.step(action)
        sim = env.unwrapped.last_timing  # type: ignore[attr-defined]
        if on_step is not None:
            on_step(observation, info["applied_action"], info)
        timer.add(policy=t1 - t0, sim=sim.sim_s, render=sim.render_s,
                  total=time.perf_counter() - t0)
        steps += 1
        if period:
            next_tick += period
            slack = next_tick - time.monotonic()
            if slack > 0:
                time.sleep(slack)
            else:  # late: count it and re-anchor, rather than bursting to catch up
                misses += 1
                next_tick = time.monotonic()
    return EpisodeResult(seed, bool(terminated), steps, time.monotonic() - start, misses,
                         info.get("failure"), info.get("task"))
