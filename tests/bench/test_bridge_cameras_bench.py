"""bench/bridge_cameras.py end to end for a few seconds: real server subprocesses, a real video
file read by OpenCV, the JSON line and the results file it promises."""

from __future__ import annotations

import json

from tests.bench.conftest import load_bench

bench = load_bench("bridge_cameras")


def test_bench_counts_captured_and_delivered_frames_and_compares_the_arm_period(tmp_path, capsys):
    out = tmp_path / "r.json"
    result = bench.main(["--seconds", "2", "--fps", "15", "--size", "64x48", "--out", str(out)])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert json.loads(out.read_text()) == result
    cam = result["with_camera"]
    # Frames are counted, not assumed: delivered + dropped is what the camera took meanwhile.
    assert cam["frames_delivered"] + cam["dropped"] == cam["frames_captured"] > 15
    assert cam["captured_total_on_server"] >= cam["frames_captured"]
    assert cam["capture_time_increasing"] and 10 < cam["fps_measured"] < 20
    assert result["without_camera"]["period_p99_ms"] > 0 and result["p99_ratio"] > 0
    assert set(result["goals"]) == {"dropped_0", "fps_within_2pct", "p99_within_10pct"}
