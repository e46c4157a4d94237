"""WithAbsent: NaN <-> the absent id, every other value exactly as the inner codec."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from action_codec.absent import WithAbsent
from action_codec.binning import BinningCodec, BinningConfig
from action_codec.errors import InvalidInputError, TokenRangeError

INNER = BinningCodec(BinningConfig(n_bins=16)).fit(
    np.random.default_rng(0).uniform(-1, 1, (200, 3)))
CODEC = WithAbsent(INNER)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, (5, 3), elements=st.one_of(
    st.floats(-2, 2, width=32), st.just(float("nan")))))
def test_absent_round_trips_and_present_values_are_the_inner_codecs(x):
    ids = CODEC.encode(x)
    absent = np.isnan(x)
    assert ((ids == CODEC.absent_id) == absent).all()
    back = CODEC.decode(ids)
    assert (np.isnan(back) == absent).all()
    filled = np.where(absent, 0, x).astype(np.float32)
    np.testing.assert_array_equal(back[~absent], INNER.decode(INNER.encode(filled))[~absent])


def test_the_absent_id_is_the_last_of_one_more_token():
    assert CODEC.absent_id == 16 and CODEC.vocab_size == 17 and CODEC.dims == 3


def test_inf_and_ids_outside_the_range_are_refused():
    with pytest.raises(InvalidInputError, match="only NaN means absent"):
        CODEC.encode(np.array([[0.0, np.inf, 0.0]], np.float32))
    with pytest.raises(TokenRangeError, match="outside this codec's range"):
        CODEC.decode(np.array([[0, 17, 0]]))


def test_saving_writes_the_inner_codec(tmp_path):
    CODEC.save(tmp_path / "c")
    loaded = BinningCodec.load(tmp_path / "c")
    np.testing.assert_array_equal(loaded.lo, INNER.lo)
