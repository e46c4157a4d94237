"""The robot-side state machine: sessions, modes, command checks and the per-period tick.

No sockets here: `BridgeServer` feeds decoded requests to `handle` and calls `tick` once per
arm period, from one thread, so every decision below is made in one place and in order.

Modes: inactive (holding, waiting for a command) -> active (following commands) -> hold (a
controlled stop after the watchdog fired or the session ended) -> active again only on a new
command from a session opened after the stop. estop and fault are latched until `reset`.
Every session end (watchdog, bye, a newer hello) is logged and its reason kept for the client.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections import Counter
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from hw_bridge import wire
from hw_bridge.cameras.rig import CameraRig
from hw_bridge.drivers.base import ArmState, Driver, DriverState
from hw_bridge.errors import DriverFault, ProtocolError, Rejected
from hw_bridge.safety import Governor

log = logging.getLogger(__name__)
JITTER_WINDOW = 10_000  # periods of loop timing kept for the status report
ENDED_KEPT = 16  # ended sessions whose reason an `unknown_session` reply still quotes


class Mode(StrEnum):
    INACTIVE = "inactive"
    ACTIVE = "active"
    HOLD = "hold"
    ESTOP = "estop"
    FAULT = "fault"


@dataclass
class Session:
    id: str
    last_seq: int = -1
    last_rx: float = 0.0


class ArmController:
    """Owns the driver and the governor; every request and every period goes through here."""

    def __init__(self, driver: Driver, control_hz: float, rig: CameraRig | None = None) -> None:
        self.driver = driver
        self.rig = rig or CameraRig([])
        self.limits = driver.limits
        self.control_hz = control_hz
        robot = driver.robot
        self.governor = Governor(self.limits, np.array(robot.joint_lower),
                                 np.array(robot.joint_upper), driver.tcp_position)
        self.mode, self.reason = Mode.INACTIVE, "waiting for a session"
        self.session: Session | None = None
        self.gripper = 0.0
        self.episode: dict[str, Any] = driver.current_episode()  # what connect() placed
        self.stream: dict[str, Any] = {}  # endpoint and rate, set by the server once bound
        self.arm: ArmState = driver.read()
        self.governor.hold_at(self.driver.hold_target(self.arm))
        self.counts: Counter[str] = Counter()
        self.events = {"last_rx": 0.0, "hold": 0.0, "stopped": 0.0}
        # Why each recent session ended (id -> reason): a client whose session the watchdog
        # ended reads it in the next reply's error and in status.session_end.
        self.ended: dict[str, str] = {}
        self.session_end: dict[str, Any] = {}
        self.tick_dt = np.zeros(JITTER_WINDOW)  # s between consecutive tick starts
        self.n_ticks = 0
        self._last_tick = 0.0

    # -- requests -------------------------------------------------------------------------
    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Reply to one decoded request; errors become `error` replies, never exceptions."""
        ref = msg.get("id")
        try:
            wire.check_request(msg)
            reply = getattr(self, f"_on_{msg['type']}")(msg, time.monotonic())
        except (ProtocolError, Rejected) as exc:
            self.counts[f"rejected.{exc.code}"] += 1
            return wire.error_reply(exc.code, str(exc).removeprefix(f"{exc.code}: "), ref)
        except DriverFault as exc:
            self._fault(str(exc))
            return wire.error_reply("fault", str(exc), ref)
        return reply

    def _session(self, msg: dict[str, Any]) -> Session:
        if self.session is None or msg["session"] != self.session.id:
            why = self.ended.get(msg["session"])
            if why is not None:
                raise Rejected("unknown_session", f"session {msg['session']!r} ended: {why}; "
                               "send hello")
            raise Rejected("unknown_session", f"session {msg['session']!r} is not the open "
                           "session (ended, replaced or never opened); send hello")
        return self.session

    def _on_hello(self, msg: dict[str, Any], now: float) -> dict[str, Any]:
        if self.session is not None:
            log.warning("hello from %r replaces the open session", msg["client"])
        self._end_session("new session opened")
        self.session = Session(secrets.token_hex(8), last_rx=now)
        self.events["last_rx"] = now
        log.info("session %s opened by %r", self.session.id, msg["client"])
        return wire.reply("welcome", msg["id"], session=self.session.id, server_time=now,
                          **self.describe())

    def _on_command(self, msg: dict[str, Any], now: float) -> dict[str, Any]:
        s = self._session(msg)
        self._check_fresh(s, msg, now)
        if self.mode in (Mode.ESTOP, Mode.FAULT):
            raise Rejected(self.mode.value, f"{self.reason}; send reset first")
        q = self._check_target(msg["q"], msg["gripper"])
        goal, flags = self.governor.clamp(q)
        gripper = min(max(float(msg["gripper"]), 0.0), 1.0)
        if gripper != msg["gripper"]:
            flags.append("gripper")
        if self.mode != Mode.ACTIVE:
            self.driver.activate()
            self.mode, self.reason = Mode.ACTIVE, "following commands"
        self.governor.accept(goal)
        self.gripper = gripper
        self._alive(s, now)
        self.counts["executed"] += 1
        return wire.reply("ack", msg["id"], seq=msg["seq"], q=goal, gripper=gripper,
                          clamped=flags, t=now, mode=self.mode.value)

    def _check_fresh(self, s: Session, msg: dict[str, Any], now: float) -> None:
        if msg["seq"] <= s.last_seq:
            raise Rejected("stale_seq", f"seq {msg['seq']} <= last seen {s.last_seq} "
                           "(duplicate or reordered)")
        s.last_seq = msg["seq"]  # consumed even if rejected below: nothing older may run later
        if msg["deadline"] < now:
            raise Rejected("expired", f"deadline passed {1e3 * (now - msg['deadline']):.1f} ms "
                           "ago")
        if msg["sent"] > now + self.limits.clock_tolerance_s:
            raise Rejected("bad_time", f"sent {msg['sent']:.3f} is in the server's future "
                           f"(now {now:.3f}); resynchronise the clock offset")
        if msg["deadline"] - msg["sent"] > self.limits.max_lifetime_s:
            raise Rejected("bad_deadline", f"deadline - sent = {msg['deadline'] - msg['sent']:.3f}"
                           f" s; at most {self.limits.max_lifetime_s} s allowed")

    def _check_target(self, q: np.ndarray, gripper: float) -> np.ndarray:
        n = self.driver.robot.n_joints
        if q.shape != (n,) or q.dtype.kind != "f":
            raise Rejected("bad_target", f"q must be float ({n},), got {q.dtype} {q.shape}")
        if not (np.isfinite(q).all() and math.isfinite(gripper)):
            raise Rejected("bad_target", f"non-finite target q={q.tolist()} gripper={gripper}")
        return q.astype(np.float64)

    def _on_heartbeat(self, msg: dict[str, Any], now: float) -> dict[str, Any]:
        self._alive(self._session(msg), now)
        return wire.reply("heartbeat", msg["id"], server_time=now, mode=self.mode.value,
                          reason=self.reason)

    def _on_estop(self, msg: dict[str, Any], now: float) -> dict[str, Any]:
        self.governor.stop()
        self.mode, self.reason = Mode.ESTOP, f"e-stop: {msg['reason'] or 'no reason given'}"
        self.events["hold"] = now
        log.warning("%s", self.reason)
        return self._on_status(msg, now)

    def _on_reset(self, msg: dict[str, Any], now: float) -> dict[str, Any]:
        s = self._session(msg)
        if msg["seq"] <= s.last_seq:
            raise Rejected("stale_seq", f"reset seq {msg['seq']} <= last seen {s.last_seq}")
        if not self.governor.stopped:
            self.governor.stop()
            raise Rejected("busy", "arm is stopping before the reset; retry in ~50 ms")
        s.last_seq = msg["seq"]
        self._alive(s, now)
        self.driver.clear_fault()
        seed = msg.get("seed")
        self.episode = self.driver.reset_episode(seed if isinstance(seed, int) else None)
        self.arm = self.driver.read()
        self.governor.hold_at(self.driver.hold_target(self.arm))
        self.mode, self.reason = Mode.INACTIVE, "reset: holding, waiting for a command"
        return wire.reply("reset", msg["id"], episode=self.episode, mode=self.mode.value)

    def _on_status(self, msg: dict[str, Any], now: float) -> dict[str, Any]:
        return wire.reply("status", msg.get("id"), **self.status(now))

    def _on_describe(self, msg: dict[str, Any], now: float) -> dict[str, Any]:
        # The welcome's facts without a session: an observer (a leader arm's reader, a
        # monitor) learns the robot and the stream endpoint and never displaces the driver.
        return wire.reply("describe", msg["id"], server_time=now, **self.describe())

    def _on_bye(self, msg: dict[str, Any], now: float) -> dict[str, Any]:
        self._session(msg)
        self._end_session("client said bye")
        return wire.reply("bye", msg["id"])

    # -- session bookkeeping --------------------------------------------------------------
    def _alive(self, s: Session, now: float) -> None:
        s.last_rx = now
        self.events["last_rx"] = now

    def _end_session(self, why: str) -> None:
        s, self.session = self.session, None
        self.governor.stop()
        if self.mode == Mode.ACTIVE:
            self.mode, self.reason = Mode.HOLD, f"stopped and holding: {why}"
            self.events["hold"] = time.monotonic()
            self.driver.state = DriverState.INACTIVE
        elif self.mode in (Mode.INACTIVE, Mode.HOLD) and s is not None:
            self.reason = f"holding, no session: {why}"  # estop/fault keep their latched reason
        if s is None:
            return
        self.ended[s.id] = why
        if len(self.ended) > ENDED_KEPT:
            del self.ended[next(iter(self.ended))]
        self.session_end = {"session": s.id, "reason": why, "t": time.monotonic()}
        log.log(logging.WARNING if why.startswith("watchdog") else logging.INFO,
                "session %s ended (mode %s): %s", s.id, self.mode.value, why)

    def _fault(self, why: str) -> None:
        self.governor.stop()
        self.governor.velocity[:] = 0.0  # the driver holds by itself; no more setpoints go out
        self.driver.hold()
        self.driver.state = DriverState.FAULT
        if self.mode != Mode.FAULT:
            self.events["hold"] = self.events["stopped"] = time.monotonic()
            log.error("driver fault, holding until reset: %s", why)
        self.mode, self.reason = Mode.FAULT, f"driver fault: {why}"

    # -- the arm's period -----------------------------------------------------------------
    def tick(self, n: int, now: float) -> None:
        """Run n elapsed arm periods: watchdog, setpoint, write, let the arm run, read."""
        self._record_tick(now)
        s = self.session
        if s is not None and now - s.last_rx > self.limits.watchdog_s:
            self._end_session(f"watchdog: no command or heartbeat for "
                              f"{1e3 * (now - s.last_rx):.0f} ms "
                              f"(limit {1e3 * self.limits.watchdog_s:.0f} ms)")
        if self.mode == Mode.FAULT:
            self._tick_fault(n)
            return
        try:
            setpoint = self.governor.tick(n * self.driver.period)
            self.driver.write(setpoint, self.gripper)
            self.driver.wait_period(n)
            self.arm = self.driver.read()
        except DriverFault as exc:
            self._fault(str(exc))
            return
        if self.events["stopped"] < self.events["hold"] and self.governor.stopped:
            self.events["stopped"] = now

    def _tick_fault(self, n: int) -> None:
        # Nothing is written in fault; a sim's world keeps running with the held servo targets.
        try:
            self.driver.wait_period(n)
        except DriverFault as exc:
            self.counts["fault_tick_errors"] += 1
            if self.counts["fault_tick_errors"] == 1:
                log.error("driver still failing while in fault: %s", exc)

    def _record_tick(self, now: float) -> None:
        if self._last_tick:
            self.tick_dt[self.n_ticks % JITTER_WINDOW] = now - self._last_tick
            self.n_ticks += 1
        self._last_tick = now

    # -- reports --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The handshake's static facts: robot, cameras, rates, limits, episode."""
        r, d = self.driver.robot, self.driver
        cameras = {**d.cameras, **self.rig.sizes()}
        return {"protocol": wire.PROTOCOL_VERSION,
                "robot": {"name": r.name, "kinematics": d.kinematics,
                          "joint_names": list(r.joint_names), "joint_lower": list(r.joint_lower),
                          "joint_upper": list(r.joint_upper), "home": list(r.home_qpos),
                          "max_gripper_opening": r.max_gripper_opening},
                "cameras": {name: list(size) for name, size in cameras.items()},
                "camera_fps": {name: self.rig.fps().get(name) or self.stream.get("hz")
                               for name in cameras},
                "control_hz": self.control_hz, "arm_hz": 1.0 / d.period,
                "limits": asdict(self.limits), "episode": self.episode, "stream": self.stream}

    def status(self, now: float) -> dict[str, Any]:
        """Live state for `status` replies, the stream and the benchmarks."""
        g = self.governor
        k = min(self.n_ticks, JITTER_WINDOW)
        dt = self.tick_dt[:k] * 1e3
        jitter = ({"p50_ms": float(np.percentile(dt, 50)), "p99_ms": float(np.percentile(dt, 99)),
                   "max_ms": float(dt.max()), "n": int(self.n_ticks)} if k else {})
        return {"mode": self.mode.value, "reason": self.reason, "server_time": now,
                "session_open": self.session is not None, "q": self.arm.q,
                "setpoint": g.setpoint, "velocity": g.velocity, "goal": g.goal,
                "stopped": g.stopped, "gripper": self.gripper, "events": dict(self.events),
                "counts": dict(self.counts), "period_ms": jitter,
                "session_end": dict(self.session_end), "cameras": self.rig.health()}
