"""BridgeEnv with cameras attached on the robot side: spaces from the handshake, capture times in
info, stale frames flagged, a dead camera ending the episode (never an old frame passed off)."""

import time

import numpy as np
import pytest

import envs
from hw_bridge.cameras import CameraRig, Freshness
from sims.robots import CameraSpec
from tests.hw_bridge.camera_fakes import StallingCamera
from tests.hw_bridge.conftest import Running
from tests.hw_bridge.fakes import FlakyDriver


@pytest.fixture
def camera_env():
    cam = StallingCamera(CameraSpec("side", 24, 40, 30.0, "test:stall"))
    r = Running(FlakyDriver("pick_place", image_size=(32, 32)),
                CameraRig([cam], Freshness(stale_periods=3, timeout_s=0.4)), stream_hz=30.0)
    env = envs.make(f"bridge:{r.endpoint}")
    yield env, cam
    env.close()
    r.close()


def test_extra_cameras_are_in_the_space_and_their_capture_times_in_info(camera_env):
    env, _ = camera_env
    assert env.observation_space["images"]["side"].shape == (24, 40, 3)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert set(info["camera_time"]) == {"front", "wrist", "side"}
    first = info["camera_time"]["side"]
    for _ in range(3):
        before = info["camera_time"]["side"]
        obs, _, _, truncated, info = env.step(np.zeros(7, np.float32))
        assert not truncated and env.observation_space.contains(obs)
        # on this workstation's clock: taken within the last few periods, never older than the
        # last step's (the camera's clock is not the control loop's: a 50 ms step can end before
        # a late 33 ms capture, so "newer" is asserted over the three steps, below)
        assert time.monotonic() - 0.2 < info["camera_time"]["side"] <= time.monotonic()
        assert info["camera_time"]["side"] >= before
        assert info["camera_stale"] == {"front": False, "wrist": False, "side": False}
        assert info["camera_seq"]["side"] > 0
    assert info["camera_time"]["side"] > first  # three steps (150 ms) saw new images


def test_a_stalled_camera_is_flagged_then_ends_the_episode(camera_env):
    env, cam = camera_env
    env.reset(seed=0)
    cam.stall.set()
    assert cam.blocked.wait(1.0)
    time.sleep(0.2)  # > 3 periods at 30 fps, < the 0.4 s timeout
    _, _, _, truncated, info = env.step(np.zeros(7, np.float32))
    assert info["camera_stale"]["side"] and not info["camera_stale"]["front"]
    assert not truncated
    time.sleep(0.4)
    _, _, _, truncated, info = env.step(np.zeros(7, np.float32))
    assert truncated and "camera 'side'" in info["failure"] and "no frame for" in info["failure"]
