"""DCT + BPE chunk codec: DCT matrix, round trip within the bound, save/load, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from action_codec import (
    CheckpointError,
    CodecError,
    FastCodec,
    InvalidInputError,
    MalformedTokensError,
    NotFittedError,
    TokenRangeError,
    load_codec,
    make_codec,
)
from action_codec.dct import dct, dct_matrix, idct

H, D = 20, 7
SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_dct_matrix_is_orthonormal_and_matches_the_definition():
    mat = dct_matrix(H)
    np.testing.assert_allclose(mat @ mat.T, np.eye(H), atol=1e-12)
    x = np.random.default_rng(0).normal(size=(H, 3))
    # Direct DCT-II sum with orthonormal scaling (what scipy's norm="ortho" computes).
    n = np.arange(H)
    ref = np.array([np.sum(x * np.cos(np.pi * k * (2 * n + 1) / (2 * H))[:, None], axis=0)
                    for k in range(H)])
    ref *= np.sqrt(2 / H)
    ref[0] /= np.sqrt(2)
    np.testing.assert_allclose(dct(x, mat), ref, atol=1e-12)
    np.testing.assert_allclose(idct(dct(x, mat), mat), x, atol=1e-12)


def test_smooth_chunks_compress_and_round_trip(fast_codec, make_chunks):
    test = make_chunks(50, seed=7)
    tokens = fast_codec.encode(test)
    assert len(tokens) == 50 and all(t.dtype == np.int64 and t.ndim == 1 for t in tokens)
    assert np.mean([len(t) for t in tokens]) < H * D / 2  # variable length, far below 140
    out = fast_codec.decode(tokens)
    assert out.shape == test.shape and out.dtype == np.float32
    if fast_codec.last_coeff_clipped == 0 and fast_codec.last_stats.n_clipped == 0:
        assert np.all(np.abs(out - test) <= fast_codec.error_bound() + 1e-6)


@st.composite
def in_range_chunks(draw):
    """1-3 chunks with arbitrary values inside the codec's fitted range (fractions)."""
    n = draw(st.integers(1, 3))
    return draw(arrays(np.float64, (n, H, D), elements=st.floats(0, 1)))


@SETTINGS
@given(in_range_chunks())
def test_round_trip_within_error_bound(fast_full_codec, fractions):
    codec = fast_full_codec
    x = codec.clip_lo + fractions * (codec.clip_hi - codec.clip_lo)
    out = codec.decode(codec.encode(x))
    assert codec.last_coeff_clipped == 0 and codec.last_stats.n_clipped == 0
    assert np.all(np.abs(out - x) <= codec.error_bound() + 1e-6)


def test_dimension_order_round_trips_and_saves(tmp_path, make_chunks):
    data = make_chunks(300, seed=9)
    codec = make_codec("fast", vocab_size=1024, order="dimension", full_range=True).fit(data)
    test = np.clip(make_chunks(20, seed=10), codec.clip_lo, codec.clip_hi)
    tokens = codec.encode(test)
    assert np.all(np.abs(codec.decode(tokens) - test) <= codec.error_bound() + 1e-6)
    codec.save(tmp_path / "dim")
    loaded = load_codec(tmp_path / "dim")
    assert loaded.config.order == "dimension"
    np.testing.assert_array_equal(loaded.decode(tokens), codec.decode(tokens))
    with pytest.raises(InvalidInputError, match="order must be"):
        make_codec("fast", order="time")


def test_single_chunk_helpers(fast_codec, chunks):
    tokens = fast_codec.encode_chunk(chunks[0])
    assert tokens.ndim == 1
    np.testing.assert_array_equal(fast_codec.decode_chunk(tokens),
                                  fast_codec.decode([tokens])[0])


def test_equal_length_batches_decode_from_a_2d_array(fast_codec):
    zeros = np.zeros((3, H, D), dtype=np.float32)
    tokens = fast_codec.encode(zeros)
    np.testing.assert_array_equal(fast_codec.decode(np.stack(tokens)),
                                  fast_codec.decode(tokens))


def test_out_of_range_values_and_coefficients_are_clipped_and_counted(fast_codec, chunks):
    x = chunks[:2].copy()
    x[0, 3, 1] = fast_codec.clip_hi[1] + 10.0
    x[1, :, 0] = fast_codec.clip_lo[0] - 10.0
    out = fast_codec.decode(fast_codec.encode(x))
    assert fast_codec.last_stats.n_clipped == 1 + H
    assert fast_codec.last_stats.per_dim[:2].tolist() == [H, 1]
    assert np.all(out >= fast_codec.clip_lo - 1e-6) and np.all(out <= fast_codec.clip_hi + 1e-6)


def test_coefficients_beyond_the_fitted_integer_range_are_clipped_and_counted():
    rng = np.random.default_rng(5)
    data = rng.normal(0, 0.01, (100, H, 2))
    data[0, 7] = 1.0  # one spike stretches the value range but not the coefficient range
    codec = make_codec("fast", vocab_size=1024, coeff_margin=0.0).fit(data)
    codec.encode(np.full((1, H, 2), 0.9))  # in range, but its DC is far beyond any seen
    assert codec.last_stats.n_clipped == 0 and codec.last_coeff_clipped == 2


def test_save_load_gives_identical_tokens(tmp_path, fast_codec, make_chunks):
    fast_codec.save(tmp_path / "fast")
    loaded = load_codec(tmp_path / "fast")
    assert isinstance(loaded, FastCodec) and loaded.vocab_size == fast_codec.vocab_size
    test = make_chunks(20, seed=11)
    a, b = fast_codec.encode(test), loaded.encode(test)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    np.testing.assert_array_equal(loaded.decode(a), fast_codec.decode(a))


def test_truncated_or_padded_sequences_are_errors_never_zeros(fast_codec, chunks):
    tokens = fast_codec.encode(chunks[:2])
    with pytest.raises(MalformedTokensError, match=r"sequence 1 .* expected exactly 140"):
        fast_codec.decode([tokens[0], tokens[1][:-1]])
    with pytest.raises(MalformedTokensError, match="expected exactly 140"):
        fast_codec.decode([np.r_[tokens[0], tokens[0][:1]]])
    with pytest.raises(MalformedTokensError, match="0 tokens"):
        fast_codec.decode([np.array([], dtype=np.int64)])


def test_bad_inputs_raise_codec_errors(fast_codec, chunks):
    vocab = fast_codec.vocab_size
    with pytest.raises(TokenRangeError, match=rf"token id {vocab} .*\[0, {vocab}\)"):
        fast_codec.decode([np.array([0, vocab])])
    with pytest.raises(TokenRangeError, match="token id -3"):
        fast_codec.decode([np.array([-3])])
    with pytest.raises(InvalidInputError, match="integer token ids"):
        fast_codec.decode([np.array([1.0, 2.0])])
    with pytest.raises(InvalidInputError, match="decode_chunk"):
        fast_codec.decode(np.array([1, 2, 3]))
    bad = chunks[:2].copy()
    bad[0, 5, 6] = np.nan
    with pytest.raises(InvalidInputError, match=r"finite: got nan at index \(0, 5, 6\)"):
        fast_codec.encode(bad)
    with pytest.raises(InvalidInputError, match=r"\(N, H=20, D\)"):
        fast_codec.encode(chunks[:, :10])
    with pytest.raises(InvalidInputError, match="fitted dimension count 7"):
        fast_codec.encode(chunks[..., :6])
    with pytest.raises(InvalidInputError, match="3 axes"):
        fast_codec.encode(chunks[0])
    with pytest.raises(InvalidInputError, match="floating dtype"):
        fast_codec.encode(chunks.astype(np.int64))


def test_unfitted_and_misconfigured(tmp_path, chunks):
    codec = make_codec("fast")
    for call in (lambda: codec.encode(chunks), lambda: codec.decode([np.array([0])]),
                 lambda: codec.save(tmp_path), lambda: codec.vocab_size):
        with pytest.raises(NotFittedError, match="fast codec is not fitted"):
            call()
    with pytest.raises(InvalidInputError, match="scale"):
        make_codec("fast", scale=0)
    with pytest.raises(CodecError, match="lower the scale or raise vocab_size"):
        make_codec("fast", scale=1000.0, vocab_size=256).fit(chunks[:50])


def test_constant_dimension_is_free_and_exact(make_chunks):
    data = make_chunks(200, seed=3)
    data[..., 4] = 0.125
    with np.errstate(divide="raise", invalid="raise"):
        codec = make_codec("fast", vocab_size=512).fit(data)
        out = codec.decode(codec.encode(data[:10]))
    assert np.all(out[..., 4] == np.float32(0.125))


def test_loading_a_broken_checkpoint_is_an_error(tmp_path, fast_codec):
    fast_codec.save(tmp_path / "ok")
    (tmp_path / "ok" / "bpe.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read BPE tokenizer"):
        load_codec(tmp_path / "ok")
    make_codec("uniform").fit(np.eye(3)).save(tmp_path / "uniform")
    with pytest.raises(CheckpointError, match="holds a 'uniform' codec, expected 'fast'"):
        FastCodec.load(tmp_path / "uniform")
