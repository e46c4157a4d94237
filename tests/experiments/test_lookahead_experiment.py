"""experiments/lookahead/lookahead.py end to end on the tiny video run: both columns, the
cost, the errors."""

from __future__ import annotations

import pytest

from tests.experiments.conftest import load_experiment

bench = load_experiment("lookahead", "lookahead")


@pytest.mark.slow
def test_lookahead_bench_reports_both_columns_and_the_cost(video_run, capsys):
    out = bench.main(["--policy", str(video_run["run"]), "--k", "2", "--episodes", "1",
                      "--envs", "mujoco:pick_place_hard", "--rate-episodes", "1",
                      "--margins", "0,0.01", "--horizon", "2", "--temperature", "0.5"])
    hard = out["cells"]["mujoco:pick_place_hard"]
    assert set(hard) == {"off", "k2", "k2_m0.01"}
    assert hard["k2_m0.01"]["lookahead"]["margin"] == 0.01
    assert hard["k2"]["lookahead"]["horizon"] == 2 and out["temperature"] == 0.5
    for row in hard.values():
        assert row["episodes"] == 1 and 0.0 <= row["success_rate"] <= 1.0
        assert len(row["failed_seeds"]) == round((1 - row["success_rate"]) * 1)
    assert hard["k2"]["lookahead"]["latency_ms"]["p50"] > 0 and "lookahead" not in hard["off"]
    assert out["loop_cost"]["k2"]["loop_hz"] > 0 and out["loop_cost"]["off"]["loop_hz"] > 0


def test_lookahead_bench_rejects_bad_settings():
    with pytest.raises(SystemExit, match="--k must be >= 2"):
        bench.main(["--policy", "x", "--k", "1"])
    for bad in ("0,1cm", "", ",", "-0.01", "nan"):
        with pytest.raises(SystemExit, match="--margins takes one or more numbers >= 0"):
            bench.main(["--policy", "x", "--margins", bad])
