"""Smoke test of bench/codec.py on its synthetic data (the expert path needs the simulator)."""

from __future__ import annotations

import json

import numpy as np

from tests.bench.conftest import load_bench


def test_bench_prints_one_json_line_labelled_synthetic(capsys):
    bench = load_bench("codec")
    report = bench.main(["--synthetic", "--episodes", "16", "--vectors", "20000",
                         "--sweep", "50"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(report))
    assert report["data"]["synthetic"] and "SYNTHETIC" in report["data"]["source"]
    for name in ("uniform", "quantile", "fast", "fast_dimension_order"):
        entry = report["codecs"][name]
        assert {"tokens_per_chunk", "max_abs_err", "rms_err", "vectors_per_s"} <= entry.keys()
    assert report["codecs"]["uniform"]["tokens_per_chunk"] == 140
    assert [(s["scale"], s["order"]) for s in report["fast_sweep"]] == [
        (10.0, "frequency"), (10.0, "dimension"), (50.0, "frequency"), (50.0, "dimension")]
    assert "fast_token_reduction_vs_uniform" in report["goals"]


def test_bench_reads_npz_episodes(tmp_path):
    bench = load_bench("codec")
    episodes = bench.synthetic_episodes(3, seed=4)
    path = tmp_path / "actions.npz"
    np.savez(path, actions=np.concatenate(episodes),
             episode_ends=np.cumsum([len(e) for e in episodes]))
    loaded = bench.npz_episodes(str(path))
    assert all(np.array_equal(a, b) for a, b in zip(loaded, episodes, strict=True))
