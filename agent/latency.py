"""`--simulate-latency MS|MEAN:JITTER`: slow every inference down, for experiments without a
slow model. The delay is a sleep before the policy runs, so it costs wall time (which is what
the control loop sees) but no CPU."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from envs.types import ActionChunk, Observation
from policies.base import Policy


@dataclass(frozen=True)
class LatencySpec:
    """Added delay per inference: uniform in [mean - jitter, mean + jitter] ms, floored at 0."""

    mean_ms: float = 0.0
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.mean_ms < 0 or self.jitter_ms < 0:
            raise ValueError(f"latency must be >= 0 ms, got mean {self.mean_ms} jitter "
                             f"{self.jitter_ms}")

    @classmethod
    def parse(cls, text: str) -> LatencySpec:
        """"50" -> 50 ms; "50:10" -> 50 +- 10 ms."""
        try:
            parts = [float(x) for x in text.split(":")]
        except ValueError:
            parts = []
        if len(parts) not in (1, 2):
            raise ValueError(f"latency {text!r}: expected MS or MEAN:JITTER in milliseconds, "
                             f"e.g. 50 or 100:20")
        return cls(*parts)

    def sample_s(self, rng: np.random.Generator) -> float:
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.mean_ms + jitter) / 1e3


class DelayedPolicy:
    """Wraps a policy; every `infer`/`infer_chunk` first sleeps a sampled delay."""

    def __init__(self, policy: Policy, latency: LatencySpec, seed: int = 0) -> None:
        self.policy, self.latency = policy, latency
        self.name = policy.name
        self._rng = np.random.default_rng(seed)
        if hasattr(policy, "infer_chunk"):
            self.infer_chunk = self._infer_chunk

    def reset(self) -> None:
        self.policy.reset()

    def infer(self, obs: Observation) -> ActionChunk:
        time.sleep(self.latency.sample_s(self._rng))
        return self.policy.infer(obs)

    def _infer_chunk(self, obs: Observation, committed: np.ndarray | None = None) -> ActionChunk:
        time.sleep(self.latency.sample_s(self._rng))
        return self.policy.infer_chunk(obs, committed=committed)  # type: ignore[attr-defined]
