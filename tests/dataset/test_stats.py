"""Stats: per-episode values as NumPy computes them; aggregation equals whole-data stats."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataset import stats


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=5), st.integers(0, 2**31))
def test_aggregate_equals_stats_of_concatenation(lengths, seed):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(n, 3)) * rng.uniform(0.1, 5) for n in lengths]
    agg = stats.aggregate([{"x": stats.vector_stats(p)} for p in parts])["x"]
    whole = np.concatenate(parts)
    np.testing.assert_allclose(agg["mean"], whole.mean(0), atol=1e-9)
    np.testing.assert_allclose(agg["std"], whole.std(0), atol=1e-9)
    np.testing.assert_array_equal(agg["min"], whole.min(0))
    np.testing.assert_array_equal(agg["max"], whole.max(0))
    assert agg["count"].tolist() == [len(whole)]


def test_image_stats_are_exact_per_channel_in_unit_range():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (30, 16, 16, 3), dtype=np.uint8)
    frames[..., 2] //= 4
    s = stats.image_stats(frames)
    px = frames.reshape(-1, 3) / 255.0
    quantiles = zip(stats.QUANTILE_KEYS, stats.QUANTILES, strict=True)
    for key, ref in [("mean", px.mean(0)), ("std", px.std(0)), ("min", px.min(0)),
                     ("max", px.max(0))] + [(k, np.quantile(px, q, axis=0, method="inverted_cdf"))
                                            for k, q in quantiles]:
        assert s[key].shape == (3, 1, 1)
        np.testing.assert_allclose(s[key].ravel(), ref, atol=1e-12, err_msg=key)
    assert s["count"].tolist() == [30]


def test_image_sampling_follows_lerobot():
    assert len(stats.sample_indices(50)) == 50
    assert len(stats.sample_indices(1000)) == 177  # LeRobot's documented value
    assert stats.sample_indices(1000)[[0, -1]].tolist() == [0, 999]


def test_json_round_trip():
    s = {"a": stats.vector_stats(np.arange(10.0))}
    back = stats.from_json(stats.to_json(s))
    for k in s["a"]:
        np.testing.assert_array_equal(back["a"][k], s["a"][k])
