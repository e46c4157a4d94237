"""Fakes for the UR driver: ur_rtde's two interfaces (modules to put in sys.modules) and a
Robotiq URCap socket server (real TCP on loopback, the URCap's ASCII protocol)."""

from __future__ import annotations

import socket
import threading
import time
import types

import numpy as np

UR_HOME = [0.0, -1.571, 1.571, -1.571, -1.571, 0.0]


class FakeUR:
    """One simulated controller shared by the control and receive interfaces."""

    def __init__(self) -> None:
        self.q = np.array(UR_HOME)
        self.servo: list[np.ndarray] = []
        self.stops = 0
        self.protective_stop = False

    def modules(self) -> dict[str, types.ModuleType]:
        ur = self

        class RTDEControlInterface:
            def __init__(self, host: str, frequency: float) -> None:
                self.host = host

            def setWatchdog(self, min_hz: float) -> None:  # noqa: N802 (ur_rtde's names)
                self.watchdog = min_hz

            def kickWatchdog(self) -> None:  # noqa: N802
                pass

            def servoJ(self, q, v, a, t, lookahead, gain) -> bool:  # noqa: N802
                ur.servo.append(np.array(q))
                ur.q = np.array(q)  # a perfect servo: the arm is where it was told
                return True

            def servoStop(self, decel: float) -> None:  # noqa: N802
                ur.stops += 1

            def stopScript(self) -> None:  # noqa: N802
                pass

            def disconnect(self) -> None:
                pass

            def getForwardKinematics(self, q, tcp_offset):  # noqa: N802
                return [0.4 + 0.1 * np.sin(q[0]), 0.1 * q[1], 0.4, 0.0, 3.14, 0.0]

        class RTDEReceiveInterface:
            def __init__(self, host: str, frequency: float) -> None:
                pass

            def isProtectiveStopped(self) -> bool:  # noqa: N802
                return ur.protective_stop

            def isEmergencyStopped(self) -> bool:  # noqa: N802
                return False

            def getActualQ(self) -> list[float]:  # noqa: N802
                return ur.q.tolist()

            def getActualTCPPose(self) -> list[float]:  # noqa: N802
                return [0.4, 0.0, 0.4, 0.0, 3.14, 0.0]

            def disconnect(self) -> None:
                pass

        control = types.ModuleType("rtde_control")
        control.RTDEControlInterface = RTDEControlInterface
        receive = types.ModuleType("rtde_receive")
        receive.RTDEReceiveInterface = RTDEReceiveInterface
        return {"rtde_control": control, "rtde_receive": receive}


class FakeURCap:
    """The Robotiq URCap's socket: "SET VAR N ..." -> "ack", "GET VAR" -> "VAR N".

    The fingers (POS) move towards the requested position at `counts_per_s` while GTO is 1;
    activation (ACT 1) takes `activation_s`. Every SET line is kept in `sets`.
    """

    def __init__(self, active: bool = True, counts_per_s: float = 2000.0,
                 activation_s: float = 0.2) -> None:
        self.regs = {"ACT": int(active), "STA": 3 if active else 0, "GTO": 0, "POS": 0,
                     "PRE": 0, "SPE": 0, "FOR": 0, "OBJ": 0, "FLT": 0}
        self.counts_per_s, self.activation_s = counts_per_s, activation_s
        self.sets: list[str] = []
        self._activated_at: float | None = None
        self._moved_at = time.monotonic()
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                chunk = conn.recv(256)
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    conn.sendall(self._answer(line.decode().split()))
        except OSError:
            return

    def _answer(self, words: list[str]) -> bytes:
        with self._lock:
            self._advance()
            if words[0] == "GET" and len(words) == 2 and words[1] in self.regs:
                return f"{words[1]} {self.regs[words[1]]}\n".encode()
            if words[0] == "SET" and len(words) >= 3 and len(words) % 2 == 1:
                self.sets.append(" ".join(words))
                for var, value in zip(words[1::2], words[2::2], strict=True):
                    self._set(var, int(value))
                return b"ack"  # the URCap acknowledges without a line end
            return b"?"

    def _set(self, var: str, value: int) -> None:
        if var == "ACT" and value == 1 and self.regs["STA"] != 3:
            self.regs["STA"], self._activated_at = 1, time.monotonic()
        if var == "POS":
            self.regs["PRE"] = value  # the request; POS itself reads the measured position
        else:
            self.regs[var] = value

    def _advance(self) -> None:
        now = time.monotonic()
        if self._activated_at is not None and now - self._activated_at >= self.activation_s:
            self.regs["STA"], self._activated_at = 3, None
        step = self.counts_per_s * (now - self._moved_at)
        self._moved_at = now
        if self.regs["GTO"] and self.regs["STA"] == 3:
            pos, goal = self.regs["POS"], self.regs["PRE"]
            self.regs["POS"] = int(round(pos + np.clip(goal - pos, -step, step)))
            self.regs["OBJ"] = 3 if self.regs["POS"] == goal else 0

    def set_fault(self, code: int) -> None:
        with self._lock:
            self.regs["FLT"] = code

    def drop(self) -> None:
        """Close every connection and stop listening: the gripper link is gone."""
        self._closed = True
        self.listener.close()
        for conn in self._conns:
            conn.close()
