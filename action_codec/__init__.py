"""Action and state codecs for token policies, and the shared vocabulary layout.

Public API:

* :func:`make_codec` / :func:`load_codec` / :func:`codec_names`: the codec registry
  ("uniform", "quantile", "fast").
* :class:`BinningCodec` (per-dimension bins, (N, D) floats <-> (N, D) tokens) and
  :class:`FastCodec` (DCT + BPE, (N, H, D) chunks <-> N variable-length token arrays).
* :class:`VocabLayout` / :class:`VocabSizes`: the one vocabulary of text, action, state,
  image and special tokens, with local <-> global id mapping and a stable hash.
* :mod:`action_codec.errors`: :class:`CodecError` and its subclasses.
"""

from action_codec.base import ClipStats, Codec
from action_codec.binning import BinningCodec, BinningConfig
from action_codec.errors import (
    CheckpointError,
    CodecError,
    InvalidInputError,
    MalformedTokensError,
    NotFittedError,
    TokenRangeError,
    UnknownCodecError,
    VocabMismatchError,
)
from action_codec.fast import FastCodec, FastConfig
from action_codec.registry import codec_names, load_codec, make_codec
from action_codec.vocab import TokenRange, VocabLayout, VocabSizes

__all__ = [
    "BinningCodec", "BinningConfig", "CheckpointError", "ClipStats", "Codec", "CodecError",
    "FastCodec", "FastConfig", "InvalidInputError", "MalformedTokensError", "NotFittedError",
    "TokenRange", "TokenRangeError", "UnknownCodecError", "VocabLayout", "VocabMismatchError",
    "VocabSizes", "codec_names", "load_codec", "make_codec",
]
