"""The closed-loop episode the generalist studies share (push_progress.py, reach_target.py):
sync, the first `execute` actions of each chunk, torch on one thread, held-out seeds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import envs
from envs.types import Observation
from policies.model.token_policy import TokenPolicy

HELD_OUT = 1_000_000  # agent eval's first seed


def load(run: Path, spec: str) -> tuple[TokenPolicy, Any]:
    torch.set_num_threads(1)
    return TokenPolicy.load(run), envs.make(spec)


@dataclass
class Episode:
    start_info: dict  # the info of env.reset: where everything was at the start
    obs: dict  # the last observation and info
    info: dict
    steps: int


def episode(policy: TokenPolicy, env: Any, seed: int,
            on_step: Callable[[dict, dict], None] | None = None) -> Episode:
    """Run one episode from `env.reset(seed)`, calling `on_step(obs, info)` after every step."""
    obs, info = env.reset(seed=seed)
    policy.reset()
    start, done, steps = info, False, 0
    while not done:
        chunk = policy.infer(Observation.from_env(obs, info)).actions
        for a in chunk[: policy.config.execute]:
            obs, _, term, trunc, info = env.step(a)
            steps += 1
            done = term or trunc
            if on_step is not None:
                on_step(obs, info)
            if done:
                break
    return Episode(start, obs, info, steps)
