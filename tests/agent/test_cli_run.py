import json
import subprocess
import sys

import av
import pytest

from agent.cli import main
from agent.commands.run import wilson_ci95


def test_run_json_summary(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--env", "mujoco:pick_place", "--policy",
         "scripted", "--episodes", "2", "--seed", "100", "--rate", "0", "--json", "--record",
         str(tmp_path)], capture_output=True, text=True, timeout=300, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("episode 1/2 seed=100 success=True")
    summary = json.loads(lines[-1])
    assert summary["env"] == "mujoco:pick_place" and summary["policy"] == "scripted"
    assert summary["episodes"] == 2 and summary["success_rate"] == 1.0
    assert summary["mean_steps"] > 10 and summary["loop_hz"] > 0
    for stage in ("sim", "render", "policy", "total"):
        assert set(summary["latency_ms"][stage]) == {"p50", "p99"}
    videos = sorted(tmp_path.glob("*.mp4"))
    assert [v.name for v in videos] == ["episode_0100.mp4", "episode_0101.mp4"]
    with av.open(str(videos[0])) as c:
        frames = list(c.decode(video=0))
    assert len(frames) > 10 and frames[0].width == 256 and frames[0].height == 128


def test_unknown_env_exits_with_suggestion(capsys):
    with pytest.raises(SystemExit, match="did you mean 'mujoco:pick_place'"):
        main(["run", "--env", "mujoco:pickplace", "--episodes", "1"])


def test_viewer_without_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(SystemExit, match="needs a display"):
        main(["run", "--env", "mujoco:pick_place", "--episodes", "1", "--viewer"])


def test_wilson_interval():
    assert wilson_ci95(0, 10)[0] == 0.0 and wilson_ci95(10, 10)[1] == 1.0
    lo, hi = wilson_ci95(95, 100)
    assert 0.88 < lo < 0.90 and 0.97 < hi < 0.99
