"""Benchmark `agent record`: does saving stall recording? Rate achieved, gap between episodes,
bytes per frame.

    MUJOCO_GL=egl PYTHONPATH=. python bench/record.py [--episodes 20] [--episode-s 10]

Runs the real command in this process (`agent record --env mujoco:pick_place`, two cameras,
front and wrist, 128x128, 20 Hz, AV1, --reset-s 0) with a scripted device that replays a fixed
pattern of EE moves and gripper toggles (it lives here, not in agent/: it is a stand-in for a
human). Each take runs the full --episode-s; the saver commits it in the background while the
next one records.

Goals: every take's achieved rate (frames / wall time of the take) >= 0.99 of the target; the
gap from the end of one take to the first frame of the next (reset period 0) < 1 s. Bytes per
frame is the dataset's size over its frames. First, the same env and device run at the same
rate with nothing recorded (`baseline_no_recording`): on a loaded machine that loop misses
ticks too, and the difference is what recording costs. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.cli import main as agent  # noqa: E402
from agent.teleop.base import TeleopCommand, TeleopDevice  # noqa: E402
from agent.teleop.registry import DEVICES  # noqa: E402

RATE_GOAL, GAP_GOAL_S = 0.99, 1.0
LEG = 10  # control periods per leg of the pattern


class PatternDevice(TeleopDevice):
    """Replays a square in x/y at 2 cm per leg, toggling the gripper at each corner."""

    name = "pattern"

    def __init__(self) -> None:
        self.tick = 0

    def connect(self) -> None:
        self.tick = 0

    def read(self, obs: Any) -> TeleopCommand:
        leg = (self.tick // LEG) % 4
        a = np.zeros(7, np.float32)
        a[leg % 2] = 0.002 if leg < 2 else -0.002  # +x, +y, -x, -y
        a[6] = float(leg % 2)
        self.tick += 1
        return TeleopCommand(a, engaged=True)


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _record(episodes: int, episode_s: float, fps: int | None,
            vcodec: str) -> tuple[dict[str, Any], int, float]:
    """`agent record` with the pattern device: its JSON summary, dataset bytes, wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        argv = ["record", "--env", "mujoco:pick_place", "--teleop", "pattern", "--task",
                "move the arm around", "--episodes", str(episodes), "--out", str(out),
                "--episode-s", str(episode_s), "--reset-s", "0", "--vcodec", vcodec, "--json"]
        if fps:
            argv += ["--fps", str(fps)]
        stdout = io.StringIO()
        t0 = time.monotonic()
        with contextlib.redirect_stdout(stdout):
            code = agent(argv)
        wall = time.monotonic() - t0
        lines = stdout.getvalue().strip().splitlines()
        print("\n".join(lines[:-1]), file=sys.stderr)
        if code != 0:
            raise SystemExit(f"agent record exited {code}")
        s = json.loads(lines[-1])
        size = _size(out)
    return s, size, wall


def baseline(seconds: float, fps: int | None) -> dict[str, Any]:
    """The same env and device stepped at the same rate with nothing recorded: what this
    machine allows at the moment (a loaded machine misses ticks without any recording)."""
    import envs
    from envs.types import Observation

    env = envs.make("mujoco:pick_place", **({"control_hz": float(fps)} if fps else {}))
    hz = float(env.unwrapped.control_hz)
    device, render = PatternDevice(), []
    obs, info = env.reset(seed=0)
    start = next_tick = time.monotonic()
    frames = round(seconds * hz)
    for _ in range(frames):  # the pacing of agent/commands/record.py's take loop
        obs, *_, info = env.step(device.read(Observation.from_env(obs, info)).action)
        render.append(env.unwrapped.last_timing.render_s)
        next_tick += 1 / hz
        slack = next_tick - time.monotonic()
        if slack > 0:
            time.sleep(slack)
        elif slack < -1 / hz:
            next_tick = time.monotonic()
    ratio = frames / (time.monotonic() - start) / hz
    env.close()
    return {"rate_ratio": round(ratio, 4), "seconds": seconds,
            "render_ms_p50": round(1e3 * float(np.median(render)), 1)}


def run(episodes: int, episode_s: float, fps: int | None, vcodec: str) -> dict[str, Any]:
    """One `agent record` session into a temp folder; the bench's JSON object."""
    load_before = os.getloadavg()[0]
    base = baseline(min(2 * episode_s, 20.0), fps)
    DEVICES["pattern"] = lambda arg: PatternDevice()
    try:
        s, size, wall = _record(episodes, episode_s, fps, vcodec)
    finally:
        del DEVICES["pattern"]
    takes = s["takes"]
    rates = [t["rate_ratio"] for t in takes]
    gaps = [t["gap_s"] for t in takes if t["gap_s"] is not None]
    lags = [t["save_lag_s"] for t in takes]
    return {
        "bench": "record", "env": "mujoco:pick_place", "device": "scripted pattern",
        "episodes": s["episodes"], "episode_s": episode_s, "fps": s["fps"],
        "cameras": ["front", "wrist"], "image": "128x128", "vcodec": vcodec,
        "frames": s["frames"],
        "rate_ratio": {"min": min(rates), "mean": round(float(np.mean(rates)), 4)},
        "goal_rate_ratio_min": RATE_GOAL, "rate_met": min(rates) >= RATE_GOAL,
        "gap_s": {"max": max(gaps, default=None),
                  "mean": round(float(np.mean(gaps)), 3) if gaps else None},
        "goal_gap_s_below": GAP_GOAL_S, "gap_met": max(gaps, default=0.0) < GAP_GOAL_S,
        "baseline_no_recording": base,
        "bytes_per_frame": round(size / s["frames"], 1),
        "save_lag_s": {"max": max(lags), "mean": round(float(np.mean(lags)), 3)},
        "save_wait_at_end_s": s["save_wait_at_end_s"], "wall_s": round(wall, 1),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--episode-s", type=float, default=10.0)
    p.add_argument("--fps", type=int, default=None, help="default: the env's (20)")
    p.add_argument("--vcodec", default="av1")
    args = p.parse_args(argv)
    summary = run(args.episodes, args.episode_s, args.fps, args.vcodec)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
