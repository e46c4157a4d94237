"""The observation stream: state and camera frames published at a fixed rate on a PUB socket.

PUB because observations are a broadcast of the newest state, not a conversation: a slow or
absent subscriber must never slow the arm, so the socket never blocks (a full queue drops the
frame for that subscriber) and its send high-water mark is tiny (`SNDHWM`): an old frame is
worth nothing once a newer one exists. Subscribers set CONFLATE for the same reason.

With cameras attached (`CameraRig`), a frame also goes out as soon as any camera captures a new
image (at most one per half period of the fastest camera), so every captured image is sent
once, at its capture rate, instead of aliasing against the stream's own clock. The state-only
rhythm is then "a frame at least every stream period". A frame carries each camera's newest
image; images captured while this thread was stalled ride along in `earlier` (bounded so the
message stays under the client's `wire.STREAM_MAX_BYTES`), so no catch-up sends are needed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import numpy as np
import zmq

from hw_bridge import wire
from hw_bridge.cameras.rig import CameraRig
from hw_bridge.controller import ArmController

log = logging.getLogger(__name__)
STREAM_SNDHWM = 4  # frames queued per subscriber before the newest are dropped for it
# Room kept in a frame for everything but images (state, setpoint, camera metadata, sim_only).
STREAM_MARGIN_BYTES = 1024 * 1024


class Streamer(threading.Thread):
    """Publishes `obs` messages (see PROTOCOL.md) until `stop` is set."""

    def __init__(self, pub: zmq.Socket, controller: ArmController, hz: float,
                 stop: threading.Event, rt_priority: int = 0,
                 rig: CameraRig | None = None) -> None:
        super().__init__(name="bridge-stream", daemon=True)
        self.pub = pub
        self.pub.setsockopt(zmq.SNDHWM, STREAM_SNDHWM)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.controller = controller
        self.period = 1.0 / hz
        self.stop_event = stop
        self.seq = 0
        self.errors = 0
        self.dropped = 0
        self.rt_priority = rt_priority
        self.rig = rig or CameraRig([])
        # A new image may go out this soon after the previous frame: under one camera period,
        # so no image is replaced before it is sent, and bounded, so N cameras cannot flood.
        self.min_gap = 0.5 / self.rig.max_fps() if self.rig else 0.0
        # `earlier` gets what the newest images leave of a client's message limit: a bigger
        # frame would be refused by every subscriber (MAXMSGSIZE), ignoring `earlier` or not.
        sizes = {**controller.driver.cameras, **self.rig.sizes()}
        newest = sum(3 * h * w for h, w in sizes.values())
        self.earlier_max_bytes = wire.STREAM_MAX_BYTES - STREAM_MARGIN_BYTES - newest
        if self.earlier_max_bytes < 0:
            log.error("the newest camera images alone are %.1f MiB, over the stream's %.0f MiB "
                      "message limit less %.0f MiB: subscribers will refuse every frame",
                      newest / 2**20, wire.STREAM_MAX_BYTES / 2**20,
                      STREAM_MARGIN_BYTES / 2**20)

    def run(self) -> None:
        if self.rt_priority:
            # Below the arm loop, but real-time too: a preempted stream thread holding the GIL
            # would otherwise stall the arm loop behind it (priority inversion via the GIL).
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.rt_priority))
            except (PermissionError, OSError) as exc:
                log.warning("stream thread stays best effort: %s", exc)
        if self.rig:
            self._run_with_cameras()
        else:
            next_t = time.perf_counter()
            while not self.stop_event.is_set():
                self._publish()
                next_t += self.period
                delay = next_t - time.perf_counter()
                if delay < -self.period:  # fell behind (rendering slower than the rate): resync
                    next_t = time.perf_counter()
                elif delay > 0:
                    self.stop_event.wait(delay)
        self.controller.driver.release_stream()
        self.pub.close(linger=0)

    def _run_with_cameras(self) -> None:
        new = self.rig.new_frame
        next_t = last = time.perf_counter()
        while not self.stop_event.is_set():
            now = time.perf_counter()
            if now >= next_t or (new.is_set() and now - last >= self.min_gap):
                new.clear()  # before sampling: an image captured meanwhile sets it again
                self._publish()
                last, next_t = now, now + self.period
                continue
            if new.is_set():  # an image waits for the gap to pass
                self.stop_event.wait(min(next_t, last + self.min_gap) - now)
            else:
                new.wait(next_t - now)

    def _publish(self) -> None:
        try:
            self.pub.send(wire.encode(self.frame()), zmq.NOBLOCK)
        except zmq.Again:  # PUB drops at the HWM itself; this counts any that surface
            self.dropped += 1
        except Exception as exc:  # a failed frame must not end the stream: count and log
            self.errors += 1
            if self.errors in (1, 10, 100) or self.errors % 1000 == 0:
                log.error("observation frame %d failed (%d so far): %s", self.seq, self.errors,
                          exc)
        self.seq += 1

    def frame(self) -> dict[str, Any]:
        c = self.controller
        # Attached cameras first: their newest images are taken before the driver's snapshot
        # (a render can take milliseconds), so one is not replaced in its slot meanwhile.
        extra, meta, earlier = (self.rig.sample(self.earlier_max_bytes) if self.rig
                                else ({}, {}, {}))
        t = time.monotonic()
        snap = c.driver.snapshot()
        st = snap.state
        state = np.concatenate([st.q, st.ee_pos, st.ee_quat, [st.gripper]]).astype(np.float32)
        images = dict(snap.images)  # the driver's: drawn or read with this very snapshot
        cameras = {name: {"seq": self.seq, "t": t, "stale": False, "state": "ok", "reason": ""}
                   for name in images}
        images.update(extra)
        cameras.update(meta)
        return {"v": wire.PROTOCOL_VERSION, "type": "obs", "seq": self.seq, "t": t,
                "mode": c.mode.value, "reason": c.reason, "state": state,
                "setpoint": c.governor.setpoint, "images": images, "cameras": cameras,
                "earlier": earlier, "sim_only": snap.sim_only}
