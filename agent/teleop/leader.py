"""`--teleop leader:tcp://HOST:PORT`: a second arm, behind its own bridge server, whose motion
the follower (the env's arm) mirrors. The operator moves the leader by hand (or a program
does); this device only watches it.

Read-only. It connects as an observer (`BridgeClient.observe`: a `describe` request and the
observation stream, never a `hello`), so it cannot open a session on the leader, displace
whoever holds one, or send it a command; the leader's server keeps all its safety rules.

Mapping: pose error to an anchored target, not per-read deltas. At the first read (and after
the follower was reset, envs' new episode) the device anchors the leader's pose L0 and the
follower's F0; from then on the follower's target is F0 moved by the leader's motion since
(position F0 + (L - L0), rotation (L L0^-1) F0), and each action is the follower's error to
that target, limited to the env's per-step bounds. Why not the leader's delta since the last
read: deltas are open loop, so every step the follower lost (a clamp at MAX_DPOS when the hand
moved faster, the workspace box, a command refused or late, servo lag) would be lost for good
and the arms drift apart; the error closes the loop and the follower catches up. Why anchored
rather than the leader's absolute pose: the two arms need not start in the same pose (the
leader where the hand left it, the follower at its episode start), and an absolute target
would fling the follower across the table at the first step.

The gripper command (0 open .. 1 closed) is how far the leader's gripper is closed:
1 - opening / max opening (the leader's `describe`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from agent.teleop.base import TeleopCommand, TeleopDevice, TeleopError
from agent.teleop.common import RESET_JUMP_M, A, clamp_action, ee_of, follower_state
from envs.tabletop import MAX_DPOS, MAX_DROT
from hw_bridge.client import BridgeClient, ClientConfig
from hw_bridge.errors import BridgeError, Timeout
from sims.base import axis_angle_from_quat, quat_mul

CONJ = np.array([1.0, -1.0, -1.0, -1.0])  # wxyz conjugate = inverse of a unit quaternion
MOVED_M, MOVED_RAD, MOVED_GRIP = 1e-3, 1e-2, 1e-3  # leader motion that counts as "engaged"


def _limit(v: np.ndarray, bound: float) -> np.ndarray:
    """`v` scaled down (never up) so no component exceeds `bound`: the direction is kept,
    where clipping each axis alone would bend the path."""
    peak = float(np.abs(v).max())
    return v if peak <= bound else v * (bound / peak)


class LeaderArm(TeleopDevice):
    """A leader arm over the bridge (module docstring)."""

    name = "leader"

    def __init__(self, address: str, timeout_s: float = 1.0, stale_s: float = 0.5) -> None:
        """address: the leader's bridge server, tcp://HOST:PORT. timeout_s: how long connect
        waits for the first frame. stale_s: no new frame for this long is an error (the
        leader's server stopped or the network failed), never a silent hold."""
        if not address.startswith("tcp://") or ":" not in address[6:]:
            raise ValueError(f"leader takes its bridge address tcp://HOST:PORT (e.g. "
                             f"leader:tcp://127.0.0.1:5555), got {address!r}")
        self.address, self.timeout_s, self.stale_s = address, timeout_s, stale_s
        self.client: BridgeClient | None = None
        self.max_opening = 0.0
        self._frame: dict[str, Any] | None = None
        self._frame_at = 0.0
        self._anchor: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._last_follower: np.ndarray | None = None
        self._last_leader: tuple[np.ndarray, np.ndarray, float] | None = None
        #: the leader's (position, quaternion, opening) at the latest read
        self.leader: tuple[np.ndarray, np.ndarray, float] | None = None

    def connect(self) -> None:
        client = BridgeClient(self.address, ClientConfig(timeout_s=self.timeout_s),
                              name="motoken-leader-observer")
        try:
            info = client.observe()
            self._frame = client.observation(timeout_s=self.timeout_s)
        except BridgeError as e:
            client.close()
            raise TeleopError(f"cannot read the leader arm at {self.address}: {e}; is its "
                              f"bridge server running (agent bridge serve --robot ... --bind "
                              f"{self.address})?") from None
        self.max_opening = float(info["robot"]["max_gripper_opening"])
        self._frame_at = time.monotonic()
        self.client = client

    def leader_pose(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The newest leader (position, quaternion wxyz, gripper opening), waiting at most
        ~1 ms for a frame newer than the last one."""
        if self.client is None or self._frame is None:
            raise TeleopError("leader arm not connected; call connect() first")
        try:
            self._frame = self.client.observation(after_seq=self._frame["seq"],
                                                  timeout_s=0.001)
            self._frame_at = time.monotonic()
        except Timeout:
            quiet = time.monotonic() - self._frame_at
            if quiet > self.stale_s:
                raise TeleopError(f"no frame from the leader arm at {self.address} for "
                                  f"{quiet:.2f} s (limit {self.stale_s} s): its server stopped "
                                  f"or the network failed; the follower holds") from None
        return ee_of(np.asarray(self._frame["state"], dtype=np.float64))

    def read(self, obs: Any) -> TeleopCommand:
        l_pos, l_quat, l_open = self.leader = self.leader_pose()
        f_pos, f_quat, _ = ee_of(follower_state(obs))
        reset = (self._last_follower is not None
                 and float(np.linalg.norm(f_pos - self._last_follower)) > RESET_JUMP_M)
        if self._anchor is None or reset:
            self._anchor = (l_pos.copy(), l_quat.copy(), f_pos.copy(), f_quat.copy())
        self._last_follower = f_pos.copy()
        l0_pos, l0_quat, f0_pos, f0_quat = self._anchor
        target_pos = f0_pos + (l_pos - l0_pos)
        target_quat = quat_mul(quat_mul(l_quat, l0_quat * CONJ), f0_quat)
        action = np.zeros(A.dim, np.float32)
        action[A.dpos] = _limit(target_pos - f_pos, MAX_DPOS)
        action[A.drot] = _limit(axis_angle_from_quat(quat_mul(target_quat, f_quat * CONJ)),
                                MAX_DROT)
        action[A.gripper] = 1.0 - l_open / self.max_opening
        engaged = self._moved(l_pos, l_quat, l_open)
        return TeleopCommand(clamp_action(action), frozenset(), engaged=engaged)

    def _moved(self, pos: np.ndarray, quat: np.ndarray, opening: float) -> bool:
        last, self._last_leader = self._last_leader, (pos.copy(), quat.copy(), opening)
        if last is None:
            return False
        turned = float(np.linalg.norm(axis_angle_from_quat(quat_mul(quat, last[1] * CONJ))))
        return bool(np.linalg.norm(pos - last[0]) > MOVED_M or turned > MOVED_RAD
                    or abs(opening - last[2]) > MOVED_GRIP)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()  # an observer has no session: no bye is sent
        self.client = None
