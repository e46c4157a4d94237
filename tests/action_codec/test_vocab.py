"""Vocabulary layout: derived ranges, id mapping, JSON round trip, mismatch and hash."""

from __future__ import annotations

import json

import numpy as np
import pytest

from action_codec import (
    CheckpointError,
    Tokenizers,
    TokenRangeError,
    VocabLayout,
    VocabMismatchError,
    VocabSizes,
    make_codec,
)
from action_codec.vocab import SEGMENTS

LAYOUT = VocabLayout(VocabSizes(text=256, action=1024, state=256, image=4096))


def test_ranges_are_contiguous_disjoint_and_cover_the_vocab():
    ranges = [LAYOUT.ranges[name] for name in SEGMENTS]
    assert ranges[0].start == 0
    for before, after in zip(ranges, ranges[1:], strict=False):
        assert before.stop == after.start  # touching, never overlapping
    assert ranges[-1].stop == LAYOUT.total_size == 256 + 1024 + 256 + 4096 + 0 + 10
    owners = np.concatenate([np.full(r.size, i) for i, r in enumerate(ranges)])
    assert owners.size == LAYOUT.total_size  # every id belongs to exactly one segment


def test_text_ids_equal_bytes_and_specials_are_distinct():
    assert LAYOUT.to_global("text", np.arange(256)).tolist() == list(range(256))
    specials = [LAYOUT.special_id(name) for name in LAYOUT.sizes.specials]
    assert len(set(specials)) == len(specials)
    assert all(LAYOUT.segment_of(i) == "special" for i in specials)


@pytest.mark.parametrize("segment", ["text", "action", "state", "image"])
def test_global_local_round_trip_and_segment_of(segment):
    r = LAYOUT.ranges[segment]
    local = np.array([[0, r.size - 1], [r.size // 2, 1]])
    glob = LAYOUT.to_global(segment, local)
    assert glob.shape == local.shape and glob.dtype == np.int64
    assert glob.min() >= r.start and glob.max() < r.stop
    np.testing.assert_array_equal(LAYOUT.to_local(segment, glob), local)
    assert {LAYOUT.segment_of(int(g)) for g in glob.ravel()} == {segment}


def test_mapping_refuses_ids_outside_the_segment():
    with pytest.raises(TokenRangeError, match=r"local action token id 1024 .*\[0, 1024\)"):
        LAYOUT.to_global("action", [3, 1024])
    with pytest.raises(TokenRangeError, match="local state token id -1"):
        LAYOUT.to_global("state", [-1])
    with pytest.raises(TokenRangeError, match="global action token id 5"):
        LAYOUT.to_local("action", [5])  # a text id is not an action id
    with pytest.raises(TokenRangeError, match="unknown segment 'actions'"):
        LAYOUT.to_global("actions", [0])
    with pytest.raises(TokenRangeError, match="must be integers"):
        LAYOUT.to_global("action", np.array([0.5]))
    with pytest.raises(TokenRangeError, match="outside"):
        LAYOUT.segment_of(LAYOUT.total_size)
    with pytest.raises(TokenRangeError, match="unknown special token 'bos'"):
        LAYOUT.special_id("bos")


def test_json_round_trip(tmp_path):
    path = tmp_path / "vocab.json"
    LAYOUT.save(path)
    loaded = VocabLayout.load(path, expected=LAYOUT)
    assert loaded == LAYOUT
    assert loaded.ranges == LAYOUT.ranges and loaded.hash == LAYOUT.hash


def test_load_with_a_different_expected_layout_is_an_error(tmp_path):
    path = tmp_path / "vocab.json"
    LAYOUT.save(path)
    other = VocabLayout(VocabSizes(text=256, action=256, state=256, image=4096))
    with pytest.raises(VocabMismatchError, match="action: expected 256, .* has 1024"):
        VocabLayout.load(path, expected=other)


def test_tampered_or_foreign_file_is_refused(tmp_path):
    path = tmp_path / "vocab.json"
    data = LAYOUT.to_dict()
    data["ranges"]["action"] = [256, 1000]  # hand-edited range: no longer derived
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="disagree"):
        VocabLayout.load(path)
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CheckpointError, match="not a motoken.vocab"):
        VocabLayout.load(path)
    with pytest.raises(CheckpointError, match="cannot read"):
        VocabLayout.load(tmp_path / "missing.json")


def test_hash_is_stable_and_sensitive():
    same = VocabLayout(VocabSizes(text=256, action=1024, state=256, image=4096))
    assert same.hash == LAYOUT.hash and len(LAYOUT.hash) == 64
    assert VocabLayout(VocabSizes(action=1025)).hash != VocabLayout(VocabSizes(action=1024)).hash
    renamed = VocabSizes(specials=("pad", "begin_actions"))
    assert VocabLayout(renamed).hash != VocabLayout(VocabSizes(specials=("pad", "boa"))).hash


def test_sizes_are_validated():
    with pytest.raises(VocabMismatchError, match="action size"):
        VocabSizes(action=-1)
    with pytest.raises(VocabMismatchError, match="unique"):
        VocabSizes(specials=("pad", "pad"))


def test_layout_from_fitted_codecs(steps):
    action = make_codec("uniform", n_bins=256).fit(steps)
    state = make_codec("quantile", n_bins=128).fit(steps)
    layout = VocabLayout.from_codecs(action, state, image=0)
    assert layout.ranges["action"].size == 256 and layout.ranges["state"].size == 128
    assert layout.ranges["image"].size == 0
    ids = layout.to_global("action", action.encode(steps[:5]))
    np.testing.assert_array_equal(action.decode(layout.to_local("action", ids)),
                                  action.decode(action.encode(steps[:5])))


def test_tokenizers_checkpoint_round_trip_and_mismatch(tmp_path, steps, chunks):
    action = make_codec("fast", vocab_size=512).fit(chunks)
    state = make_codec("uniform", n_bins=128).fit(steps)
    layout = VocabLayout.from_codecs(action, state)
    Tokenizers(layout, action, state).save(tmp_path / "tok")
    loaded = Tokenizers.load(tmp_path / "tok", expected=layout)
    assert loaded.layout.hash == layout.hash
    a, b = action.encode(chunks[:5]), loaded.action.encode(chunks[:5])
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    np.testing.assert_array_equal(loaded.state.encode(steps), state.encode(steps))
    with pytest.raises(VocabMismatchError, match="image: expected 0"):
        Tokenizers.load(tmp_path / "tok", expected=VocabLayout.from_codecs(action, state, image=0))
    with pytest.raises(VocabMismatchError, match="state codec 'uniform' has 128 tokens"):
        Tokenizers(VocabLayout(VocabSizes(action=action.vocab_size, state=256)), action, state)
