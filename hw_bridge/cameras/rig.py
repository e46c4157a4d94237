"""The cameras a server streams beside its driver's own: connected together, sampled by the stream
thread, judged fresh, stale or dead.

A frame is **stale** when it is older than `stale_periods` of its camera's periods at the moment
it is sent: it still goes out, flagged, with its true capture time (frames go out in capture
order; after a stall the stream catches up through each camera's ring of recent frames, so a
late frame is flagged stale rather than skipped). A camera whose newest frame is older than
`timeout_s` is **dead**: logged once as an error on the robot side, reported in
`status.cameras`, and flagged `dead` on the wire; the workstation's env ends the episode on it.
Neither ever waits for the camera.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hw_bridge.cameras.base import Camera
from hw_bridge.errors import CameraError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Freshness:
    """When a camera's newest frame counts as stale, and when the camera counts as dead.

    Attributes:
        stale_periods: a frame older than this many camera periods (1 / fps) is stale.
        timeout_s: no new frame for this long: the camera is dead (an error).
    """

    stale_periods: float = 3.0
    timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if not (self.stale_periods >= 1.0 and self.timeout_s > 0):
            raise ValueError(f"stale_periods must be >= 1 and timeout_s > 0, got "
                             f"{self.stale_periods}, {self.timeout_s}")


class CameraRig:
    """Cameras attached to a server. `new_frame` is set whenever any of them captures."""

    def __init__(self, cameras: Sequence[Camera], freshness: Freshness | None = None) -> None:
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise CameraError(f"camera names must be unique, got {names}")
        self.cameras = {c.name: c for c in cameras}
        self.freshness = freshness or Freshness()
        self.new_frame = threading.Event()
        self._states: dict[str, str] = {name: "ok" for name in self.cameras}
        # Frames replaced in the slot before the stream thread sent them (it ran late by more
        # than a camera period): counted per camera so a drop is seen on the robot side too.
        self._sent: dict[str, int] = {name: -1 for name in self.cameras}
        self.unsent: dict[str, int] = {name: 0 for name in self.cameras}
        self.backlog = False  # the last sample left newer frames unsent: send them at once

    def __bool__(self) -> bool:
        return bool(self.cameras)

    def connect(self, rt_priority: int = 0) -> None:
        """Connect every camera (capture threads SCHED_FIFO at `rt_priority` if > 0); on the
        first failure close the ones opened and re-raise."""
        opened: list[Camera] = []
        try:
            for cam in self.cameras.values():
                cam.connect(on_frame=self.new_frame, rt_priority=rt_priority)
                opened.append(cam)
        except Exception:
            for cam in opened:
                cam.close()
            raise

    def close(self) -> None:
        for cam in self.cameras.values():
            cam.close()

    def sizes(self) -> dict[str, tuple[int, int]]:
        return {n: (c.spec.height, c.spec.width) for n, c in self.cameras.items()}

    def fps(self) -> dict[str, float]:
        return {n: c.spec.fps for n, c in self.cameras.items()}

    def max_fps(self) -> float:
        return max((c.spec.fps for c in self.cameras.values()), default=0.0)

    def _judge(self, cam: Camera, age: float, newest_age: float) -> tuple[str, str]:
        """Dead by the newest frame's age (the camera went silent), stale by the age of the
        frame being sent (it may be an older one, sent in order after a stall)."""
        f = self.freshness
        if newest_age > f.timeout_s:
            why = f": {cam.last_error}" if cam.last_error else ""
            return "dead", (f"camera {cam.name!r} ({cam.spec.source}): no frame for "
                            f"{newest_age:.2f} s (limit {f.timeout_s:g} s){why}")
        if age > f.stale_periods / cam.spec.fps:
            return "stale", (f"camera {cam.name!r}: newest frame is {1e3 * age:.0f} ms old "
                             f"(> {f.stale_periods:g} periods at {cam.spec.fps:g} fps)")
        return "ok", ""

    def sample(self) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Newest image of every camera and its wire metadata (PROTOCOL.md section 7).

        Called by the stream thread only; logs each change of a camera's state once.
        """
        images: dict[str, np.ndarray] = {}
        meta: dict[str, dict[str, Any]] = {}
        now = time.monotonic()
        backlog = False
        for name, cam in self.cameras.items():
            # The next frame not yet sent, in order: a stream thread that fell behind catches
            # up through the camera's ring (base.RECENT_FRAMES), but only through frames still
            # fresh, so a policy never acts on an image older than the stale limit while a newer
            # one waits; older ones are skipped and counted (`unsent`). Else the newest again.
            fresh_since = now - self.freshness.stale_periods / cam.spec.fps
            frame = (cam.next_after(self._sent[name], fresh_since) if self._sent[name] >= 0
                     else cam.latest())
            if frame is None:  # connect() waited for one; only a bug gets here
                raise CameraError(f"camera {name!r} has no frame")
            newest = cam.latest() or frame
            backlog |= newest.seq > frame.seq
            state, why = self._judge(cam, now - frame.t, now - newest.t)
            if state != self._states[name]:
                level = {"ok": logging.INFO, "stale": logging.WARNING, "dead": logging.ERROR}
                log.log(level[state], "%s", why or f"camera {name!r} delivers again")
                self._states[name] = state
            if self._sent[name] >= 0 and frame.seq > self._sent[name] + 1:
                self.unsent[name] += frame.seq - self._sent[name] - 1
            self._sent[name] = max(self._sent[name], frame.seq)
            images[name] = frame.image
            meta[name] = {"seq": frame.seq, "t": frame.t, "stale": state != "ok",
                          "state": state, "reason": why}
        self.backlog = backlog
        if backlog:  # more frames wait: wake the stream thread again for the next one
            self.new_frame.set()
        return images, meta

    def health(self) -> dict[str, dict[str, Any]]:
        """Per camera, for `status`: state, why, frames and errors counted, newest age."""
        out = {}
        now = time.monotonic()
        for name, cam in self.cameras.items():
            frame = cam.latest()
            age = now - frame.t if frame is not None else float("inf")
            state, why = self._judge(cam, age, age)
            out[name] = {"state": state, "reason": why, "source": cam.spec.source,
                         "fps": cam.spec.fps, "frames": cam.frames, "errors": cam.errors,
                         "unsent": self.unsent[name],
                         "last_error": cam.last_error,
                         "age_ms": round(1e3 * age, 1) if frame is not None else None}
        return out
