"""Robot-side motion limits: what a command may ask for and how the setpoint may move.

Everything here runs on the server, whatever the client sends. A command's joint target is
clamped to the joint limits, then to `max_step` from the current setpoint (a far target is
approached a step at a time, never jumped to), then pulled back along the segment until the
tool centre point lies inside the workspace box. Every control period the setpoint moves
towards that goal with per-joint velocity and acceleration limits; a stop (watchdog, e-stop,
fault, new session) brings the setpoint's velocity to zero at `max_accel` and holds there,
never passing the last accepted goal on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Fk = Callable[[np.ndarray], np.ndarray]  # joint angles -> TCP position (3,), world frame
WORKSPACE_BISECTIONS = 10  # pulls a goal back onto the box boundary to within 0.1% of a step


@dataclass(frozen=True)
class SafetyLimits:
    """Limits the server enforces. Defaults suit the mk6 sim arm at 20 Hz commands.

    Attributes:
        max_velocity: rad/s per joint (a cobot's usual joint speed cap is ~pi rad/s).
        max_accel: rad/s^2 per joint, for speeding up and for stops: from full speed a stop
            takes max_velocity / max_accel = 40 ms and max_velocity^2 / (2 max_accel) = 0.04 rad.
        max_step: rad; the furthest a command's goal may lie from the current setpoint, per
            joint. It is also the bound on how far the setpoint moves after the last command.
        watchdog_s: no valid command or heartbeat for this long -> stop, hold, session ends.
        joint_margin: rad kept clear of each hard joint limit.
        workspace_low/high: box (m, world frame) the tool centre point must stay in.
        max_lifetime_s: a command's deadline may be at most this long after its send time.
        clock_tolerance_s: a send time this far in the server's future is refused (bad clock).
    """

    max_velocity: float = 2.0
    max_accel: float = 50.0
    max_step: float = 0.2
    watchdog_s: float = 0.1
    joint_margin: float = 0.02
    workspace_low: tuple[float, float, float] = (0.10, -0.50, 0.010)
    workspace_high: tuple[float, float, float] = (0.85, 0.50, 0.65)
    max_lifetime_s: float = 1.0
    clock_tolerance_s: float = 0.05

    def __post_init__(self) -> None:
        for name in ("max_velocity", "max_accel", "max_step", "watchdog_s", "max_lifetime_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SafetyLimits.{name} must be > 0, got {getattr(self, name)}")
        if not all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high,
                                             strict=True)):
            raise ValueError(f"workspace_low {self.workspace_low} must be below "
                             f"workspace_high {self.workspace_high} on every axis")

    def inside(self, pos: np.ndarray) -> bool:
        lo, hi = self.workspace_low, self.workspace_high
        return all(lo[i] <= pos[i] <= hi[i] for i in range(3))


class Governor:
    """The setpoint generator: clamps goals and moves the setpoint within the limits."""

    def __init__(self, limits: SafetyLimits, lower: np.ndarray, upper: np.ndarray,
                 fk: Fk) -> None:
        self.limits = limits
        self.lower = np.asarray(lower, float) + limits.joint_margin
        self.upper = np.asarray(upper, float) - limits.joint_margin
        self.fk = fk
        self.setpoint = np.zeros(len(lower))
        self.velocity = np.zeros(len(lower))
        self.goal = np.zeros(len(lower))
        self.stopping = True

    def hold_at(self, q: np.ndarray) -> None:
        """Take over a still arm at q (activation, reset): goal = setpoint = q, no motion."""
        self.setpoint = np.clip(np.asarray(q, float), self.lower, self.upper)
        self.goal = self.setpoint.copy()
        self.velocity[:] = 0.0
        self.stopping = True

    def stop(self) -> None:
        """Controlled stop: decelerate at max_accel, then hold wherever that ends."""
        self.stopping = True

    @property
    def stopped(self) -> bool:
        return bool(not np.any(self.velocity))

    def clamp(self, q: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """The goal a finite joint target becomes, and which limits changed it."""
        flags = []
        goal = np.minimum(np.maximum(q, self.lower), self.upper)  # np.clip is 5x slower at n=6
        if (goal != q).any():
            flags.append("joint_limit")
        step = goal - self.setpoint
        m = self.limits.max_step
        if (np.abs(step) > m).any():
            flags.append("step")
            goal = self.setpoint + np.minimum(np.maximum(step, -m), m)
        if not self.limits.inside(self.fk(goal)):
            flags.append("workspace")
            goal = self._pull_inside(goal)
        return goal, flags

    def _pull_inside(self, goal: np.ndarray) -> np.ndarray:
        if not self.limits.inside(self.fk(self.setpoint)):
            return self.setpoint.copy()  # already outside: no command may move it further
        lo, hi = 0.0, 1.0  # largest fraction of the way to `goal` that stays inside the box
        for _ in range(WORKSPACE_BISECTIONS):
            mid = 0.5 * (lo + hi)
            if self.limits.inside(self.fk(self.setpoint + mid * (goal - self.setpoint))):
                lo = mid
            else:
                hi = mid
        return self.setpoint + lo * (goal - self.setpoint)

    def accept(self, goal: np.ndarray) -> None:
        """Follow a goal returned by `clamp`."""
        self.goal = goal
        self.stopping = False

    def tick(self, dt: float) -> np.ndarray:
        """Advance the setpoint by dt seconds; return it."""
        a, vmax = self.limits.max_accel, self.limits.max_velocity
        if self.stopping:
            speed = np.maximum(np.abs(self.velocity) - a * dt, 0.0)
            v = np.sign(self.velocity) * speed
        else:
            err = self.goal - self.setpoint
            # Fastest speed from which braking at `a` per period still stops on the goal (the
            # discrete form of sqrt(2 a |err|), so the last period before arrival is slow too).
            ad = a * dt
            v_brake = ad * (np.sqrt(0.25 + 2.0 * np.abs(err) / (ad * dt)) - 0.5)
            v_want = np.sign(err) * np.minimum(vmax, v_brake)
            v = np.clip(v_want, self.velocity - a * dt, self.velocity + a * dt)
        nxt = self.setpoint + v * dt
        err = self.goal - self.setpoint
        # Arrived, or (stopping) about to pass the last accepted goal: end on it. A stop brakes
        # at `a` from wherever the last goal's profile left it (a goal moved closer than the
        # braking distance, a late period run at once), so braking alone could carry the
        # setpoint a few mrad past a goal the server accepted, and past max_step.
        arrived = np.abs(v * dt) >= np.abs(err)
        if self.stopping:
            arrived &= v * err > 0.0  # moving away from the goal: braking alone ends that
        nxt = np.where(arrived, self.goal, nxt)
        v = np.where(arrived, 0.0, v)
        if not self.limits.inside(self.fk(nxt)) and self.limits.inside(self.fk(self.setpoint)):
            # The joint-space path left the box between two inside points: stop here. (The
            # velocity must read zero too, or `stopped` never comes and a reset stays `busy`.)
            self.velocity[:] = 0.0
            self.goal = self.setpoint.copy()
            self.stopping = True
            return self.setpoint
        self.setpoint = np.clip(nxt, self.lower, self.upper)
        self.velocity = v
        if self.stopping and self.stopped:
            self.goal = self.setpoint.copy()
        return self.setpoint
