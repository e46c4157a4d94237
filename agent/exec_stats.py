"""What the execution brokers observe: inference latency, holds, and action jumps.

"Jerk" here is the largest change between consecutive executed actions, over the motion
dimensions only (a gripper closing is a step by design). Jumps are split by where they
happen: at a chunk boundary (the action comes from another chunk than the previous one, or
from/to a hold) or inside one chunk, which is the policy's own smoothness to compare against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.features import ACTION_LAYOUT


def _stats(values: list[float], digits: int = 4) -> dict[str, float] | None:
    if not values:
        return None
    v = np.asarray(values)
    return {"mean": round(float(v.mean()), digits), "p99": round(float(np.percentile(v, 99)),
                                                                  digits),
            "max": round(float(v.max()), digits), "n": len(values)}


@dataclass
class ExecStats:
    inference_s: list[float] = field(default_factory=list)
    boundary_jumps: list[float] = field(default_factory=list)
    within_jumps: list[float] = field(default_factory=list)
    forced_steps: list[int] = field(default_factory=list)  # rtc: committed steps per inference
    starved: int = 0  # ticks with no chunk covering them (held)
    _last: np.ndarray | None = None
    _source: Any = None

    def new_episode(self) -> None:
        self._last, self._source = None, None

    def executed(self, action: np.ndarray, source: Any) -> None:
        if self._last is not None:
            motion = ACTION_LAYOUT.motion
            jump = float(np.abs(action[motion] - self._last[motion]).max())
            same = source is not None and source == self._source
            (self.within_jumps if same else self.boundary_jumps).append(jump)
        self._last, self._source = np.asarray(action, np.float32), source

    def summary(self) -> dict[str, Any]:
        ms = [s * 1e3 for s in self.inference_s]
        out: dict[str, Any] = {
            "inference_ms": ({"p50": round(float(np.percentile(ms, 50)), 2),
                              "p99": round(float(np.percentile(ms, 99)), 2), "n": len(ms)}
                             if ms else None),
            "jerk": {"boundary": _stats(self.boundary_jumps),
                     "within_chunk": _stats(self.within_jumps),
                     "max": round(max(self.boundary_jumps + self.within_jumps, default=0.0), 4)},
            "held_ticks": self.starved,
        }
        if self.forced_steps:
            out["rtc_forced_steps"] = {"mean": round(float(np.mean(self.forced_steps)), 2),
                                       "max": int(max(self.forced_steps))}
        return out
