"""The Franka Hand, driven from a child process so its blocking calls never stall the arm.

libfranka's `Gripper.move`/`grasp` block until the fingers stop (up to ~1 s on the real hand)
and `Gripper.read_once` waits for the next gripper state (~17 ms in franka-sim), and
pylibfranka holds the GIL through all of them (its bindings release it nowhere; measured: a
22 ms stall of every other thread per `read_once`). In the bridge's process that would freeze
the 1 kHz arm loop, and the FCI aborts a motion that misses its cycles. So the hand lives in a
process of its own (a `python -m hw_bridge.drivers.franka_hand` subprocess on one end of a
socket pair; not `multiprocessing`, whose spawn re-imports the parent's main script) and the
arm loop only does non-blocking I/O on its end:

    parent -> child: a target width (m), or None to stop
    child -> parent: ("ready", max_width, width), ("width", w), ("sent", target, ok),
                     ("error", message)

The child sends the newest target only (older ones are dropped unsent). A target opening is
a `move` to that width, except "closed" (at most `GRASP_BELOW_M`), which is a `grasp`: the
real hand then closes under force until the fingers stall, on an object or on each other, and
holds it (a `move` would stop on the object without holding force). A target within
`DEADBAND_M` of the last one sent is not re-sent.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from hw_bridge.errors import DriverFault

DEADBAND_M = 0.001  # targets closer than this to the last one sent are not re-sent
START_TIMEOUT_S = 30.0  # spawning a Python process and connecting to the hand
GRASP_FORCE_N = 20.0  # the Franka Hand holds up to 70 N continuous (datasheet); start gently
GRASP_EPSILON_M = 0.08  # any stall width counts as a finished grasp: it is a stop, not a check
GRASP_BELOW_M = 0.005  # a target opening this small means "close on whatever is there"


def _serve(conn: Connection, library: str, host: str, speed: float) -> None:
    """The child process: own the gripper connection, obey the newest target, report widths."""
    try:
        lib = importlib.import_module(library)
        gripper = lib.Gripper(host)
        state = gripper.read_once()
        conn.send(("ready", float(state.max_width), float(state.width)))
        sent = None
        while True:
            target = _newest(conn)
            if target is _STOP:
                return
            if target is not None and (sent is None or abs(target - sent) > DEADBAND_M):
                if target <= GRASP_BELOW_M:
                    ok = gripper.grasp(0.0, speed, GRASP_FORCE_N, GRASP_EPSILON_M,
                                       GRASP_EPSILON_M)
                else:
                    ok = gripper.move(target, speed)
                sent = target
                conn.send(("sent", target, bool(ok)))
            conn.send(("width", float(gripper.read_once().width)))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the parent went away: nothing left to obey
    except Exception as exc:  # report every library failure; the parent turns it into a fault
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except (BrokenPipeError, OSError):
            pass


_STOP = object()


def _newest(conn: Connection) -> Any:
    """Drain the pipe: the newest target (m), _STOP, or None when nothing arrived."""
    got = None
    while conn.poll(0.0):
        msg = conn.recv()
        if msg is None:
            return _STOP
        got = float(msg)
    return got


class HandProcess:
    """The parent's handle: `command(width)` and `poll()` never block the arm loop."""

    def __init__(self, library: str, host: str, speed: float) -> None:
        mine, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])  # where hw_bridge (and tests/) live
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "hw_bridge.drivers.franka_hand", str(theirs.fileno()),
             library, host, str(speed)], pass_fds=[theirs.fileno()], env=env,
            stdin=subprocess.DEVNULL)
        theirs.close()
        self._conn = Connection(mine.detach())
        msg = self._first_message(host)
        if msg[0] != "ready":
            self.close()
            raise DriverFault(f"Franka Hand at {host}: {msg[1]}")
        self.max_width, self.width = msg[1], msg[2]
        self.sent: float | None = None  # the last target handed to the child
        self.acked: float | None = None  # the last target the hand took (move/grasp returned)

    def _first_message(self, host: str) -> Any:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._conn.poll(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise DriverFault(f"Franka Hand at {host}: its process ended or did not answer "
                                  f"within {START_TIMEOUT_S:.0f} s (exit {self._proc.poll()})")
        try:
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            self.close()
            raise DriverFault(f"Franka Hand at {host}: its process ended: {exc}") from exc

    def command(self, width: float) -> None:
        """Ask for `width` (m); only a change beyond the deadband goes down the pipe."""
        if self.sent is None or abs(width - self.sent) > DEADBAND_M:
            self._conn.send(width)
            self.sent = width

    def poll(self) -> float:
        """Take the child's reports without waiting; the measured width (m). Faults raise."""
        try:
            while self._conn.poll(0.0):
                msg = self._conn.recv()
                if msg[0] == "width":
                    self.width = msg[1]
                elif msg[0] == "sent":
                    self.acked = msg[1]
                elif msg[0] == "error":
                    raise DriverFault(f"Franka Hand: {msg[1]}")
        except (EOFError, OSError) as exc:
            raise DriverFault(f"Franka Hand process ended: {exc}") from exc
        if self._proc.poll() is not None:
            raise DriverFault(f"Franka Hand process ended (exit code {self._proc.returncode})")
        return self.width

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        try:
            self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:  # stuck in a blocking library call: end it
            self._proc.kill()
            self._proc.wait(timeout=2.0)
        self._conn.close()


if __name__ == "__main__":  # the child: FD LIBRARY HOST SPEED
    _serve(Connection(int(sys.argv[1])), sys.argv[2], sys.argv[3], float(sys.argv[4]))
