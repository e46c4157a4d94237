"""Per-stage latency bookkeeping for the control loop."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


class StageTimer:
    """Collects durations (seconds) per named stage; summarises them in milliseconds."""

    def __init__(self) -> None:
        self._samples: dict[str, list[float]] = defaultdict(list)

    def add(self, **durations_s: float) -> None:
        for stage, seconds in durations_s.items():
            self._samples[stage].append(seconds)

    def total_s(self, stage: str) -> float:
        return float(np.sum(self._samples.get(stage, [])))

    def samples_s(self, stage: str) -> np.ndarray:
        """Every duration of `stage` so far, in the order they were added."""
        return np.asarray(self._samples.get(stage, []), dtype=np.float64)

    def summary_ms(self) -> dict[str, dict[str, float]]:
        """{stage: {"p50": ms, "p99": ms, "mean": ms}} over every sample so far."""
        out = {}
        for stage, samples in self._samples.items():
            ms = np.asarray(samples) * 1e3
            out[stage] = {"p50": round(float(np.percentile(ms, 50)), 3),
                          "p99": round(float(np.percentile(ms, 99)), 3),
                          "mean": round(float(ms.mean()), 3)}
        return out
