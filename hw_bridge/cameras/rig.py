"""The cameras a server streams beside its driver's own: connected together, sampled by the stream
thread, judged fresh, stale or dead.

Each sample gives every camera's **newest** frame (what a policy acts on) and, separately, the
frames it captured since the previous sample that were never sent and are still in its ring
(`earlier`, oldest first: what a stream thread that stalled missed), so a recorder gets every
frame while a controller never waits behind old ones. A frame that left the ring before it
could be sent is counted (`unsent`): the only loss. The newest frame is **stale** when it is
older than `stale_periods` of its camera's periods: it still goes out, flagged, with its true
capture time. A camera whose newest frame is older than `timeout_s` is **dead**: logged once as
an error on the robot side, reported in `status.cameras`, and flagged `dead` on the wire; the
workstation's env ends the episode on it. Neither ever waits for the camera.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hw_bridge.cameras.base import Camera, Frame
from hw_bridge.errors import CameraError

log = logging.getLogger(__name__)
# What one `earlier` entry costs on the wire beyond its pixels (msgpack keys, seq, t, the array
# header), counted against the byte budget so the whole obs stays under the client's limit.
EARLIER_ENTRY_OVERHEAD = 256


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
        # Per camera: every frame below `_owed` was sent or counted lost (None before the first
        # sample); `_sent_newest` holds the seqs at or above it already sent as the newest image
        # (a byte-budget cut can leave older frames owed behind a newest that went out).
        self._owed: dict[str, int | None] = {name: None for name in self.cameras}
        self._sent_newest: dict[str, set[int]] = {name: set() for name in self.cameras}
        # Frames that left the ring before the stream thread sent them (it stalled for longer
        # than the ring holds): counted per camera so a loss is seen on the robot side too.
        self.unsent: dict[str, int] = {name: 0 for name in self.cameras}

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

    def _judge(self, cam: Camera, age: float) -> tuple[str, str]:
        """Judged on the camera's newest frame: dead when the camera went silent, stale when
        the image a policy would act on is older than the stale limit."""
        f = self.freshness
        if age > f.timeout_s:
            why = f": {cam.last_error}" if cam.last_error else ""
            return "dead", (f"camera {cam.name!r} ({cam.spec.source}): no frame for "
                            f"{age:.2f} s (limit {f.timeout_s:g} s){why}")
        if age > f.stale_periods / cam.spec.fps:
            return "stale", (f"camera {cam.name!r}: newest frame is {1e3 * age:.0f} ms old "
                             f"(> {f.stale_periods:g} periods at {cam.spec.fps:g} fps)")
        return "ok", ""

    def sample(self, earlier_max_bytes: float = float("inf")) -> tuple[
            dict[str, np.ndarray], dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        """Newest image of every camera, its wire metadata, and the frames owed (PROTOCOL.md
        section 7): `(images, cameras, earlier)`.

        `earlier[name]` lists the frames never sent that are still in the camera's ring, oldest
        first, all older than the newest; a camera with none is absent. Their images together
        stay within `earlier_max_bytes` (the stream's message limit less the newest images): a
        frame that does not fit stays owed, oldest first, and goes out with a later sample if it
        is still in the ring then. Called by the stream thread only; logs each change of a
        camera's state once.
        """
        images: dict[str, np.ndarray] = {}
        meta: dict[str, dict[str, Any]] = {}
        earlier: dict[str, list[dict[str, Any]]] = {}
        now = time.monotonic()
        budget = earlier_max_bytes
        for name, cam in self.cameras.items():
            newest, owed = self._take(name, cam)
            fit = []
            for frame in owed:  # oldest first: they leave the ring first
                cost = frame.image.nbytes + EARLIER_ENTRY_OVERHEAD
                if cost > budget:
                    break
                budget -= cost
                fit.append(frame)
            self._mark_sent(name, newest, fit, owed)
            state, why = self._judge(cam, now - newest.t)
            if state != self._states[name]:
                level = {"ok": logging.INFO, "stale": logging.WARNING, "dead": logging.ERROR}
                log.log(level[state], "%s", why or f"camera {name!r} delivers again")
                self._states[name] = state
            images[name] = newest.image
            meta[name] = {"seq": newest.seq, "t": newest.t, "stale": state != "ok",
                          "state": state, "reason": why}
            if fit:
                earlier[name] = [{"seq": f.seq, "t": f.t, "image": f.image} for f in fit]
        return images, meta, earlier

    def _take(self, name: str, cam: Camera) -> tuple[Frame, list[Frame]]:
        """The camera's newest frame and the older ones owed still in its ring (oldest first);
        counts the owed ones that already left the ring as `unsent`."""
        owed = self._owed[name]
        held = cam.frames_after(owed - 1) if owed is not None else []
        newest = held[-1] if held else cam.latest()
        if newest is None:  # connect() waited for one; only a bug gets here
            raise CameraError(f"camera {name!r} has no frame")
        if owed is None:  # the first sample: the stream starts at the newest frame
            self._owed[name] = newest.seq
            return newest, []
        sent = self._sent_newest[name]
        if held and held[0].seq > owed:  # owed frames fell out of the ring before a sample
            gone = range(owed, held[0].seq)
            self.unsent[name] += len(gone) - sum(s in gone for s in sent)
            self._owed[name] = held[0].seq
        return newest, [f for f in held[:-1] if f.seq not in sent]

    def _mark_sent(self, name: str, newest: Frame, fit: list[Frame], owed: list[Frame]) -> None:
        sent = self._sent_newest[name]
        sent.add(newest.seq)
        # Everything below the first frame the budget left owed is sent (or was counted lost).
        floor = owed[len(fit)].seq if len(fit) < len(owed) else newest.seq + 1
        self._owed[name] = max(self._owed[name], floor)
        sent.difference_update([s for s in sent if s < self._owed[name]])

    def health(self) -> dict[str, dict[str, Any]]:
        """Per camera, for `status`: state, why, frames and errors counted, newest age."""
        out = {}
        now = time.monotonic()
        for name, cam in self.cameras.items():
            frame = cam.latest()
            age = now - frame.t if frame is not None else float("inf")
            state, why = self._judge(cam, age)
            out[name] = {"state": state, "reason": why, "source": cam.spec.source,
                         "fps": cam.spec.fps, "frames": cam.frames, "errors": cam.errors,
                         "unsent": self.unsent[name],
                         "last_error": cam.last_error,
                         "age_ms": round(1e3 * age, 1) if frame is not None else None}
        return out
