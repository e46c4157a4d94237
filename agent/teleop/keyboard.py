"""`--teleop keyboard`: drive the arm from the terminal's keys (works over SSH, no X, no pynput).

The terminal is put in cbreak mode (no echo, no line buffering; Ctrl-C still interrupts) and
stdin is polled with `select`, so `read` never blocks. The mode is restored by `close`, at
interpreter exit (atexit) and on SIGTERM/SIGHUP, so a crash does not leave the shell without
echo.

Presses, not holds: a terminal reports key presses only (holding a key makes the terminal
repeat it, after its auto-repeat delay). So each press of a motion key commands motion along
its axis for `hold_s` (0.4 s by default) at the current speed; a repeat (the key held) or a new
press extends it, the opposite key reverses it at once. A tap moves `speed * hold_s` (2 cm at
the default 0.05 m/s); holding a key moves continuously once the terminal's repeat starts
(0.4 s covers the usual 250-500 ms repeat delay, so the motion does not stall in between).
Speed is per second, not per control period: the device integrates it over the time between
reads, so the same keys move the same distance at any --fps.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import sys
import termios
import threading
import time
import tty
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from agent.teleop.base import TeleopCommand, TeleopDevice, TeleopError
from envs.features import ACTION_LAYOUT
from envs.tabletop import MAX_DPOS, MAX_DROT

ESC = 0x1B
ESC_WAIT_S = 0.05  # a lone ESC is the Esc key once no sequence byte follows within this
MAX_DT_S = 0.25  # motion integrated over at most this between two reads (after a pause)
ROT_PER_M = 10.0  # yaw speed (rad/s) per unit of translation speed (m/s): 0.5 rad/s at 0.05
MIN_SPEED, MAX_SPEED = 0.005, 0.4  # m/s; +/- double and halve within these

# key -> (action dimension, direction). World frame: +x away from the robot base, +z up.
MOTION: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0), "UP": (0, 1.0), "DOWN": (0, -1.0),
    "a": (1, 1.0), "d": (1, -1.0), "LEFT": (1, 1.0), "RIGHT": (1, -1.0),
    "r": (2, 1.0), "f": (2, -1.0),
    "q": (5, 1.0), "e": (5, -1.0),
}
# `t` sends both takeover and handback: the one that applies (agent/teleop/takeover.py acts on
# takeover only while the policy drives and on handback only while the human does) makes it a
# toggle, so one key works without the keyboard knowing who is in control.
EVENT_KEYS: dict[str, frozenset[str]] = {
    "ENTER": frozenset({"next"}), "n": frozenset({"next"}),
    "BACKSPACE": frozenset({"rerecord"}), "b": frozenset({"rerecord"}),
    "ESC": frozenset({"stop"}), "t": frozenset({"takeover", "handback"})}
FASTER, SLOWER, GRIPPER = ("+", "="), ("-", "_"), " "
_NAMED = {0x0D: "ENTER", 0x0A: "ENTER", 0x7F: "BACKSPACE", 0x08: "BACKSPACE"}
_ARROWS = {ord("A"): "UP", ord("B"): "DOWN", ord("C"): "RIGHT", ord("D"): "LEFT"}

HELP = """\
keyboard teleop: a press moves for {hold:.1f} s; hold a key to keep moving (speed {speed:.3f} m/s)
  w/s or up/down: +x/-x   a/d or left/right: +y/-y   r/f: up/down   q/e: yaw left/right
  space: close/open gripper   +/-: faster/slower
  enter or n: next episode (keep this one)   backspace or b: re-record this episode
  esc or ctrl-c: stop (episodes already recorded are kept)
  t: take over from the policy / hand back to it (agent run --takeover keyboard)
"""


@dataclass(frozen=True)
class KeyboardConfig:
    """Settings of `--teleop keyboard[:speed=M/S,hold=S]`.

    Attributes:
        speed: translation speed, m/s, at the start (+/- double or halve it).
        hold_s: how long one press moves, s.
    """

    speed: float = 0.05
    hold_s: float = 0.4

    def __post_init__(self) -> None:
        if not MIN_SPEED <= self.speed <= MAX_SPEED:
            raise ValueError(f"speed must be in [{MIN_SPEED}, {MAX_SPEED}] m/s, got {self.speed}")
        if not 0.05 <= self.hold_s <= 2.0:
            raise ValueError(f"hold must be in [0.05, 2] s, got {self.hold_s}")

    @classmethod
    def parse(cls, arg: str) -> KeyboardConfig:
        """From the text after "keyboard:", e.g. "speed=0.1,hold=0.3" ("" for the defaults)."""
        known = {"speed": "speed", "hold": "hold_s"}
        values: dict[str, float] = {}
        for item in filter(None, (s.strip() for s in arg.split(","))):
            key, sep, value = item.partition("=")
            if not sep or key not in known:
                raise ValueError(f"keyboard option {item!r}: expected KEY=VALUE with KEY one "
                                 f"of {sorted(known)}, e.g. keyboard:speed=0.1,hold=0.3")
            try:
                values[known[key]] = float(value)
            except ValueError:
                raise ValueError(f"keyboard option {item!r}: {value!r} is not a number") from None
        return cls(**values)


class KeyParser:
    """Terminal bytes -> key names: printable characters (letters lowercased), ENTER,
    BACKSPACE, ESC and the arrows UP DOWN LEFT RIGHT. Other escape sequences are dropped.

    Esc is also the first byte of every escape sequence (an arrow is ESC [ A); a trailing ESC
    is held until ESC_WAIT_S has passed with nothing after it, then it is the Esc key."""

    def __init__(self) -> None:
        self._buf = b""
        self._waiting_since: float | None = None

    def feed(self, data: bytes, now: float) -> list[str]:
        """The keys completed by `data` (b"" to let a pending ESC time out)."""
        self._buf += data
        keys: list[str] = []
        i = 0
        while i < len(self._buf):
            c = self._buf[i]
            if c != ESC:
                key = _NAMED.get(c) or (chr(c).lower() if 32 <= c < 127 else None)
                if key is not None:
                    keys.append(key)
                i += 1
                continue
            found = _escape(self._buf, i)
            if found is None:  # incomplete: wait a little for the rest
                if self._waiting_since is None:
                    self._waiting_since = now
                if now - self._waiting_since < ESC_WAIT_S:
                    break
                # nothing more came: a lone ESC is the key, a torn sequence is dropped
                found = ("ESC", i + 1) if i + 1 == len(self._buf) else (None, len(self._buf))
            self._waiting_since = None
            name, i = found
            if name is not None:
                keys.append(name)
        self._buf = self._buf[i:]
        return keys


def _escape(buf: bytes, i: int) -> tuple[str | None, int] | None:
    """The key of the escape sequence at buf[i] and the index past it; None if incomplete."""
    if i + 1 == len(buf):
        return None
    kind = buf[i + 1]
    if kind == ord("["):  # CSI: parameters, then one final byte in 0x40..0x7E
        for j in range(i + 2, len(buf)):
            if 0x40 <= buf[j] <= 0x7E:
                return (_ARROWS.get(buf[j]) if j == i + 2 else None), j + 1
        return None
    if kind == ord("O"):  # SS3: arrows in application mode
        return None if i + 2 == len(buf) else (_ARROWS.get(buf[i + 2]), i + 3)
    return "ESC", i + 1  # Esc, then another key


class KeyMotion:
    """Key presses -> the 7-D EE-delta action (see the module docstring for press semantics)."""

    def __init__(self, cfg: KeyboardConfig) -> None:
        self.cfg = cfg
        self.speed = cfg.speed
        self.closed = False  # gripper command: 0 open .. 1 closed
        self._moves: dict[int, tuple[float, float, float]] = {}  # dim -> (sign, from, until)

    def press(self, key: str, now: float) -> frozenset[str]:
        """Apply one key read at `now`; returns its operator events (often none)."""
        if key in MOTION:
            dim, sign = MOTION[key]
            held = self._moves.get(dim)
            start = held[1] if held and held[0] == sign else now  # a repeat extends the move
            self._moves[dim] = (sign, start, now + self.cfg.hold_s)
        elif key == GRIPPER:
            self.closed = not self.closed
        elif key in FASTER:
            self.speed = min(self.speed * 2, MAX_SPEED)
        elif key in SLOWER:
            self.speed = max(self.speed / 2, MIN_SPEED)
        return EVENT_KEYS.get(key, frozenset())

    def engaged(self, now: float) -> bool:
        return any(until > now for _, _, until in self._moves.values())

    def action(self, now: float, since: float) -> np.ndarray:
        """The motion commanded between `since` (the last read) and `now`: speed times the
        part of each move inside that interval (at most MAX_DT_S of it, so a stalled loop
        does not jump), limited to the env's per-step bounds. A move is never lost to a stall:
        its time is counted whenever the next read comes."""
        a = np.zeros(ACTION_LAYOUT.dim, np.float32)
        for dim, (sign, start, until) in list(self._moves.items()):
            overlap = min(now, until) - max(since, start)
            if overlap > 0:
                rate = self.speed * (ROT_PER_M if dim >= 3 else 1.0)
                a[dim] = sign * rate * min(overlap, MAX_DT_S)
            if until <= now:
                del self._moves[dim]
        a[ACTION_LAYOUT.dpos] = np.clip(a[ACTION_LAYOUT.dpos], -MAX_DPOS, MAX_DPOS)
        a[ACTION_LAYOUT.drot] = np.clip(a[ACTION_LAYOUT.drot], -MAX_DROT, MAX_DROT)
        a[ACTION_LAYOUT.gripper] = 1.0 if self.closed else 0.0
        return a


class KeyboardDevice(TeleopDevice):
    """The terminal on stdin (or `fd`) as a teleop device. See the module docstring."""

    name = "keyboard"

    def __init__(self, cfg: KeyboardConfig | None = None, fd: int | None = None,
                 out: TextIO | None = None) -> None:
        self.cfg = cfg or KeyboardConfig()
        self._fd, self._out = fd, out
        self._saved: list[Any] | None = None
        self._handlers: dict[int, Any] = {}
        self._parser = KeyParser()
        self._motion = KeyMotion(self.cfg)
        self._last = 0.0
        self._eof = False

    def connect(self) -> None:
        fd = sys.stdin.fileno() if self._fd is None else self._fd
        self._fd, self._out = fd, self._out or sys.stderr
        if not os.isatty(fd):
            raise TeleopError("--teleop keyboard reads keys from a terminal, and stdin is not "
                              "one; run it in a terminal (over SSH: ssh -t)")
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd, termios.TCSANOW)
        atexit.register(self.close)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._handlers[sig] = signal.signal(sig, self._on_signal)
        self._last = time.monotonic()
        self._out.write(HELP.format(hold=self.cfg.hold_s, speed=self._motion.speed))
        self._out.flush()

    def read(self, obs: Any) -> TeleopCommand:
        if self._saved is None:
            raise TeleopError("keyboard: read() before connect()")
        now = time.monotonic()
        events = set()
        speed = self._motion.speed
        for key in self._parser.feed(self._drain(), now):
            events |= self._motion.press(key, now)
        if self._eof:
            events.add("stop")  # the terminal went away: end, keeping what was recorded
        if self._motion.speed != speed:
            self._out.write(f"\r\x1b[Kkeyboard: speed {self._motion.speed:.3f} m/s\n")
        since, self._last = self._last, now
        return TeleopCommand(self._motion.action(now, since), frozenset(events),
                             self._motion.engaged(now))

    def _drain(self) -> bytes:
        data = b""
        assert self._fd is not None
        while not self._eof and select.select([self._fd], [], [], 0)[0]:
            try:
                chunk = os.read(self._fd, 1024)
            except OSError:  # EIO: the terminal was closed
                chunk = b""
            if not chunk:
                self._eof = True
            data += chunk
        return data

    def close(self) -> None:
        if self._saved is not None:
            try:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            except termios.error:
                pass  # the terminal is already gone: nothing left to restore
            self._saved = None
            atexit.unregister(self.close)
        for sig, handler in self._handlers.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        self._handlers = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Restore the terminal first, then unwind like an exit so callers' finally blocks run.
        self.close()
        raise SystemExit(128 + signum)
