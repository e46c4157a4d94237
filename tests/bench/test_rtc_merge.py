"""bench/rtc.py --merge: runs split over (mode, delay) cells join into one complete grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.conftest import load_bench


def _part(tmp_path: Path, name: str, cells: dict[str, list[int]]) -> Path:
    modes = {m: {str(d): {"success_rate": d / 1000, "jerk": 0.01} for d in ds}
             for m, ds in cells.items()}
    run = {"bench": "rtc", "policy": "p", "seeds_per_cell": 50, "first_seed": 1_000_000,
           "chunk": 8, "delays_ms": sorted({d for ds in cells.values() for d in ds}),
           "modes": modes, "wall_s": 10.0}
    path = tmp_path / name
    path.write_text(json.dumps(run))
    return path


def test_merge_joins_cells_split_by_delay(tmp_path, capsys):
    rtc = load_bench("rtc")
    parts = [_part(tmp_path, "a.json", {"sync": [0, 50, 100, 200], "rtc": [0, 50]}),
             _part(tmp_path, "b.json", {"rtc": [100, 200]})]
    rtc.merge(parts, tmp_path / "rtc.png")
    merged = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert merged["delays_ms"] == [0, 50, 100, 200]
    assert list(merged["modes"]["rtc"]) == ["0", "50", "100", "200"]
    assert merged["modes"]["rtc"]["200"]["success_rate"] == 0.2
    assert (tmp_path / "rtc.png").stat().st_size > 0


def test_merge_refuses_overlapping_or_incomplete_grids(tmp_path):
    rtc = load_bench("rtc")
    a = _part(tmp_path, "a.json", {"rtc": [0, 50]})
    with pytest.raises(SystemExit, match="rtc at delays \\[50\\] ms appears in more than one"):
        rtc.merge([a, _part(tmp_path, "b.json", {"rtc": [50, 100]})], tmp_path / "x.png")
    with pytest.raises(SystemExit, match="lacks \\['naive@50'\\]"):
        rtc.merge([a, _part(tmp_path, "c.json", {"naive": [0]})], tmp_path / "x.png")
