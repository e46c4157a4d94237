"""A Robotiq 2F-85 on a UR arm, through the Robotiq URCap's ASCII socket. NOT YET TRIED ON
HARDWARE (tested against a fake URCap server on loopback, tests/hw_bridge/test_ur_driver.py).

The URCap on the UR controller listens on TCP port 63352 and takes one line per request,
"SET VAR VALUE [VAR VALUE ...]" (answered "ack") or "GET VAR" (answered "VAR VALUE"), with the
gripper's registers: ACT (1 = activated), GTO (1 = go to the requested position), POS (0 open
.. 255 closed: requested by SET, measured by GET), SPE and FOR (speed and force 0..255),
STA (0 reset, 1 activating, 3 active), OBJ (0 moving, 1/2 stopped on an object, 3 at the
requested position) and FLT (fault code, 0 = none).

A thread owns the socket (socket calls release the GIL, so it never stalls the arm loop): it
sends the newest requested position (older ones are dropped unsent) and polls POS and FLT
between. The arm loop only swaps numbers under a lock. Width <-> register: the 2F-85's
85 mm stroke mapped linearly onto 0..255 (0 = 85 mm open); a real gripper's register range is
a few counts narrower (calibrate by reading POS fully open and closed; not done here).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time

from hw_bridge.errors import DriverFault

log = logging.getLogger(__name__)
URCAP_PORT = 63352
MAX_OPENING_2F85 = 0.085  # m, the 2F-85's stroke (Robotiq datasheet)
SPEED, FORCE = 255, 100  # registers: full speed (150 mm/s), ~40% of the 2F-85's 20-235 N
POLL_S = 0.02  # position reading every 20 ms, like the policy's 20 Hz
ACTIVATE_TIMEOUT_S = 5.0  # activation runs the fingers through their stroke (~1-2 s)
# A whole reply, with or without a line end (the URCap sends "ack" bare); replies are a few
# bytes, so they arrive in one segment.
REPLY = re.compile(rb"^(ack|[A-Z]{3} -?\d+)\s*$")


class RobotiqGripper:
    """The gripper at `host:port`; `command(width)` and `width()` never block."""

    def __init__(self, host: str, port: int = URCAP_PORT, timeout_s: float = 1.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.max_opening = MAX_OPENING_2F85
        self._lock = threading.Lock()
        self._target: int | None = None  # requested register, not yet sent
        self.sent_pos: int | None = None  # the last POS the URCap acked
        self._pos = 0
        self._error: str | None = None
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # -- connection -----------------------------------------------------------------------
    def connect(self) -> None:
        """Open the socket, activate the gripper if it is not active, start the thread."""
        try:
            self._sock = socket.create_connection((self.host, self.port), self.timeout_s)
            if self._get("STA") != 3:
                log.warning("activating the Robotiq gripper at %s: the fingers will move "
                            "through their whole stroke", self.host)
                self._set("ACT", 1)
                deadline = time.monotonic() + ACTIVATE_TIMEOUT_S
                while self._get("STA") != 3:
                    if time.monotonic() > deadline:
                        raise DriverFault(f"Robotiq gripper at {self.host} did not activate "
                                          f"within {ACTIVATE_TIMEOUT_S:.0f} s")
                    time.sleep(0.05)
            self._set("SPE", SPEED, "FOR", FORCE, "GTO", 1)
            self._pos = self._get("POS")
        except (OSError, ValueError) as exc:
            self.close()
            raise DriverFault(f"no Robotiq URCap at {self.host}:{self.port}: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name="robotiq", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()
        self._sock = None

    # -- the arm loop's side --------------------------------------------------------------
    def command(self, width: float) -> int:
        """Ask for an opening of `width` m, clamped to [0, max_opening]; returns the register."""
        width = min(max(width, 0.0), self.max_opening)
        pos = round(255 * (1.0 - width / self.max_opening))
        with self._lock:
            if pos != self.sent_pos or self._target is not None:
                self._target = pos
        return pos

    def width(self) -> float:
        """The measured opening, m (DriverFault once the socket or the gripper failed)."""
        with self._lock:
            if self._error is not None:
                raise DriverFault(self._error)
            return self.to_width(self._pos)

    def to_width(self, pos: int) -> float:
        return self.max_opening * (1.0 - pos / 255)

    # -- the socket thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    target, self._target = self._target, None
                if target is not None and target != self.sent_pos:
                    self._set("POS", target)
                    with self._lock:
                        self.sent_pos = target
                pos, fault = self._get("POS"), self._get("FLT")
                if fault:
                    raise DriverFault(f"Robotiq gripper at {self.host} reports fault {fault}")
                with self._lock:
                    self._pos = pos
                self._stop.wait(POLL_S)
        except (OSError, ValueError, DriverFault) as exc:
            with self._lock:
                self._error = f"Robotiq gripper at {self.host}:{self.port}: {exc}"
            log.error("%s", self._error)

    def _request(self, line: str) -> bytes:
        assert self._sock is not None
        self._sock.sendall(line.encode() + b"\n")
        reply = b""
        while not REPLY.match(reply):
            chunk = self._sock.recv(64)
            if not chunk:
                raise ConnectionError("the URCap closed the connection")
            reply += chunk
            if len(reply) > 64:
                raise ValueError(f"unexpected reply to {line!r}: {reply[:64]!r}")
        return reply.strip()

    def _get(self, var: str) -> int:
        reply = self._request(f"GET {var}").decode()
        name, _, value = reply.partition(" ")
        if name != var:
            raise ValueError(f"asked for {var}, got {reply!r}")
        return int(value)

    def _set(self, *pairs: str | int) -> None:
        line = "SET " + " ".join(str(p) for p in pairs)
        reply = self._request(line)
        if reply != b"ack":
            raise ValueError(f"{line!r} not acknowledged: {reply!r}")
