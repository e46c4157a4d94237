"""Bridge cameras: a camera fed from a video file streams at its fps with no frame dropped, and
the arm's control period is unchanged by it.

Two runs of a real `agent bridge serve --robot sim:pick_place` subprocess (arm loop SCHED_FIFO
as on a robot host, where the machine allows it), each for --seconds, each with a client that
commands the arm at 20 Hz and reads every observation frame:
  A. without the camera;
  B. with `--camera cam=opencv:VIDEO@WxH:FPS`, VIDEO a file written here with PyAV.
Goals: in B, every frame the camera captured between the first and the last one the client
received reached the client, as an obs's newest image or in its `earlier` (frames a stall of
the stream thread kept back) (dropped = 0, counted by the camera's sequence numbers), at the
configured fps (from capture timestamps); and the arm-loop period p99 of B within 10% of A's.
The server keeps the loop timing of its last 10 000 periods (20 s); it is read every 19 s and
each window's p99 is reported; the comparison uses their mean.
The last stdout line is one JSON object; it is also written to bench/results/bridge_cameras.json.

    python bench/bridge_cameras.py [--seconds 60] [--fps 30] [--size 320x240]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np
import zmq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bridge import pct, start_server, stop  # noqa: E402
from hw_bridge import wire  # noqa: E402
from hw_bridge.client import BridgeClient, ClientConfig  # noqa: E402
from hw_bridge.errors import Rejected, Timeout  # noqa: E402

WINDOW_S = 19.0  # < the 20 s of periods the server keeps: windows overlap, none is missed
RESULTS = ROOT / "bench" / "results" / "bridge_cameras.json"


def write_video(path: Path, fps: int, seconds: float = 10.0, w: int = 640, h: int = 480) -> Path:
    """A moving gradient, MPEG-4, at `fps`: the camera's source (it loops)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        ramp = np.add.outer(np.arange(h), np.arange(w))
        for i in range(int(seconds * fps)):
            img = np.stack([(ramp + 4 * i) % 256, (ramp // 2) % 256,
                            np.full_like(ramp, 8 * i % 256)], -1).astype(np.uint8)
            for packet in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


class Commander(threading.Thread):
    """Commands a slow sinusoid at 20 Hz, so the arm loop does its real work. On a loaded
    machine the watchdog may end its session (a heartbeat late by > 100 ms): it says hello
    again and counts it, as the fault bench's mover does."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.stop_event = endpoint, threading.Event()
        self.sent = self.refused = self.sessions_lost = 0
        self.client = self._connect()

    def _connect(self) -> BridgeClient:
        client = BridgeClient(self.endpoint)
        client.connect(subscribe=False)
        return client

    def run(self) -> None:
        home = np.array(self.client.info["robot"]["home"])
        i = 0
        while not self.stop_event.wait(0.05):
            q = home + [0.3 * np.sin(0.2 * i), 0.1 * np.sin(0.15 * i), 0, 0, 0, 0]
            try:
                self.client.command(q, 0.0)
                self.sent += 1
            except (Rejected, Timeout) as exc:  # a late command on a loaded machine: counted
                self.refused += 1
                if getattr(exc, "code", "") == "unknown_session":
                    self.sessions_lost += 1
                    self.client.close()
                    self.client = self._connect()
            i += 1
        self.client.close()


def subscribe(endpoint: str, stream_endpoint: str) -> zmq.Socket:
    """A plain SUB without CONFLATE: a recorder that must receive every frame, in order."""
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.MAXMSGSIZE, wire.STREAM_MAX_BYTES)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"{endpoint.rpartition(':')[0]}:{stream_endpoint.rpartition(':')[2]}")
    return sub


def run(seconds: float, camera: str | None) -> dict:
    args = ["--image-size", "128", "--stream-rate", "30"]
    proc, endpoint = start_server(*args, *(["--camera", camera] if camera else []))
    try:
        commander = Commander(endpoint)
        monitor = BridgeClient(endpoint, ClientConfig(heartbeat=False))
        monitor.open()  # no session: status only
        sub = subscribe(endpoint, commander.client.info["stream"]["endpoint"])
        commander.start()
        rows, windows, frames = [], [], 0
        start = next_window = time.monotonic()
        next_window += min(WINDOW_S, seconds)
        while (now := time.monotonic()) < start + seconds:
            if not sub.poll(2000):
                raise RuntimeError("no observation frame for 2 s")
            obs = wire.decode(sub.recv(), wire.STREAM_MAX_BYTES)
            frames += 1
            recv = time.monotonic() + commander.client.offset
            # A recorder reads the frames a stall kept back first, then the newest.
            for e in obs.get("earlier", {}).get("cam", []):
                rows.append((e["seq"], e["t"], recv, False, True))
            cam = obs["cameras"].get("cam")
            if cam is not None:
                rows.append((cam["seq"], cam["t"], recv, cam["stale"], False))
            if now >= next_window:
                windows.append(monitor.status()["period_ms"])
                next_window += WINDOW_S
        commander.stop_event.set()
        commander.join()
        status = monitor.status()
        if len(windows) < max(1, int(seconds // WINDOW_S)):
            windows.append(status["period_ms"])
        sub.close()
        monitor.ctx.destroy(linger=0)
    finally:
        stop(proc)
    out = {"obs_frames": frames, "commands": commander.sent,
           "commands_refused": commander.refused, "sessions_lost": commander.sessions_lost,
           "overruns": status["counts"].get("overruns", 0), "period_windows": windows,
           "period_p99_ms": round(float(np.mean([w["p99_ms"] for w in windows])), 4)}
    if camera:
        out.update(camera_stats(rows, status["cameras"]["cam"]))
    return out


def camera_stats(rows: list[tuple[int, float, float, bool, bool]], health: dict) -> dict:
    """Captured vs delivered, by the camera's sequence numbers; rate from capture times.
    Stale counts newest images sent stale (an `earlier` frame is late by design, not stale)."""
    first: dict[int, tuple[float, float, bool, bool]] = {}
    for s, t, recv, stale, earlier in rows:
        first.setdefault(s, (t, recv, stale, earlier))  # a newest image may ride in several obs
    seqs = sorted(first)
    captured = seqs[-1] - seqs[0] + 1  # every frame the camera took in the client's window
    t = np.array([first[s][0] for s in seqs])
    return {"frames_captured": captured, "frames_delivered": len(seqs),
            "dropped": captured - len(seqs), "captured_total_on_server": health["frames"],
            "unsent_on_server": health["unsent"],
            "capture_time_increasing": bool(np.all(np.diff(t) > 0)),
            "fps_measured": round((seqs[-1] - seqs[0]) / (t[-1] - t[0]), 3),
            "capture_to_client": pct([first[s][1] - first[s][0] for s in seqs]),
            "stale_frames": sum(first[s][2] for s in seqs),
            "frames_via_earlier": sum(first[s][3] for s in seqs),
            "camera_errors": health["errors"]}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--size", default="320x240", help="the camera's configured WxH")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "camera.mp4", args.fps)
        without = run(args.seconds, None)
        with_cam = run(args.seconds, f"cam=opencv:{video}@{args.size}:{args.fps}")
    ratio = float(with_cam["period_p99_ms"] / without["period_p99_ms"])
    fps_error = abs(with_cam["fps_measured"] - args.fps)
    result = {
        "bench": "bridge_cameras", "seconds": args.seconds, "fps": args.fps, "size": args.size,
        "without_camera": without, "with_camera": with_cam, "p99_ratio": round(ratio, 4),
        "goals": {"dropped_0": with_cam["dropped"] == 0,
                  "fps_within_2pct": bool(fps_error <= 0.02 * args.fps),
                  "p99_within_10pct": ratio <= 1.10},
        "loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
