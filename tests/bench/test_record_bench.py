"""bench/record.py: one short real run, its JSON object and the goals it reports."""

from __future__ import annotations

import json

import numpy as np

from agent.teleop.registry import DEVICES
from tests.bench.conftest import load_bench

record = load_bench("record")


def test_pattern_device_replays_a_bounded_square():
    dev = record.PatternDevice()
    dev.connect()
    actions = [dev.read(None).action for _ in range(4 * record.LEG)]

    assert np.allclose(np.sum(actions, axis=0)[:6], 0)  # back where it started
    assert {float(a[6]) for a in actions} == {0.0, 1.0}


def test_bench_reports_rate_gap_and_bytes_per_frame(capsys):
    summary = record.main(["--episodes", "2", "--episode-s", "1", "--fps", "10"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == summary
    assert summary["episodes"] == 2 and summary["frames"] == 20 and summary["fps"] == 10
    assert 0 < summary["rate_ratio"]["min"] <= summary["rate_ratio"]["mean"] <= 1.05
    assert summary["rate_met"] == (summary["rate_ratio"]["min"] >= 0.99)
    assert 0 <= summary["gap_s"]["max"] and summary["gap_met"] == (summary["gap_s"]["max"] < 1)
    assert summary["bytes_per_frame"] > 0 and summary["save_lag_s"]["max"] > 0
    assert 0 < summary["baseline_no_recording"]["rate_ratio"] <= 1.05
    assert "pattern" not in DEVICES  # the bench's device does not stay registered
