"""Benchmark `agent collect`: recording speed as a multiple of real time, and bytes per frame.

    MUJOCO_GL=egl PYTHONPATH=. python bench/collect.py [--episodes 30] [--num-envs 1 2]

Runs the real command (scripted expert, 2 cameras at 128x128, 20 Hz) once per --num-envs value
into a temp folder, plus `agent run --rate 0` (simulate + render, no recording) as the ceiling.
Frames/s counts recorded frames over the collect loop's wall time (env start-up included,
interpreter start-up not). The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _agent(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    out = subprocess.run([sys.executable, "-m", "agent", *args, "--json"], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="mujoco:pick_place")
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--num-envs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--vcodec", default="av1")
    args = p.parse_args()
    load_before = os.getloadavg()[0]
    sim = _agent("run", "--env", args.env, "--episodes", str(args.episodes), "--rate", "0")
    results = []
    for k in args.num_envs:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "ds"
            s = _agent("collect", "--env", args.env, "--policy", "scripted", "--episodes",
                       str(args.episodes), "--out", str(out), "--num-envs", str(k),
                       "--vcodec", args.vcodec)
            row = {"num_envs": k, "frames": s["frames"], "wall_s": s["wall_s"],
                   "frames_per_s": s["frames_per_s"], "realtime_factor": s["realtime_factor"],
                   "bytes_per_frame": round(_size(out) / s["frames"], 1)}
        results.append(row)
        print(f"num_envs={k}: {row['frames_per_s']:.0f} frames/s = {row['realtime_factor']:.1f}x "
              f"real time, {row['bytes_per_frame']:.0f} bytes/frame", file=sys.stderr)
    best = max(results, key=lambda r: r["realtime_factor"])
    print(json.dumps({
        "bench": "collect", "env": args.env, "episodes": args.episodes, "cameras": 2,
        "image": "128x128", "fps": 20, "vcodec": args.vcodec, "results": results,
        "realtime_factor": best["realtime_factor"], "best_num_envs": best["num_envs"],
        "bytes_per_frame": best["bytes_per_frame"],
        "sim_only_realtime_factor": round(sim["loop_hz"] / 20, 2),
        "cpu_count": os.cpu_count(), "load_avg_1m": [round(load_before, 2),
                                                     round(os.getloadavg()[0], 2)],
    }))


if __name__ == "__main__":
    main()
