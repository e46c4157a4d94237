"""The observation stream: state and camera frames published at a fixed rate on a PUB socket.

PUB because observations are a broadcast of the newest state, not a conversation: a slow or
absent subscriber must never slow the arm, so the socket never blocks (a full queue drops the
frame for that subscriber) and its send high-water mark is tiny (`SNDHWM`): an old frame is
worth nothing once a newer one exists. Subscribers set CONFLATE for the same reason.
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
from hw_bridge.controller import ArmController

log = logging.getLogger(__name__)
STREAM_SNDHWM = 4  # frames queued per subscriber before the newest are dropped for it


class Streamer(threading.Thread):
    """Publishes `obs` messages (see PROTOCOL.md) until `stop` is set."""

    def __init__(self, pub: zmq.Socket, controller: ArmController, hz: float,
                 stop: threading.Event, rt_priority: int = 0) -> None:
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

    def run(self) -> None:
        if self.rt_priority:
            # Below the arm loop, but real-time too: a preempted stream thread holding the GIL
            # would otherwise stall the arm loop behind it (priority inversion via the GIL).
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.rt_priority))
            except (PermissionError, OSError) as exc:
                log.warning("stream thread stays best effort: %s", exc)
        next_t = time.perf_counter()
        while not self.stop_event.is_set():
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
            next_t += self.period
            delay = next_t - time.perf_counter()
            if delay < -self.period:  # fell behind (rendering slower than the rate): resync
                next_t = time.perf_counter()
            elif delay > 0:
                self.stop_event.wait(delay)
        self.controller.driver.release_stream()
        self.pub.close(linger=0)

    def frame(self) -> dict[str, Any]:
        c = self.controller
        t = time.monotonic()
        snap = c.driver.snapshot()
        st = snap.state
        state = np.concatenate([st.q, st.ee_pos, st.ee_quat, [st.gripper]]).astype(np.float32)
        return {"v": wire.PROTOCOL_VERSION, "type": "obs", "seq": self.seq, "t": t,
                "mode": c.mode.value, "reason": c.reason, "state": state,
                "setpoint": c.governor.setpoint, "images": snap.images,
                "sim_only": snap.sim_only}
