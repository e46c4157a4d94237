"""How chunks become one action per control tick: `agent run --exec sync|naive|ensemble|rtc`.

Each mode is a broker the loop calls once per tick (`act(obs) -> action`), like
`runtime.ChunkBroker`; the loop itself knows nothing about threads or chunks.

    sync      infer when the current chunk's executed part is used up, and wait for it
    naive     infer continuously in a background thread; when a chunk arrives, switch to it at
              the step that matches the current tick (its first steps are already in the past)
    ensemble  ACT's temporal ensembling over every arrived chunk that covers the tick,
              weights exp(-m * i) with i = 0 for the oldest
    rtc       real-time chunking: like naive, but each inference is told the actions that will
              run while it is in flight (the next d ticks of the current plan, d from measured
              latency) and continues them (TokenPolicy.infer_chunk(committed=...)), so switching
              chunks does not jump
    ahead     like naive, but each inference reads the state the arm will be in when its chunk
              takes over (the EE pose rolled forward through the next d ticks of the current
              plan, envs.features.roll_forward) and its chunk starts d ticks on, not now: VLASH
              (arXiv 2512.01031); meant for a policy trained with `agent train --delay-max`
              (with `--delay-token` the policy is also told d: PolicyConfig.delay_tokens)

In the async modes the loop never waits: if no chunk covers a tick (the first ticks of an
episode, or latency beyond the chunk's horizon), it holds: zero motion, gripper unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import numpy as np

from agent.exec_stats import ExecStats
from agent.runtime import ChunkBroker
from envs.features import ACTION_LAYOUT, ActionLayout, StateLayout, roll_forward
from envs.types import Observation
from policies.base import Policy

EXEC_MODES = ("sync", "naive", "ensemble", "rtc", "ahead")
ENSEMBLE_M = 0.01  # ACT's default: nearly uniform weights, slightly favouring older chunks


def hold_action(last: np.ndarray | None, layout: ActionLayout = ACTION_LAYOUT) -> np.ndarray:
    """(Da,) float32: no end-effector motion, the gripper as last commanded."""
    action = np.zeros(layout.dim, np.float32)
    if last is not None:
        action[layout.gripper] = last[layout.gripper]
    return action


class SyncBroker(ChunkBroker):
    """`ChunkBroker` that also keeps ExecStats: inference latency and chunk-boundary jumps."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self.stats, self._chunk_id = ExecStats(), 0

    def reset(self) -> None:
        super().reset()
        self.stats.new_episode()

    def act(self, obs: Observation) -> np.ndarray:
        renew = self._chunk is None or self._next >= len(self._chunk)
        t = time.perf_counter()
        action = super().act(obs)
        if renew:
            self.stats.inference_s.append(time.perf_counter() - t)
            self._chunk_id += 1
        self.stats.executed(action, self._chunk_id)
        return action

    def close(self) -> None:
        pass


class AsyncBroker:
    """naive / ensemble / rtc / ahead (module doc): one inference always in flight in a
    worker. `state_layout` (the env's) is what ahead rolls forward; the other modes ignore it."""

    def __init__(self, policy: Policy, mode: str, latency_window: int = 5,
                 executor: Executor | None = None,
                 state_layout: StateLayout | None = None) -> None:
        if mode not in EXEC_MODES[1:]:
            raise ValueError(f"async mode must be one of {EXEC_MODES[1:]}, got {mode!r}")
        if mode == "rtc" and not hasattr(policy, "infer_chunk"):
            raise ValueError(f"--exec rtc needs a policy that can continue committed actions "
                             f"(a token policy); {policy.name!r} cannot")
        if mode == "ahead" and state_layout is None:
            raise ValueError("--exec ahead rolls the arm's state forward and needs the env's "
                             "state layout")
        self.state_layout = state_layout
        self.policy, self.mode, self.stats = policy, mode, ExecStats()
        # One worker: one inference in flight. Injectable so that a study can release each
        # inference on a chosen tick instead of the clock
        # (experiments/async_execution/rtc_emulated.py).
        self._pool = executor or ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._latency: deque[float] = deque(maxlen=latency_window)
        self._ticks: deque[float] = deque(maxlen=20)
        self._future: Future | None = None
        self._clear()

    @property
    def tick(self) -> int:
        """Control ticks since the episode began."""
        return self._tick

    def _clear(self) -> None:
        self._tick, self._last_tick_t = 0, None
        self._chunks: list[tuple[int, int, np.ndarray]] = []  # (id, start tick, (H, Da))
        self._last: np.ndarray | None = None
        self._ids = 0

    def reset(self) -> None:
        if self._future is not None:  # an inference for the last episode: let it finish
            self._future.result()
            self._future = None
        self.policy.reset()
        self.stats.new_episode()
        self._clear()

    def act(self, obs: Observation) -> np.ndarray:
        now = time.perf_counter()
        if self._last_tick_t is not None:
            self._ticks.append(now - self._last_tick_t)
        self._last_tick_t = now
        t = self._tick
        self._harvest(t)
        if self._future is None:
            self._launch(obs, t)
        action, source = self._plan(t)
        if source is None:
            self.stats.starved += 1
        self.stats.executed(action, source)
        self._last, self._tick = action, t + 1
        return action

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- inference in the worker -------------------------------------------------------------
    def _harvest(self, t: int) -> None:
        if self._future is None or not self._future.done():
            return
        start, actions, seconds = self._future.result()  # re-raises a failed inference
        self._future = None
        self._latency.append(seconds)
        self.stats.inference_s.append(seconds)
        self._ids += 1
        live = [c for c in self._chunks if c[1] + len(c[2]) > t]  # still covering a tick
        self._chunks = [*live, (self._ids, start, actions)]

    def _launch(self, obs: Observation, t: int) -> None:
        committed = None
        if self.mode in ("rtc", "ahead"):
            d = self.expected_delay_ticks()
            committed = np.stack([self._plan(t + j)[0] for j in range(d)])
            self.stats.forced_steps.append(d)
        delay = 0  # what a policy with delay tokens is told
        if self.mode == "ahead":  # plan from where the committed ticks leave the arm
            assert committed is not None and self.state_layout is not None
            most = self._delay_tokens()
            if most:  # it knows no d past its last delay token: roll no further than that
                committed = committed[:most]
                delay = len(committed)
            obs = dataclasses.replace(obs, state=roll_forward(obs.state, committed,
                                                               self.state_layout))
            t, committed = t + len(committed), None  # the chunk's first step is tick t + d
        self._future = self._pool.submit(self._infer, obs, committed, t, delay)

    def _delay_tokens(self) -> int:
        config = getattr(self.policy, "config", None)
        return int(getattr(config, "delay_tokens", 0) or 0)

    def _infer(self, obs: Observation, committed: np.ndarray | None, t: int, delay: int = 0):
        start = time.perf_counter()
        if committed is not None:
            chunk = self.policy.infer_chunk(obs, committed=committed)  # type: ignore[attr-defined]
        elif delay:
            chunk = self.policy.infer_chunk(obs, delay=delay)  # type: ignore[attr-defined]
        else:
            chunk = getattr(self.policy, "infer_chunk", self.policy.infer)(obs)
        return t, chunk.actions, time.perf_counter() - start

    def expected_delay_ticks(self) -> int:
        """Ticks until a chunk launched now can take over: ceil(latency / tick period), from
        the slowest recent inference (jitter is the risk), kept in [1, H - 1]."""
        horizon = self._chunks[-1][2].shape[0] if self._chunks else 2
        if not self._latency or not self._ticks:
            return 1
        period = float(np.median(self._ticks))
        d = math.ceil(max(self._latency) / max(period, 1e-6))
        return int(min(max(d, 1), horizon - 1))

    # -- what runs at tick t -----------------------------------------------------------------
    def _plan(self, t: int) -> tuple[np.ndarray, int | None]:
        """(action for tick t, id of the chunk it comes from or None for a hold)."""
        covering = [(cid, a[t - s]) for cid, s, a in self._chunks if 0 <= t - s < len(a)]
        if not covering:
            return hold_action(self._last), None
        if self.mode != "ensemble":
            return covering[-1][1], covering[-1][0]
        w = np.exp(-ENSEMBLE_M * np.arange(len(covering)))  # oldest first
        actions = np.stack([a for _, a in covering])
        return (w[:, None] * actions).sum(0) / w.sum(), covering[-1][0]


def make_broker(policy: Policy, mode: str,
                state_layout: StateLayout | None = None) -> SyncBroker | AsyncBroker:
    """The broker for `mode`; `state_layout` is the env's (needed by ahead)."""
    if mode not in EXEC_MODES:
        raise ValueError(f"unknown exec mode {mode!r}: choose from {list(EXEC_MODES)}")
    if mode == "sync":
        return SyncBroker(policy)
    return AsyncBroker(policy, mode, state_layout=state_layout)
