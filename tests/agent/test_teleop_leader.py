"""Leader-arm runs: two sim arms behind two real bridge servers (subprocesses, loopback); a
test client moves the leader (the human hand's stand-in) and the follower is driven through
BridgeEnv by `--teleop leader:tcp://...`.

`agent record --env bridge:... --teleop leader:...` is the default test: the dataset it writes
must hold the mirrored motion. The slow test drives the same loop by hand to measure the lag.

Tolerance stated here (and in the closing note), on the tool paths relative to where each arm
was when the device anchored: the follower's path stays within 6 mm of the leader's (max; 3 mm
RMS) and it ends within 2 mm of the leader once the hand stops; in the slow test, the follower
is also never more than 20 mm from where the leader was two control steps earlier. Measured on
the loaded 2-core dev machine (a few runs, noisy): 3.1 mm max / 1.7 mm RMS off the path, 7.9
mm at two steps' lag, 0.2-0.4 mm at the end. Print them with `pytest -s`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from agent.cli import main
from agent.episode_buffer import EpisodeBuffer
from agent.recorder import dataset_spec
from agent.teleop.base import TeleopError
from agent.teleop.leader import LeaderArm
from agent.teleop.registry import make_device
from dataset import LeRobotDatasetReader
from dataset.video import VideoConfig
from dataset.writer import DatasetWriter
from envs.bridge import BridgeEnv
from envs.types import Observation
from hw_bridge.client import BridgeClient
from hw_bridge.errors import NotConnected
from hw_bridge.kinematics import make_kinematics
from sims.base import axis_angle_from_quat, quat_from_axis_angle, quat_mul
from tests.hw_bridge.conftest import ROOT, start_server_process

STEPS = 60  # 3 s at 20 Hz: one loop of the hand's path
CONJ = np.array([1.0, -1.0, -1.0, -1.0])


@pytest.fixture
def two_arms():
    procs = []
    try:
        # A 400 ms watchdog, not 100: this suite shares 2 cores with other work, and a test
        # process starved of the GIL for 100 ms would only measure that load (the watchdog
        # itself is tested in tests/hw_bridge).
        for _ in range(2):
            procs.append(start_server_process("--robot", "sim:pick_place",
                                              "--stream-rate", "30", "--watchdog-ms", "400"))
        yield procs[0][1], procs[1][1]  # leader, follower endpoints
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(timeout=5)


class Hand(threading.Thread):
    """Moves the leader along a closed loop (16 cm x 16 cm x 5 cm, a half turn of yaw and
    back) at 20 Hz through its own bridge session, and closes its gripper half way."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.client = BridgeClient(endpoint)
        self.client.connect()
        self.kin = make_kinematics(self.client.info["robot"]["kinematics"])
        self.start_state = self.client.observation()["state"].astype(float)
        self.go = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            q, p0, quat0 = self.start_state[:6], self.start_state[6:9], self.start_state[9:13]
            self.go.wait()
            for i in range(STEPS + 20):
                w = 2 * np.pi * min(i, STEPS) / STEPS
                pos = p0 + np.array([0.08 * np.sin(w), 0.08 * (1 - np.cos(w)),
                                     0.05 * np.sin(w / 2)])
                quat = quat_mul(quat_from_axis_angle(np.array([0, 0, 0.5 * np.sin(w / 2)])),
                                quat0)
                ack = self.client.command(self.kin.solve_ik(pos, quat, q),
                                          1.0 if i > STEPS // 2 else 0.0)
                q = np.array(ack["q"])
                time.sleep(0.05)
        except Exception as e:  # reported by the test, not lost in a thread
            self.error = e


def test_agent_record_with_a_leader_arm_writes_the_mirrored_motion(two_arms, tmp_path, capsys):
    leader_ep, follower_ep = two_arms
    path_file = tmp_path / "leader_path.npy"
    hand = subprocess.Popen([sys.executable, str(Path(__file__).with_name("leader_hand.py")),
                             leader_ep, follower_ep, str(path_file)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    out = tmp_path / "mirror"
    try:
        assert hand.stdout.readline().strip() == "READY"
        code = main(["record", "--env", f"bridge:{follower_ep}", "--teleop",
                     f"leader:{leader_ep}", "--task", "mirror the leader arm", "--episodes", "1",
                     "--out", str(out), "--episode-s", "6", "--reset-s", "0",
                     "--vcodec", "h264"])
        assert hand.wait(timeout=30) == 0
    finally:
        hand.kill()
    said = capsys.readouterr().out
    # One take, kept: a take the env ended (e.g. the follower's session lost to its watchdog on
    # an overloaded machine) would be discarded and recorded again after the hand stopped.
    assert code == 0 and "kept (time up)" in said and "0 takes discarded" in said, said
    ds = LeRobotDatasetReader(out)
    ep = ds.episode(0)
    assert ds.num_episodes == 1 and ds.recording["teleop"] == f"leader:{leader_ep}"
    assert ep.intervention is None and ep.capture_time is not None
    lead = np.load(path_file)
    d_lead = lead[:, :3] - lead[0, :3]  # the device anchored on the leader at rest here
    d_foll = ep.state[:, 6:9].astype(float) - ep.state[0, 6:9]
    assert np.ptp(d_lead, axis=0)[:2].min() > 0.12, "the hand did not move the leader"
    assert np.ptp(d_foll, axis=0)[:2].min() > 0.12, "the follower did not follow"
    off_path = np.array([_distance_to_path(p, d_lead) for p in d_foll])
    print(f"agent record: off path max {1e3 * off_path.max():.1f} mm rms "
          f"{1e3 * np.sqrt((off_path ** 2).mean()):.1f} mm; end "
          f"{1e3 * np.linalg.norm(d_foll[-1] - d_lead[-1]):.2f} mm")
    assert off_path.max() < 0.006 and np.sqrt((off_path ** 2).mean()) < 0.003, off_path
    assert np.linalg.norm(d_foll[-1] - d_lead[-1]) < 0.002
    assert ep.state[0, -1] > 0.07 and ep.state[-1, -1] < 0.005  # closed as the leader did
    assert np.abs(ep.action[:, :3]).max() <= 0.05 + 1e-6  # the env's bounds, as applied


@pytest.mark.slow
def test_follower_mirrors_the_leader_step_by_step(two_arms, tmp_path):
    leader_ep, follower_ep = two_arms
    hand = Hand(leader_ep)
    device = make_device(f"leader:{leader_ep}")
    assert isinstance(device, LeaderArm)
    device.connect()
    env = BridgeEnv(follower_ep)  # last: its session's watchdog runs from here
    try:
        obs, info = env.reset(seed=0)
        writer = DatasetWriter.create(tmp_path / "ds", dataset_spec(env, VideoConfig()))
        buf = EpisodeBuffer(writer.spec, writer.staging)
        hand.start()
        hand.go.set()
        leader, follower = [], []
        for _ in range(STEPS + 20):
            o = Observation.from_env(obs, info)
            cmd = device.read(o)
            obs, _, terminated, truncated, info = env.step(cmd.action)
            assert not truncated, info.get("failure")
            buf.add(o, info["applied_action"], info)
            leader.append(np.concatenate([device.leader[0], device.leader[1],
                                          [device.leader[2]]]))
            follower.append(obs["state"][6:].astype(float))
        hand.join(timeout=5)
        assert hand.error is None, hand.error
        # Read-only: the hand's session on the leader was never displaced, and the device
        # has no session to command the leader with.
        assert hand.client.session_error is None
        assert hand.client.status()["session_open"]
        with pytest.raises(NotConnected):
            device.client.command(hand.start_state[:6], 0.0)
        writer.commit(buf.record(seed=0, success=False))
        writer.close()
    finally:
        device.close()
        hand.client.close()
        env.close()

    lead, foll = np.array(leader), np.array(follower)
    d_lead, d_foll = lead[:, :3] - lead[0, :3], foll[:, :3] - foll[0, :3]
    assert np.ptp(d_lead, axis=0)[:2].min() > 0.12, "the hand did not move the leader"
    off_path = np.array([_distance_to_path(p, d_lead) for p in d_foll])
    lag = np.linalg.norm(d_foll[2:] - d_lead[:-2], axis=1)  # where the leader was 2 steps ago
    print(f"off path max {1e3 * off_path.max():.1f} mm rms "
          f"{1e3 * np.sqrt((off_path ** 2).mean()):.1f} mm; 2-step lag max "
          f"{1e3 * lag.max():.1f} mm; end {1e3 * np.linalg.norm(d_foll[-1] - d_lead[-1]):.2f} mm")
    assert off_path.max() < 0.006 and np.sqrt((off_path ** 2).mean()) < 0.003, off_path
    assert lag.max() < 0.02, lag
    assert np.linalg.norm(d_foll[-1] - d_lead[-1]) < 0.002
    # Orientation: the follower turned as the leader did, relative to each one's start.
    turn_l = quat_mul(lead[-1, 3:7], lead[0, 3:7] * CONJ)
    turn_f = quat_mul(foll[-1, 3:7], foll[0, 3:7] * CONJ)
    assert np.linalg.norm(axis_angle_from_quat(quat_mul(turn_f, turn_l * CONJ))) < 0.02
    assert foll[-1, 7] < 0.005 and foll[0, 7] > 0.07  # the gripper closed with the leader's

    ds = LeRobotDatasetReader(tmp_path / "ds")
    ep = ds.episode(0)
    assert ds.num_episodes == 1 and ep.length == STEPS + 20 and ep.intervention is None
    assert np.array_equal(ep.action, np.stack(buf.action))  # what the server applied
    assert np.abs(ep.action[:, :3]).max() <= 0.05 + 1e-6
    assert ds.frames(0, ds.camera_keys[0]).shape[0] == STEPS + 20


def _distance_to_path(point: np.ndarray, path: np.ndarray) -> float:
    """Distance from `point` to the polyline through `path` (N, 3)."""
    a, b = path[:-1], path[1:]
    ab = b - a
    t = np.clip(((point - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(a + t[:, None] * ab - point, axis=1).min())


def test_an_absent_leader_is_a_teleop_error_that_says_what_to_check():
    device = LeaderArm("tcp://127.0.0.1:9", timeout_s=0.2)  # nothing listens on port 9
    with pytest.raises(TeleopError, match="is its bridge server running"):
        device.connect()
