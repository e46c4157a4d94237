"""The camera interface: each camera captures on its own thread into a small ring of frames.

Lifecycle (explicit, like the drivers): `connect()` opens the source and waits for its first
frame (a source that cannot open, or opens and delivers nothing, is a `CameraOpenError` naming
it and what to check) -> running: a daemon thread grabs frames and keeps the newest
`RECENT_FRAMES` -> `close()`. Readers call `latest()` or `frames_after(seq)`, which take a lock
for the time of one lookup and never wait on the device, so a slow, stalled or dead camera can
never stall the arm's loop or the stream thread: its frames just stop getting newer, and the rig
(`hw_bridge.cameras.rig`) flags them stale, then dead.

The capture thread owns the device handle: it releases it itself when it exits, so `close()`
never frees a handle another thread is blocked in (a device read may block for seconds).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass

import numpy as np

from hw_bridge.errors import CameraError, CameraOpenError
from sims.robots.description import CameraSpec

log = logging.getLogger(__name__)
FIRST_FRAME_TIMEOUT_S = 5.0  # connect() waits this long for a source's first frame
ERROR_BACKOFF_S = 0.1  # after a failed grab: do not spin on a dead device
# Frames kept per camera for a stream thread that fell behind (a load stall): the next obs
# carries the newest as its image and the ones it missed in `earlier`, so a recorder loses none.
# 8 frames is 0.27 s at 30 fps; a longer stall still loses the oldest, and the rig counts them
# (`unsent`).
RECENT_FRAMES = 8


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        image: (height, width, 3) uint8 RGB at the camera's configured size.
        seq: per camera, 0 for the first frame captured after connect, +1 per frame.
        t: capture time on this host's `time.monotonic()` clock (the wire's server clock).
    """

    image: np.ndarray
    seq: int
    t: float


class Camera(ABC):
    """A camera behind the bridge. Subclasses open, grab and release one source.

    Attributes:
        spec: name, size, fps and source (`sims.robots.CameraSpec`).
        paced: True for sources that would deliver as fast as they are read (video files):
            the thread then grabs at `spec.fps`; False for live sources that deliver at their
            own rate (devices, streams), which must be read as they come or they queue up.
    """

    paced: bool = False

    def __init__(self, spec: CameraSpec) -> None:
        self.spec = spec
        self._recent: deque[Frame] = deque(maxlen=RECENT_FRAMES)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_frame: threading.Event | None = None
        self._rt_priority = 0
        self.frames = 0  # captured since connect
        self.errors = 0  # failed grabs since connect
        self.last_error = ""

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        s = self.spec
        return f"{type(self).__name__}({s.name}={s.source}@{s.width}x{s.height}:{s.fps:g})"

    # -- what a source implements -----------------------------------------------------------
    @abstractmethod
    def _open(self) -> None:
        """Open the source; raise CameraOpenError saying what to check."""

    @abstractmethod
    def _grab(self) -> tuple[np.ndarray, float]:
        """Block for the next frame: (RGB uint8 (height, width, 3), capture time on
        time.monotonic()). Raise CameraError when there is none."""

    @abstractmethod
    def _release(self) -> None:
        """Free the device; called by the capture thread as it exits."""

    # -- lifecycle ----------------------------------------------------------------------------
    def connect(self, on_frame: threading.Event | None = None,
                first_frame_timeout_s: float = FIRST_FRAME_TIMEOUT_S,
                rt_priority: int = 0) -> None:
        """Open the source, start capturing, wait for the first frame.

        Args:
            on_frame: set after every new frame (the stream thread wakes on it).
            first_frame_timeout_s: a source with no frame by then is a CameraOpenError.
            rt_priority: 1..99 runs the capture thread SCHED_FIFO (the server gives it the
                stream thread's priority, for the same reason: see `_capture_loop`).
        """
        self._rt_priority = rt_priority
        if self._thread is not None:
            raise CameraError(f"camera {self.name!r} is already connected")
        self._open()
        self._on_frame = on_frame
        self._stop.clear()
        self._thread = threading.Thread(target=self._capture_loop, daemon=True,
                                        name=f"camera-{self.name}")
        self._thread.start()
        end = time.monotonic() + first_frame_timeout_s
        while self.latest() is None and time.monotonic() < end:
            time.sleep(0.005)
        if self.latest() is None:
            why = self.last_error or "no error, just no frame"
            self.close()
            raise CameraOpenError(f"camera {self.name!r} ({self.spec.source}) opened but "
                                  f"delivered no frame within {first_frame_timeout_s:.1f} s "
                                  f"({why}); check that the source is producing video")
        log.info("camera %r connected: %s", self.name, self)

    def close(self, timeout_s: float = 1.0) -> None:
        """Stop capturing; the thread releases the device. Never blocks beyond timeout_s."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():  # blocked inside the device library: leave it, say so
                log.warning("camera %r: capture thread still blocked in a read after %.1f s; "
                            "its device is released when that read returns", self.name,
                            timeout_s)

    def latest(self) -> Frame | None:
        """The newest frame, or None before the first; never waits on the device."""
        with self._lock:
            return self._recent[-1] if self._recent else None

    def frames_after(self, seq: int) -> list[Frame]:
        """Every frame still held whose seq is greater than `seq`, oldest first (empty when
        none is). One lookup under the lock; never waits on the device."""
        with self._lock:
            return [frame for frame in self._recent if frame.seq > seq]

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Camera:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the capture thread -------------------------------------------------------------------
    def _capture_loop(self) -> None:
        if self._rt_priority:
            # Below the arm loop, but real-time: a capture thread preempted while it holds the
            # GIL would stall the arm loop behind it, and a starved one loses its pace.
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self._rt_priority))
            except (PermissionError, OSError) as exc:
                log.warning("camera %r: capture thread stays best effort: %s", self.name, exc)
        period = 1.0 / self.spec.fps
        next_t = time.perf_counter()
        try:
            while not self._stop.is_set():
                if self.paced and (delay := next_t - time.perf_counter()) > 0:
                    if self._stop.wait(delay):
                        break
                try:
                    image, t = self._grab()
                    self._store(image, t)
                except Exception as exc:  # a device library raises its own types: count, log
                    self._failed(exc)
                    self._stop.wait(ERROR_BACKOFF_S)
                next_t += period
                if next_t < time.perf_counter() - period:  # fell behind: resync, do not burst
                    next_t = time.perf_counter()
        finally:
            try:
                self._release()
            except Exception as exc:
                log.warning("camera %r: release failed: %s", self.name, exc)

    def _store(self, image: np.ndarray, t: float) -> None:
        want = (self.spec.height, self.spec.width, 3)
        if image.shape != want or image.dtype != np.uint8:
            raise CameraError(f"camera {self.name!r} delivered {image.dtype} {image.shape}, "
                              f"expected uint8 {want}")
        frame = Frame(np.ascontiguousarray(image), self.frames, t)
        with self._lock:
            self._recent.append(frame)
        self.frames += 1
        if self._on_frame is not None:
            self._on_frame.set()

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.errors in (1, 10, 100) or self.errors % 1000 == 0:
            log.error("camera %r (%s): grab failed (%d so far): %s", self.name,
                      self.spec.source, self.errors, self.last_error)
