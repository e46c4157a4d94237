"""Workstation side of the bridge: one DEALER for requests, one SUB for observations.

The client owns its session's heartbeat: a thread sends `heartbeat` whenever no request went
out for `heartbeat_s`, from the `welcome` on, so the server's watchdog fires only when this
process is gone or stuck (not while a policy thinks, nor while a reply is slow: a request holds
the socket's lock only to send and to read what has arrived, never while it waits, or one
reply delayed by a watchdog period would silence the session). Nothing here retries
forever: a request either gets its reply within `timeout_s` or raises `Timeout`; `reset`
alone retries while the arm is stopping, and for at most `reset_wait_s`.
"""

from __future__ import annotations

import itertools
import logging
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq

from hw_bridge import wire
from hw_bridge.errors import NotConnected, ProtocolError, Rejected, Timeout
from hw_bridge.security import load_client_keys, make_curve_client

log = logging.getLogger(__name__)
CLOCK_PINGS = 4  # extra round trips at connect; the fastest one sets the clock offset


@dataclass(frozen=True)
class ClientConfig:
    """How the workstation talks to a bridge server.

    Attributes:
        timeout_s: a reply must arrive within this long.
        heartbeat_s: keep-alive interval (5 per 100 ms watchdog).
        lifetime_s: a command's deadline after its send time; None = one control period.
        keys: client keys dir (NAME.key_secret + server.key) to use CURVE; None = plain.
        key_name: which key pair in `keys`.
        reset_wait_s: how long `reset` waits for a moving arm to stop.
        heartbeat: run the heartbeat thread (benchmarks turn it off to starve the watchdog).
        conflate: keep only the newest observation frame (a policy's view). False queues them
            (up to ZeroMQ's receive HWM, 1000), for a recorder that must see every camera frame.
    """

    timeout_s: float = 1.0
    heartbeat_s: float = 0.02
    lifetime_s: float | None = None
    keys: str | None = None
    key_name: str = "client"
    reset_wait_s: float = 1.0
    heartbeat: bool = True
    conflate: bool = True


class BridgeClient:
    """A session with a bridge server at `address` (tcp://HOST:PORT)."""

    def __init__(self, address: str, config: ClientConfig | None = None,
                 name: str = "motoken") -> None:
        self.address = address
        self.config = config or ClientConfig()
        self.name = name
        self.ctx = zmq.Context()
        self._lock = threading.Lock()  # the DEALER's: held for a send or a read, never a wait
        self._request_lock = threading.Lock()  # one request in flight at a time
        self._waiting = False  # a request awaits its reply: heartbeat replies are its to read
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._last_send = 0.0
        self._best_rtt = float("inf")
        self.offset = 0.0  # server monotonic clock minus ours
        self.session: str | None = None
        self.info: dict[str, Any] = {}
        self.session_error: str | None = None
        self._hb: threading.Thread | None = None
        self._closed = threading.Event()
        self.sub: zmq.Socket | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> None:
        """Open the command socket without a session: enough for `status` and `estop`."""
        self.sock = self._socket(zmq.DEALER)
        self.sock.setsockopt(zmq.MAXMSGSIZE, wire.COMMAND_MAX_BYTES * 4)
        self.sock.connect(self.address)
        self._fd = self.sock.getsockopt(zmq.FD)

    def connect(self, subscribe: bool = True) -> dict[str, Any]:
        """Open the sockets, say hello; return the server's welcome (the handshake)."""
        self.open()
        t0 = time.monotonic()
        welcome = self.request("hello", client=self.name)
        self._sync_clock(t0, time.monotonic(), welcome["server_time"])
        self.info, self.session = welcome, welcome["session"]
        if self.config.heartbeat:  # the watchdog runs from the hello: pings below do not feed it
            self._wake = socket.socketpair()
            self._wake[1].setblocking(False)
            self._hb = threading.Thread(target=self._heartbeat_loop, daemon=True,
                                        name="bridge-heartbeat")
            self._hb.start()
        self._ping_clock()
        if subscribe and welcome.get("stream"):
            self._subscribe(welcome["stream"]["endpoint"])
        return welcome

    def observe(self) -> dict[str, Any]:
        """Read-only: learn the robot (`describe`) and subscribe to its stream, with no
        session. The open session, if any, is untouched (no `hello` is sent), the watchdog
        never hears of this client, and `command`/`reset` raise NotConnected: an observer can
        watch an arm another client drives (a leader arm) but can never move it. Returns the
        `describe` reply (the welcome's robot, cameras, rates, stream, limits)."""
        self.open()
        t0 = time.monotonic()
        info = self.request("describe")
        self._sync_clock(t0, time.monotonic(), info["server_time"])
        self.info = info
        self._ping_clock()
        if not info.get("stream"):
            raise ProtocolError(f"{self.address} describes no observation stream; an observer "
                                f"has nothing to read", "bad_field")
        self._subscribe(info["stream"]["endpoint"])
        return info

    def _ping_clock(self) -> None:
        for _ in range(CLOCK_PINGS):  # one slow round trip would skew every deadline after it
            t0 = time.monotonic()
            server_time = self.status()["server_time"]
            self._sync_clock(t0, time.monotonic(), server_time)

    def _subscribe(self, endpoint: str) -> None:
        self.sub = self._socket(zmq.SUB)
        # newest frame wins unless the config asks for every frame; set before connect
        self.sub.setsockopt(zmq.CONFLATE, int(self.config.conflate))
        self.sub.setsockopt(zmq.MAXMSGSIZE, wire.STREAM_MAX_BYTES)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(self._stream_address(endpoint))

    def _socket(self, kind: int) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if self.config.keys:
            make_curve_client(sock, load_client_keys(self.config.keys, self.config.key_name))
        return sock

    def _stream_address(self, endpoint: str) -> str:
        # The server reports what it bound (maybe 0.0.0.0); reach it at the host we dialled.
        host = self.address.rpartition(":")[0]
        return f"{host}:{endpoint.rpartition(':')[2]}"

    def drop(self) -> None:
        """Vanish without a `bye`: heartbeats stop and the sockets close at once, as when the
        workstation crashes or its cable is pulled (fault benches use this; the server must
        stop the arm by its watchdog)."""
        self._closed.set()
        self.ctx.destroy(linger=0)

    def close(self) -> None:
        self._closed.set()
        if self._hb is not None:
            self._hb.join(timeout=1.0)
        if self.session is not None:
            try:
                self.request("bye", session=self.session, timeout_s=0.2)
            except (Timeout, Rejected):
                pass  # the server ends the session by its watchdog anyway
        self.session = None
        self.ctx.destroy(linger=0)

    def __enter__(self) -> BridgeClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -------------------------------------------------------------------------
    def server_now(self) -> float:
        """Now, on the server's monotonic clock (estimated)."""
        return time.monotonic() + self.offset

    def _sync_clock(self, t0: float, t1: float, server_time: float) -> None:
        if t1 - t0 < self._best_rtt:  # the fastest round trip bounds the offset's error best
            self._best_rtt = t1 - t0
            self.offset = server_time - 0.5 * (t0 + t1)

    def request(self, kind: str, timeout_s: float | None = None, **fields: Any) -> dict:
        """Send one request and wait for its reply; raise Rejected on an `error` reply."""
        req_id = next(self._ids)
        payload = wire.encode(wire.request(kind, req_id, **fields))
        timeout = self.config.timeout_s if timeout_s is None else timeout_s
        with self._request_lock:
            with self._lock:
                self.sock.send(payload)
                self._last_send = time.monotonic()
                self._waiting = True
            try:
                reply = self._await(req_id, time.monotonic() + timeout, kind)
            finally:
                self._waiting = False
        if reply.get("type") == "error":
            raise Rejected(str(reply.get("code")), str(reply.get("message")))
        return reply

    def _await(self, req_id: int, deadline: float, kind: str) -> dict:
        # Wait on the socket's file descriptor without the lock, so the heartbeat thread can
        # send meanwhile. The descriptor is edge-triggered: a send of that thread may consume
        # the edge of our reply's arrival, so it also wakes us through `_wake` after each send.
        while True:
            with self._lock:
                while self.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    msg = wire.decode(self.sock.recv(zmq.NOBLOCK), wire.COMMAND_MAX_BYTES * 4)
                    if msg.get("ref") == req_id:
                        return msg
                    self._note_stray(msg)
            if (left := deadline - time.monotonic()) <= 0:
                break
            wake = self._wake
            ready, _, _ = select.select([self._fd] + ([wake[0]] if wake else []), [], [], left)
            if wake and wake[0] in ready:
                wake[0].recv(4096)
        raise Timeout(f"no reply to {kind} from {self.address} within "
                      f"{1e3 * (deadline - self._last_send):.0f} ms")

    def _note_stray(self, msg: dict) -> None:
        # Replies to heartbeats (and late replies to timed-out requests) land here.
        if msg.get("type") == "error" and msg.get("code") == "unknown_session":
            self.session_error = str(msg.get("message"))

    def _need_session(self) -> str:
        if self.session is None:
            raise NotConnected(f"no open session with {self.address}; call connect() first")
        return self.session

    def command(self, q: np.ndarray, gripper: float, lifetime_s: float | None = None,
                seq: int | None = None) -> dict[str, Any]:
        """Send a joint target; return the server's ack: the target actually applied."""
        session = self._need_session()
        life = lifetime_s or self.config.lifetime_s or 1.0 / self.info["control_hz"]
        sent = self.server_now()
        t0 = time.monotonic()
        ack = self.request("command", session=session, seq=next(self._seq) if seq is None else seq,
                           sent=sent, deadline=sent + life,
                           q=np.asarray(q, dtype=np.float64), gripper=float(gripper))
        self._sync_clock(t0, time.monotonic(), ack["t"])
        return ack

    def heartbeat(self) -> dict[str, Any]:
        return self.request("heartbeat", session=self._need_session(), sent=self.server_now())

    def reset(self, seed: int | None = None) -> dict[str, Any]:
        """Clear e-stop/fault and start a new episode (sim); wait while the arm stops."""
        session = self._need_session()
        give_up = time.monotonic() + self.config.reset_wait_s
        while True:
            try:
                reply = self.request("reset", session=session, seq=next(self._seq), seed=seed)
                return reply["episode"]
            except Rejected as exc:
                if exc.code != "busy" or time.monotonic() > give_up:
                    raise
                time.sleep(0.02)

    def estop(self, reason: str = "client e-stop") -> dict[str, Any]:
        """Latch the server's e-stop (works without a session)."""
        return self.request("estop", reason=reason)

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def _heartbeat_loop(self) -> None:
        period = self.config.heartbeat_s
        try:
            while not self._closed.wait(period / 2):
                if self.session is None or time.monotonic() - self._last_send < period:
                    continue
                self._send_heartbeat()
        finally:
            wake, self._wake = self._wake, None
            if wake:
                for end in wake:
                    end.close()

    def _send_heartbeat(self) -> None:
        payload = wire.encode(wire.request("heartbeat", next(self._ids), session=self.session,
                                           sent=self.server_now()))
        with self._lock:
            self.sock.send(payload)
            self._last_send = time.monotonic()
            if self._waiting and self._wake:  # its reader rechecks: our send took the edge
                try:
                    self._wake[1].send(b"\0")
                except BlockingIOError:
                    pass  # the buffer is full of wake-ups not yet read: one is enough
                return
            while self.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # replies nobody awaits
                msg = self.sock.recv(zmq.NOBLOCK)
                self._note_stray(wire.decode(msg, wire.COMMAND_MAX_BYTES * 4))

    # -- observations ---------------------------------------------------------------------
    def observation(self, after_seq: int = -1, after_t: float = -np.inf,
                    timeout_s: float | None = None) -> dict[str, Any]:
        """The newest `obs` frame with seq > after_seq and server time > after_t."""
        if self.sub is None:
            raise NotConnected("not subscribed to the observation stream")
        deadline = time.monotonic() + (timeout_s or self.config.timeout_s)
        while (left := deadline - time.monotonic()) > 0:
            if not self.sub.poll(int(left * 1e3) + 1):
                continue
            try:
                obs = wire.decode(self.sub.recv(), wire.STREAM_MAX_BYTES)
            except ProtocolError as exc:
                log.error("dropping an undecodable observation frame: %s", exc)
                continue
            if obs.get("seq", -1) > after_seq and obs.get("t", -np.inf) > after_t:
                return obs
        raise Timeout(f"no observation from {self.address} within "
                      f"{timeout_s or self.config.timeout_s:.1f} s")
