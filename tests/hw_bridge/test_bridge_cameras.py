"""Cameras on the robot side: the --camera grammar, OpenCV reading real video files, a stalled
camera flagged stale then dead without slowing the arm, RealSense at its library boundary, and
`agent bridge cameras`. Servers are real (ZeroMQ on loopback, MuJoCo arm); videos are real
files written with PyAV and read by real OpenCV."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from hw_bridge.cameras import CameraRig, Freshness, make_camera, parse_camera, parse_cameras
from hw_bridge.cameras.base import RECENT_FRAMES, Camera
from hw_bridge.cameras.listing import NONE_FOUND
from hw_bridge.cameras.opencv import OpenCVCamera
from hw_bridge.cameras.realsense import RealSenseCamera, find_realsense
from hw_bridge.cameras.rig import EARLIER_ENTRY_OVERHEAD
from hw_bridge.cli import main
from hw_bridge.client import BridgeClient, ClientConfig
from hw_bridge.errors import CameraOpenError, CameraSpecError
from sims.robots import CameraSpec
from tests.hw_bridge.camera_fakes import FakeFrame, StallingCamera, fake_pyrealsense2
from tests.hw_bridge.conftest import ROOT, Running, start_server_process, wait_for
from tests.hw_bridge.fakes import FlakyDriver

RGB = (200, 60, 10)  # red-heavy: a BGR/RGB swap shows


def write_video(path: Path, n: int = 30, w: int = 160, h: int = 120, fps: int = 30) -> Path:
    """An MPEG-4 file whose frame i is RGB with its green channel stepping by 6 per frame."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            img = np.empty((h, w, 3), np.uint8)
            img[:] = (RGB[0], (RGB[1] + 6 * i) % 256, RGB[2])
            for packet in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


# -- the grammar ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("wrist=opencv:/dev/video2@640x480:30", ("opencv:/dev/video2", 480, 640, 30.0)),
    ("front=opencv:0", ("opencv:0", 128, 128, 20.0)),
    ("front=opencv:0:15", ("opencv:0", 128, 128, 15.0)),
    ("top=opencv:clips/a.mp4@224x224", ("opencv:clips/a.mp4", 224, 224, 20.0)),
    ("c=opencv:rtsp://10.0.0.5:554/s", ("opencv:rtsp://10.0.0.5:554/s", 128, 128, 20.0)),
    ("c=opencv:http://cam:8080", ("opencv:http://cam:8080", 128, 128, 20.0)),
    ("c=opencv:http://cam:8080@320x240:12.5", ("opencv:http://cam:8080", 240, 320, 12.5)),
    ("d=realsense:123456789012:30", ("realsense:123456789012", 128, 128, 30.0)),
])
def test_camera_grammar(text, want):
    s = parse_camera(text)
    assert (s.source, s.height, s.width, s.fps) == want


def test_an_override_keeps_the_drivers_size_unless_told():
    own = {"front": CameraSpec("front", 32, 32, 30.0)}
    assert parse_camera("front=opencv:0", own) == CameraSpec("front", 32, 32, 30.0, "opencv:0")
    assert parse_camera("front=opencv:0@64x48", own).height == 48


@pytest.mark.parametrize("text, says", [
    ("front", "has no source; expected NAME=KIND:ARG"),
    ("front=", "has no source"),
    ("9cam=opencv:0", "must be a letter"),
    ("front=opncv:0", "did you mean 'opencv'"),
    ("front=sim", "rendered by the sim driver"),
    ("front=opencv", "INDEX, /dev/videoN, a video file path or a URL"),
    ("front=opencv:0@0x480", "each side 1..4096"),
    ("front=opencv:0@640x480:0", "fps 0 must be in (0, 240]"),
    ("front=realsense:12/34", "serial number"),
])
def test_bad_camera_specs_say_what_is_allowed(text, says):
    with pytest.raises(CameraSpecError) as e:
        parse_camera(text)
    assert says in str(e.value)


def test_a_name_given_twice_is_refused():
    with pytest.raises(CameraSpecError, match=r"\['a'\] given more than once"):
        parse_cameras(["a=opencv:0", "a=opencv:1"])


# -- OpenCV on real files -------------------------------------------------------------------
def test_a_file_camera_is_paced_resized_rgb_and_loops(tmp_path):
    video = write_video(tmp_path / "v.mp4", n=10)
    cam = make_camera(parse_camera(f"c=opencv:{video}@64x48:40"))
    assert isinstance(cam, OpenCVCamera) and cam.paced
    seen = []
    with cam:
        assert cam.native == (160, 120, 30.0)
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            f = cam.latest()
            if not seen or f.seq != seen[-1].seq:
                seen.append(f)
            time.sleep(0.002)
    assert cam.loops >= 1  # 10 frames at 40 fps: the file ran out and started again
    img = seen[-1].image
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert img[..., 0].mean() > 150 > 40 > img[..., 2].mean()  # R stays R
    seqs, ts = [f.seq for f in seen], [f.t for f in seen]
    assert seqs == sorted(seqs) and np.all(np.diff(ts) > 0)
    rate = (seqs[-1] - seqs[0]) / (ts[-1] - ts[0])
    assert 30 < rate < 48, rate  # paced at 40 fps, not as fast as decoding goes


def test_missing_sources_name_themselves_and_what_to_check(tmp_path):
    with pytest.raises(CameraOpenError, match=r"no video file at .*nope\.mp4.*check the path"):
        make_camera(parse_camera(f"c=opencv:{tmp_path}/nope.mp4")).connect()
    with pytest.raises(CameraOpenError, match=r"'opencv:/dev/video99'.*plugged in.*video"):
        make_camera(parse_camera("c=opencv:/dev/video99")).connect()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(CameraOpenError, match="junk.mp4"):
        make_camera(parse_camera(f"c=opencv:{junk}")).connect(first_frame_timeout_s=1.0)


# -- over the bridge ------------------------------------------------------------------------
def subscribed(r: Running, conflate: bool = True) -> BridgeClient:
    client = BridgeClient(r.endpoint, ClientConfig(conflate=conflate))
    client.connect()
    return client


def test_a_file_camera_streams_in_order_at_its_fps(tmp_path):
    video = write_video(tmp_path / "v.mp4", n=30)
    rig = CameraRig([make_camera(parse_camera(f"side=opencv:{video}@64x48:20")),
                     make_camera(parse_camera(f"front=opencv:{video}", {
                         "front": CameraSpec("front", 32, 32, 20.0)}))])
    r = Running(FlakyDriver("pick_place", image_size=(32, 32)), rig, stream_hz=10.0)
    client = subscribed(r, conflate=False)  # every frame, in order: what the server sent
    try:
        assert client.info["cameras"] == {"wrist": [32, 32], "side": [48, 64], "front": [32, 32]}
        assert client.info["camera_fps"]["side"] == 20.0
        frames = []
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            obs = client.observation(after_seq=frames[-1]["seq"] if frames else -1, timeout_s=3.0)
            frames.append(obs)
        status = client.status()
    finally:
        client.close()
        r.close()
    side = [(f["cameras"]["side"]["seq"], f["cameras"]["side"]["t"]) for f in frames]
    # Frames the stream thread missed ride in `earlier`, all older than the frame's newest.
    missed = [(e["seq"], e["t"]) for f in frames for e in f["earlier"].get("side", [])]
    assert all(e["seq"] < f["cameras"]["side"]["seq"] for f in frames
               for e in f["earlier"].get("side", []))
    assert "wrist" not in {n for f in frames for n in f["earlier"]}  # driver renders: never
    # From the second image on: the first may be one the server sent while the client was
    # still syncing its clock (a gap there is the client's start, not the stream's).
    distinct = sorted(set(side + missed))[1:]
    assert len(missed) == len(set(missed)) and not set(missed) & set(side)  # each sent once
    assert [s for s, _ in side] == sorted(s for s, _ in side)  # in order
    assert np.all(np.diff([t for _, t in distinct]) > 0)  # capture times increase
    span = distinct[-1][0] - distinct[0][0]
    assert span >= 10, f"only {span + 1} camera frames in 1.5 s"
    rate = span / (distinct[-1][1] - distinct[0][1])
    assert 16 < rate < 24, rate
    assert len(distinct) >= 0.9 * (span + 1)  # (the bench counts drops on a real server)
    last = frames[-1]
    assert last["images"]["side"].shape == (48, 64, 3)
    assert last["images"]["front"][..., 0].mean() > 150  # the file, not the rendered scene
    assert not last["cameras"]["side"]["stale"] and last["cameras"]["wrist"]["state"] == "ok"
    health = status["cameras"]["side"]
    assert health["state"] == "ok" and health["frames"] > 20 and health["errors"] == 0
    assert 0 <= health["unsent"] <= 0.1 * health["frames"]  # counted on the robot side too


def _arm_ticks_while_sleeping(r: Running, seconds: float) -> tuple[float, float]:
    """(arm periods per second, longest gap between two periods in s) over a sleep."""
    n0 = r.controller.n_ticks
    t0 = time.monotonic()
    time.sleep(seconds)
    n1, dt = r.controller.n_ticks, r.controller.tick_dt
    gaps = [dt[i % len(dt)] for i in range(n0, n1)]
    return (n1 - n0) / (time.monotonic() - t0), max(gaps)


def test_a_stalled_camera_is_flagged_stale_then_dead_and_the_arm_keeps_its_period():
    cam = StallingCamera(CameraSpec("cam", 24, 32, 20.0, "test:stall"))
    r = Running(FlakyDriver("pick_place", image_size=(32, 32)),
                CameraRig([cam], Freshness(stale_periods=3, timeout_s=0.6)), stream_hz=20.0)
    client = subscribed(r)
    try:
        assert client.observation()["cameras"]["cam"]["state"] == "ok"
        obs0 = client.observation()["seq"]
        base_rate, _ = _arm_ticks_while_sleeping(r, 0.7)
        cam.stall.set()
        assert cam.blocked.wait(1.0)
        # The same measurement while the camera's read is blocked: the arm loop never waits.
        stall_rate, stall_gap = _arm_ticks_while_sleeping(r, 0.7)
        assert stall_gap < 0.25  # not blocked for the stall (0.7 s), nor for the timeout
        assert stall_rate > 0.7 * base_rate, (stall_rate, base_rate)  # (noisy machine)
        obs = client.observation()
        assert obs["cameras"]["cam"]["stale"] and obs["cameras"]["cam"]["state"] == "dead"
        assert "no frame for" in obs["cameras"]["cam"]["reason"]
        assert obs["seq"] - obs0 > 10  # the stream went on at its own rate
        health = client.status()["cameras"]["cam"]
        assert health["state"] == "dead" and "limit 0.6 s" in health["reason"]
        cam.stall.clear()
        assert wait_for(lambda: client.observation()["cameras"]["cam"]["state"] == "ok", 2.0)
        cam.stall.set()  # stale comes first: 3 periods (150 ms) after the last frame
        assert cam.blocked.wait(1.0)
        assert wait_for(lambda: client.observation()["cameras"]["cam"]["state"] == "stale", 0.5)
    finally:
        client.close()
        r.close()
    assert cam.released


def test_a_camera_that_cannot_open_fails_the_start_before_the_arm_is_touched(tmp_path):
    driver = FlakyDriver("pick_place", image_size=(32, 32))
    rig = CameraRig([make_camera(parse_camera(f"c=opencv:{tmp_path}/none.mp4"))])
    with pytest.raises(CameraOpenError, match="none.mp4"):
        Running(driver, rig)
    assert driver.state.value == "disconnected"


# -- the CLI --------------------------------------------------------------------------------
def test_serve_streams_a_file_camera_and_status_reports_it(tmp_path):
    video = write_video(tmp_path / "v.mp4", n=10)
    proc, endpoint = start_server_process("--camera", f"cam=opencv:{video}@64x48:15")
    try:
        client = BridgeClient(endpoint)
        client.connect()
        assert client.info["cameras"]["cam"] == [48, 64]
        obs = client.observation()
        assert obs["images"]["cam"].shape == (48, 64, 3) and obs["cameras"]["cam"]["state"] == "ok"
        client.close()
        out = subprocess.run([sys.executable, "-m", "hw_bridge", "status", "--connect", endpoint],
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                             text=True, timeout=60, check=True)
        cam = json.loads(out.stdout)["cameras"]["cam"]
        assert cam["state"] == "ok" and cam["frames"] > 0 and cam["source"].endswith("v.mp4")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_refuses_bad_cameras_with_one_line(capsys, tmp_path):
    base = ["serve", "--bind", "tcp://127.0.0.1:*", "--image-size", "32", "--duration", "0.1"]
    assert main([*base, "--camera", "front=opencv"]) == 2
    assert "front=opencv" in capsys.readouterr().err
    assert main([*base, "--camera", f"front=opencv:{tmp_path}/gone.mp4"]) == 2
    err = capsys.readouterr().err
    assert "gone.mp4" in err and "check the path" in err and "Traceback" not in err


def test_bridge_cameras_lists_what_is_attached(capsys, tmp_path):
    video = write_video(tmp_path / "v.mp4", n=5, w=96, h=64, fps=25)
    assert main(["cameras", "--max-index", "2"]) == 0
    out = capsys.readouterr().out
    assert "OpenCV:" in out and "RealSense:" in out
    if not list(Path("/dev").glob("video*")):  # this machine: nothing attached, and it says so
        assert NONE_FOUND in out
    assert main(["cameras", "--max-index", "0", "--try", f"opencv:{video}"]) == 0
    table = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("kind"))
    assert table[header].split() == ["kind", "id", "backend", "width", "height", "fps", "note"]
    assert table[header + 1].split()[:6] == ["opencv", str(video), "FFMPEG", "96", "64", "25.0"]


# -- RealSense, faked at the library boundary ---------------------------------------------------
@pytest.fixture
def fake_rs(monkeypatch):
    rs = fake_pyrealsense2({"123456789012": (64, 48, 30)})
    monkeypatch.setitem(sys.modules, "pyrealsense2", rs)
    return rs


def test_realsense_streams_resized_colour_at_its_fps(fake_rs):
    cam = make_camera(parse_camera("d=realsense:123456789012@32x24:30"))
    assert isinstance(cam, RealSenseCamera)
    with cam:
        first = cam.latest()
        assert wait_for(lambda: cam.latest().seq >= first.seq + 5, 2.0)
        f = cam.latest()
    assert fake_rs.started == [("123456789012", ("color", 0, 0, "rgb8", 30))]
    assert f.image.shape == (24, 32, 3) and f.t > first.t and fake_rs.stopped


def test_realsense_capture_times_map_the_wall_clock_onto_monotonic(fake_rs):
    cam = RealSenseCamera(parse_camera("d=realsense:123456789012"))
    cam._rs = fake_rs
    now = time.monotonic()
    half_second_ago = FakeFrame(np.zeros(1), 1e3 * (time.time() - 0.5), "system_time")
    assert cam._capture_time(half_second_ago) == pytest.approx(now - 0.5, abs=0.01)
    own_counter = FakeFrame(np.zeros(1), 5.0, "hardware_clock")  # not a host clock: arrival time
    assert cam._capture_time(own_counter) == pytest.approx(time.monotonic(), abs=0.01)


def test_realsense_errors_name_the_serial_and_the_extra(fake_rs, monkeypatch):
    with pytest.raises(CameraOpenError, match=r"'999'.*did not start.*serial.*USB 3"):
        make_camera(parse_camera("d=realsense:999")).connect()
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)  # as when it is not installed
    with pytest.raises(CameraOpenError, match=r"motoken\[realsense\]"):
        make_camera(parse_camera("d=realsense:123456789012")).connect()


def test_realsense_devices_are_listed_by_serial(fake_rs):
    assert find_realsense() == [{"kind": "realsense", "id": "123456789012",
                                 "backend": "Intel RealSense D435 (fake)", "width": 64,
                                 "height": 48, "fps": 30, "note": "2 colour modes"}]


def _file_camera(tmp_path: Path) -> Camera:
    """A real OpenCV camera on a real video file, paced at 30 fps, connected."""
    cam = make_camera(parse_camera(f"side=opencv:{write_video(tmp_path / 'v.mp4')}@16x12:30"))
    cam.connect()
    return cam


def _after(cam: Camera, seq: int, frames: int) -> None:
    """Wait, without sampling (a stalled stream thread), until `frames` more were captured."""
    assert wait_for(lambda: cam.latest().seq >= seq + frames, timeout=3)


def test_a_stalled_stream_sends_the_newest_image_and_the_missed_frames_in_earlier(tmp_path):
    """After a stall the image is the newest (what a policy acts on); the frames missed ride in
    `earlier`, oldest first, each once; only those that left the ring are lost (`unsent`)."""
    cam = _file_camera(tmp_path)
    rig = CameraRig([cam], Freshness(stale_periods=3.0, timeout_s=5.0))
    try:
        images, meta, earlier = rig.sample()
        assert earlier == {}  # the stream starts at the newest frame: nothing owed yet
        sent = [meta["side"]["seq"]]  # every seq delivered, in the order a recorder reads them
        for stall in (4, 1, 0, 3):  # shorter than the ring: nothing is lost
            _after(cam, sent[-1], stall)
            images, meta, earlier = rig.sample()
            owed = [f["seq"] for f in earlier.get("side", [])]
            newest = meta["side"]["seq"]
            if newest != sent[-1]:  # no new frame (stall 0): the newest goes out again
                sent += [*owed, newest]
            assert owed == list(range(newest - len(owed), newest))  # in order, just before it
            assert all(f["image"].shape == (12, 16, 3) for f in earlier.get("side", []))
            assert images["side"].shape == (12, 16, 3) and meta["side"]["state"] != "dead"
        assert sent == list(range(sent[0], sent[-1] + 1))  # every frame, once, in order
        assert rig.health()["side"]["unsent"] == 0

        _after(cam, sent[-1], 12)  # longer than the ring (8 frames): the oldest are lost
        _, meta, earlier = rig.sample()
        owed = [f["seq"] for f in earlier["side"]]
        newest = meta["side"]["seq"]
        assert owed == list(range(newest - RECENT_FRAMES + 1, newest))  # the ring, but newest
        assert rig.health()["side"]["unsent"] == newest - sent[-1] - 1 - len(owed) >= 4
    finally:
        cam.close()


def test_frames_over_the_byte_budget_stay_owed_and_go_out_with_the_next_sample(tmp_path):
    """`earlier` is bounded in bytes (the stream's message limit): what does not fit is sent
    next time, oldest first, not dropped, as long as it is still in the ring."""
    cam = _file_camera(tmp_path)
    rig = CameraRig([cam])
    per_frame = 12 * 16 * 3 + EARLIER_ENTRY_OVERHEAD
    try:
        first = rig.sample()[1]["side"]["seq"]
        _after(cam, first, 5)
        _, meta, earlier = rig.sample(earlier_max_bytes=2 * per_frame)
        newest = meta["side"]["seq"]
        assert [f["seq"] for f in earlier["side"]] == [first + 1, first + 2]  # the oldest two
        _, meta2, earlier2 = rig.sample()
        again = [f["seq"] for f in earlier2["side"]]
        # The rest, in order, skipping the newest already sent (and any frame captured since).
        assert [s for s in again if s < newest] == list(range(first + 3, newest))
        assert newest not in again and all(s < meta2["side"]["seq"] for s in again)
        assert rig.health()["side"]["unsent"] == 0
        third = rig.sample()[2].get("side", [])  # nothing sent twice: only frames captured since
        assert all(f["seq"] > meta2["side"]["seq"] for f in third)
    finally:
        cam.close()
