"""The robot-side server: one thread runs the arm's fixed-rate loop and answers requests,
another publishes observations. See PROTOCOL.md for the sockets and the reasons behind them.

The loop sleeps on the command socket's file descriptor with `select` (microsecond timeouts,
unlike zmq_poll's milliseconds), so a request is answered the moment it arrives while every
arm period still starts on time; at most `max_batch` requests are handled between two periods,
so a flood of garbage delays the arm by a bounded amount and then waits in ZeroMQ's bounded
queues (or is dropped by them).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from dataclasses import dataclass
from typing import Any

import zmq

from hw_bridge import wire
from hw_bridge.cameras.rig import CameraRig
from hw_bridge.controller import ArmController
from hw_bridge.drivers.base import Driver
from hw_bridge.errors import ProtocolError
from hw_bridge.security import RefusalLog, load_server_keys, make_curve_server, start_authenticator
from hw_bridge.stream import Streamer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    """Where and how fast the server talks.

    Attributes:
        bind: command endpoint (ROUTER). Loopback by default; `tcp://127.0.0.1:*` picks a port.
        stream_bind: observation endpoint (PUB); default: same host, command port + 1.
        control_hz: the rate clients are expected to command at (one "period" in the protocol).
        stream_hz: observation rate (state + camera frames).
        keys: directory with server.key_secret and clients/*.key to turn CURVE on.
        max_batch: requests handled between two arm periods at most.
        hwm: high-water mark (messages) of the command socket, each direction.
        max_catchup: arm periods run at once after a late wake-up; beyond, the clock resyncs.
        rt_priority: 1..99 runs the arm loop thread and ZeroMQ's I/O thread SCHED_FIFO at this
            priority (needs CAP_SYS_NICE; a robot host should); 0 leaves scheduling alone.
    """

    bind: str = "tcp://127.0.0.1:5555"
    stream_bind: str | None = None
    control_hz: float = 20.0
    stream_hz: float = 30.0
    keys: str | None = None
    max_batch: int = 64
    hwm: int = 100
    max_catchup: int = 5
    rt_priority: int = 0

    def __post_init__(self) -> None:
        if not self.bind.startswith("tcp://"):
            raise ValueError(f"bind must be tcp://HOST:PORT, got {self.bind!r}")
        if not 0 <= self.rt_priority <= 99:
            raise ValueError(f"rt_priority must be 0 (off) or 1..99, got {self.rt_priority}")
        if not (0 < self.control_hz <= 1000 and 0 < self.stream_hz <= 200):
            raise ValueError(f"control_hz {self.control_hz} must be in (0, 1000], "
                             f"stream_hz {self.stream_hz} in (0, 200]")

    def stream_endpoint(self) -> str:
        if self.stream_bind:
            return self.stream_bind
        host, _, port = self.bind.rpartition(":")
        return f"{host}:*" if port in ("*", "0") else f"{host}:{int(port) + 1}"


class BridgeServer:
    """Serve one arm (a connected or unconnected `Driver`) over ZeroMQ.

    `rig` holds cameras streamed beside the driver's own; one of the same name replaces the
    driver's camera (the driver then no longer renders or reads it).
    """

    def __init__(self, driver: Driver, config: ServerConfig | None = None,
                 rig: CameraRig | None = None) -> None:
        self.driver = driver
        self.config = config or ServerConfig()
        self.rig = rig or CameraRig([])
        self.ctx = zmq.Context()
        if self.config.rt_priority:  # must precede the first socket: I/O threads start then
            self.ctx.set(zmq.THREAD_SCHED_POLICY, os.SCHED_FIFO)
            self.ctx.set(zmq.THREAD_PRIORITY, self.config.rt_priority)
        self._stop = threading.Event()
        self._auth = None
        self._refusals: list[RefusalLog] = []
        self.endpoint = self.stream_endpoint = ""

    def start(self) -> BridgeServer:
        """Connect the cameras, then the driver, bind both sockets, start the stream thread."""
        cfg = self.config
        # Cameras first: a source that cannot open fails the start before the arm is touched.
        self.rig.connect(max(0, cfg.rt_priority - 1))
        self.driver.cameras = {n: s for n, s in self.driver.cameras.items()
                               if n not in self.rig.cameras}
        if self.driver.state.value == "disconnected":
            self.driver.connect()
        self.controller = ArmController(self.driver, cfg.control_hz, self.rig)
        self.router = self.ctx.socket(zmq.ROUTER)
        pub = self.ctx.socket(zmq.PUB)
        self._secure(self.router, pub)
        self.router.setsockopt(zmq.MAXMSGSIZE, wire.COMMAND_MAX_BYTES)
        self.router.setsockopt(zmq.RCVHWM, cfg.hwm)
        self.router.setsockopt(zmq.SNDHWM, cfg.hwm)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(cfg.bind)
        self.endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.streamer = Streamer(pub, self.controller, cfg.stream_hz, self._stop,
                                 max(0, cfg.rt_priority - 1), self.rig)
        pub.bind(cfg.stream_endpoint())
        self.stream_endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.controller.stream = {"endpoint": self.stream_endpoint, "hz": cfg.stream_hz}
        self.streamer.start()
        log.info("serving %s on %s (stream %s, CURVE %s)", self.driver.robot.name, self.endpoint,
                 self.stream_endpoint, "on" if cfg.keys else "off")
        return self

    def _secure(self, *socks: zmq.Socket) -> None:
        if not self.config.keys:
            return
        keys = load_server_keys(self.config.keys)
        self._auth = start_authenticator(self.ctx, keys)
        for sock, name in zip(socks, ("command", "stream"), strict=True):
            make_curve_server(sock, keys)
            self._refusals.append(RefusalLog(sock, name))

    @property
    def auth_refusals(self) -> int:
        return sum(r.count for r in self._refusals)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """The arm's fixed-rate loop; returns after `stop()`."""
        period = self.driver.period
        fd = self.router.getsockopt(zmq.FD)
        self._realtime()
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            now = time.perf_counter()
            if now >= next_tick:
                # Requests that queued up while this loop was late count before the watchdog
                # looks: a stall of ours must not read as silence of the client's.
                self._drain()
                n = min(self.config.max_catchup, 1 + int((now - next_tick) / period))
                self.controller.tick(n, time.monotonic())
                next_tick += n * period
                if now - next_tick > period:  # too late to catch up: resync, count it
                    self.controller.counts["overruns"] += 1
                    next_tick = now + period
                self._housekeeping()
                continue
            if self._drain() < self.config.max_batch:
                select.select([fd], [], [], max(0.0, next_tick - time.perf_counter()))

    def _realtime(self) -> None:
        prio = self.config.rt_priority
        if not prio:
            return
        try:  # this thread only: the stream thread keeps normal priority for its rendering
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))
            log.info("arm loop runs SCHED_FIFO priority %d", prio)
        except (PermissionError, OSError) as exc:
            log.warning("could not get real-time priority %d (%s); running best effort",
                        prio, exc)

    def _housekeeping(self) -> None:
        for refusal in self._refusals:
            refusal.drain()
        self.controller.counts["auth_refusals"] = self.auth_refusals

    def _drain(self) -> int:
        handled = 0
        while handled < self.config.max_batch and self.router.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            frames = self.router.recv_multipart(zmq.NOBLOCK)
            handled += 1
            self._answer(frames)
        return handled

    def _answer(self, frames: list[bytes]) -> None:
        envelope, payload = frames[:-1], frames[-1]
        if len(frames) not in (2, 3) or (len(frames) == 3 and frames[1]):
            reply = wire.error_reply("malformed", f"expected one payload frame, got "
                                     f"{len(frames) - 1}")
            envelope = frames[:1]
        else:
            reply = self._reply_to(payload)
        try:
            self.router.send_multipart([*envelope, wire.encode(reply)], zmq.NOBLOCK)
        except zmq.Again:  # that client's reply queue is full: it is not reading; drop
            self.controller.counts["replies_dropped"] += 1

    def _reply_to(self, payload: bytes) -> dict[str, Any]:
        try:
            msg = wire.decode(payload)
        except ProtocolError as exc:
            self.controller.counts[f"rejected.{exc.code}"] += 1
            return wire.error_reply(exc.code, str(exc))
        if msg.get("type") == "status" and msg.get("v") == wire.PROTOCOL_VERSION:
            self.controller.counts["auth_refusals"] = self.auth_refusals
        try:
            return self.controller.handle(msg)
        except Exception as exc:  # a bug shows up as an error reply and a log line
            log.exception("internal error handling %r", msg.get("type"))
            return wire.error_reply("internal", f"{type(exc).__name__}: {exc}", msg.get("id"))

    def close(self) -> None:
        self._stop.set()
        if hasattr(self, "streamer"):
            self.streamer.join(timeout=2.0)
        for refusal in self._refusals:
            refusal.close()
        if self._auth is not None:
            self._auth.stop()
        self.ctx.destroy(linger=0)
        self.rig.close()
        self.driver.hold()
        self.driver.disconnect()

    def __enter__(self) -> BridgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
