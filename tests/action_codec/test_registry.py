"""Codec registry: names, did-you-mean errors, loading by stored name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from action_codec import (
    CheckpointError,
    Codec,
    CodecError,
    UnknownCodecError,
    codec_names,
    load_codec,
    make_codec,
)


def test_known_names_build_codecs_that_follow_the_protocol():
    assert codec_names() == ("fast", "quantile", "uniform")
    chunks = np.random.default_rng(0).normal(size=(30, 20, 2))
    for name in codec_names():
        codec = make_codec(name)
        assert codec.name == name and not codec.fitted
        codec.fit(chunks if name == "fast" else chunks.reshape(-1, 2))
        assert codec.fitted and isinstance(codec, Codec)  # the runtime protocol check


def test_unknown_name_lists_known_names_and_closest_match():
    with pytest.raises(UnknownCodecError) as info:
        make_codec("unifrom")
    message = str(info.value)
    assert "unknown codec 'unifrom'" in message
    assert "fast, quantile, uniform" in message and "did you mean 'uniform'?" in message
    assert isinstance(info.value, CodecError) and isinstance(info.value, KeyError)
    with pytest.raises(UnknownCodecError, match="known codecs are fast, quantile, uniform$"):
        make_codec("zzz")


def test_load_codec_reads_the_stored_name(tmp_path):
    data = np.random.default_rng(0).normal(size=(100, 3))
    make_codec("quantile", n_bins=8).fit(data).save(tmp_path / "q")
    assert load_codec(tmp_path / "q").name == "quantile"
    meta = json.loads((tmp_path / "q" / "codec.json").read_text())
    meta["codec"] = "quantil"
    (tmp_path / "q" / "codec.json").write_text(json.dumps(meta))
    with pytest.raises(UnknownCodecError, match="did you mean 'quantile'"):
        load_codec(tmp_path / "q")
    meta["codec"], meta["version"] = "quantile", 99
    (tmp_path / "q" / "codec.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_codec(tmp_path / "q")
    with pytest.raises(CheckpointError, match="cannot read codec checkpoint"):
        load_codec(tmp_path / "missing")


def test_checkpoint_with_a_foreign_config_is_refused(tmp_path):
    make_codec("uniform").fit(np.eye(3)).save(tmp_path / "u")
    meta = json.loads((tmp_path / "u" / "codec.json").read_text())
    meta["config"]["dither"] = True  # a key this version's config does not have
    (tmp_path / "u" / "codec.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unusable config"):
        load_codec(tmp_path / "u")


def test_empty_batches_round_trip():
    data = np.random.default_rng(1).normal(size=(40, 20, 3))
    fast = make_codec("fast", vocab_size=512).fit(data)
    assert fast.encode(data[:0]) == []
    assert fast.decode([]).shape == (0, 20, 3)
    uniform = make_codec("uniform").fit(data.reshape(-1, 3))
    assert uniform.decode(uniform.encode(np.zeros((0, 3)))).shape == (0, 3)
