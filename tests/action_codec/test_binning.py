"""Binning codecs: half-bin round trip, clipping stats, degenerate dims, save/load, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from action_codec import (
    BinningCodec,
    InvalidInputError,
    NotFittedError,
    TokenRangeError,
    load_codec,
    make_codec,
)

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def fit_and_probe(draw):
    """Fit data (N, D), possibly with constant columns, and probe points inside the bounds."""
    n, d = draw(st.integers(5, 60)), draw(st.integers(1, 5))
    data = draw(arrays(np.float64, (n, d), elements=finite))
    for col in range(d):
        if draw(st.booleans()) and draw(st.booleans()):
            data[:, col] = draw(finite)  # a constant dimension
    fractions = draw(arrays(np.float64, (draw(st.integers(1, 20)), d),
                            elements=st.floats(0, 1)))
    return data, fractions


def _probe(codec: BinningCodec, fractions: np.ndarray) -> np.ndarray:
    # Points inside [lo, hi]: the clipped region is tested separately.
    return np.clip(codec.lo + fractions * (codec.hi - codec.lo), codec.lo, codec.hi)


@SETTINGS
@given(fit_and_probe(), st.sampled_from([2, 7, 256, 1000]))
def test_uniform_round_trip_within_half_a_bin(case, n_bins):
    data, fractions = case
    codec = make_codec("uniform", n_bins=n_bins, out_dtype="float64").fit(data)
    x = _probe(codec, fractions)
    tokens = codec.encode(x)
    assert tokens.shape == x.shape and tokens.dtype == np.int64
    assert tokens.min() >= 0 and tokens.max() < n_bins
    half_bin = (codec.hi - codec.lo) / (2 * n_bins)
    assert np.all(np.abs(codec.decode(tokens) - x) <= half_bin * (1 + 1e-9) + 1e-12)
    assert codec.last_stats.n_clipped == 0


@SETTINGS
@given(fit_and_probe(), st.sampled_from([2, 16, 256]))
def test_quantile_round_trip_within_half_the_local_gap(case, n_bins):
    data, fractions = case
    codec = make_codec("quantile", n_bins=n_bins, out_dtype="float64").fit(data)
    x = _probe(codec, fractions)
    tokens = codec.encode(x)
    c = codec.centres
    rows = np.arange(x.shape[1])
    left = c[rows, tokens] - c[rows, np.maximum(tokens - 1, 0)]
    right = c[rows, np.minimum(tokens + 1, n_bins - 1)] - c[rows, tokens]
    allowed = 0.5 * np.maximum(left, right)  # half the bin the value fell in
    assert np.all(np.abs(codec.decode(tokens) - x) <= allowed * (1 + 1e-9) + 1e-12)


def test_float32_round_trip_on_actions(steps):
    codec = make_codec("uniform", n_bins=256).fit(steps)
    inside = np.clip(steps, codec.lo, codec.hi).astype(np.float32)
    out = codec.decode(codec.encode(inside))
    assert out.dtype == np.float32
    half_bin = (codec.hi - codec.lo) / 512
    assert np.all(np.abs(out - inside) <= half_bin + 1e-7)


def test_batched_shapes_are_kept(steps):
    codec = make_codec("uniform").fit(steps)
    batch = steps[:40].reshape(2, 20, 7)
    assert codec.encode(batch).shape == (2, 20, 7)
    assert codec.decode(codec.encode(batch)).shape == (2, 20, 7)
    assert codec.encode(steps[0]).shape == (7,)


@pytest.mark.parametrize("name", ["uniform", "quantile"])
def test_out_of_range_values_clip_and_are_counted(steps, name):
    codec = make_codec(name).fit(steps)
    x = np.clip(steps[:10], codec.lo, codec.hi)  # float64: float32 could round outside
    x[0, 0] = codec.hi[0] + 1.0
    x[3, 2] = codec.lo[2] - 5.0
    x[4, 2] = codec.lo[2] - 1e6  # far outside: must not overflow the integer cast
    out = codec.decode(codec.encode(x))
    assert codec.last_stats.n_clipped == 3 and codec.last_stats.n_values == 70
    assert codec.last_stats.per_dim.tolist() == [1, 0, 2, 0, 0, 0, 0]
    assert out[0, 0] <= codec.hi[0] and out[4, 2] >= codec.lo[2]
    codec.encode(x)
    assert codec.total_stats.n_clipped == 6  # accumulates over calls
    codec.reset_stats()
    assert codec.total_stats.n_clipped == 0


@pytest.mark.parametrize("name", ["uniform", "quantile"])
def test_constant_and_rare_binary_dims(name):
    rng = np.random.default_rng(0)
    data = np.stack([rng.normal(size=2000), np.full(2000, 0.25),
                     (rng.random(2000) < 0.004).astype(float)], axis=1)  # gripper closed 0.4%
    with np.errstate(all="raise"):  # a division by zero would raise here
        codec = make_codec(name).fit(data)
        out = codec.decode(codec.encode(data))
    assert np.all(out[:, 1] == np.float32(0.25))  # constant dim decodes to its constant
    # The percentile span of the gripper collapses; the codec keeps the rare "closed".
    assert codec.lo[2] == 0.0 and codec.hi[2] == 1.0
    closed = data[:, 2] == 1.0
    assert np.all(out[closed, 2] > 0.99) and np.all(out[~closed, 2] < 0.01)
    codec.encode(np.array([[0.0, 0.3, 0.0]]))
    assert codec.last_stats.per_dim.tolist() == [0, 1, 0]  # off-constant counts as clipped


def test_quantile_decodes_point_masses_exactly():
    data = np.repeat([[0.0], [1.0]], [700, 300], axis=0)
    codec = make_codec("quantile", n_bins=256).fit(data)
    np.testing.assert_array_equal(codec.decode(codec.encode(data)), data)


@pytest.mark.parametrize("name", ["uniform", "quantile"])
def test_save_load_gives_identical_tokens(tmp_path, steps, name):
    codec = make_codec(name, n_bins=1000).fit(steps)
    codec.save(tmp_path / name)
    loaded = load_codec(tmp_path / name)
    assert isinstance(loaded, BinningCodec) and loaded.name == name
    probe = steps * 1.3  # includes clipped values
    np.testing.assert_array_equal(loaded.encode(probe), codec.encode(probe))
    tokens = codec.encode(probe)
    np.testing.assert_array_equal(loaded.decode(tokens), codec.decode(tokens))


@pytest.mark.parametrize("name", ["uniform", "quantile"])
def test_bad_inputs_raise_codec_errors(steps, name):
    codec = make_codec(name, n_bins=256).fit(steps)
    bad = steps[:4].copy()
    bad[1, 3] = np.nan
    with pytest.raises(InvalidInputError, match=r"finite: got nan at index \(1, 3\)"):
        codec.encode(bad)
    bad[1, 3] = np.inf
    with pytest.raises(InvalidInputError, match="finite"):
        codec.encode(bad)
    with pytest.raises(InvalidInputError, match="fitted dimension count 7, got shape"):
        codec.encode(steps[:, :6])
    with pytest.raises(InvalidInputError, match="floating dtype"):
        codec.encode(steps.astype(np.int32))
    with pytest.raises(InvalidInputError, match="numpy array"):
        codec.encode(steps.tolist())
    with pytest.raises(TokenRangeError, match=r"token id 256 .*\[0, 256\)"):
        codec.decode(np.full((2, 7), 256))
    with pytest.raises(TokenRangeError, match="token id -1"):
        codec.decode(np.full((2, 7), -1))
    with pytest.raises(InvalidInputError, match="integer token ids"):
        codec.decode(np.zeros((2, 7)))
    with pytest.raises(InvalidInputError, match="fitted dimension count"):
        codec.decode(np.zeros((2, 6), dtype=np.int64))
    with pytest.raises(InvalidInputError, match="NaN|finite"):
        make_codec(name).fit(bad)
    with pytest.raises(InvalidInputError, match="at least 2 samples"):
        make_codec(name).fit(steps[:1])


@pytest.mark.parametrize("name", ["uniform", "quantile"])
def test_unfitted_codec_says_so(tmp_path, name):
    codec = make_codec(name)
    for call in (lambda: codec.encode(np.zeros((1, 3))),
                 lambda: codec.decode(np.zeros((1, 3), dtype=int)),
                 lambda: codec.save(tmp_path), lambda: codec.dims):
        with pytest.raises(NotFittedError, match=f"{name} codec is not fitted"):
            call()


def test_config_is_validated():
    with pytest.raises(InvalidInputError, match="n_bins"):
        make_codec("uniform", n_bins=1)
    with pytest.raises(InvalidInputError, match="percentiles"):
        make_codec("uniform", percentiles=(99.0, 1.0))
    with pytest.raises(InvalidInputError, match="bad config for codec 'uniform'"):
        make_codec("uniform", bins=3)
