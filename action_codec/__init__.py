"""Action and state codecs for token policies, and the shared vocabulary layout.

Public API:

* :func:`make_codec` / :func:`load_codec` / :func:`codec_names`: the codec registry
  ("uniform", "quantile", "fast").
* :class:`BinningCodec` (per-dimension bins, (N, D) floats <-> (N, D) tokens) and
  :class:`FastCodec` (DCT + BPE, (N, H, D) chunks <-> N variable-length token arrays).
* :class:`VocabLayout` / :class:`VocabSizes`: the one vocabulary of text, action, state,
  image and special tokens, with local <-> global id mapping and a stable hash.
* :class:`Tokenizers`: layout + action codec + state codec, saved/loaded as one directory
  with the layout checked on load.
* :mod:`action_codec.errors`: :class:`CodecError` and its subclasses.

Typical use by a token policy::

    action = make_codec("fast", horizon=20).fit(action_chunks)     # (N, 20, 7) float
    state = make_codec("uniform", n_bins=256).fit(states)           # (M, 14) float
    layout = VocabLayout.from_codecs(action, state, text=256, image=4096)
    ids = layout.to_global("action", action.encode(chunk[None])[0])  # 1-D global ids
    seq = [layout.special_id("begin_actions"), *ids, layout.special_id("end_actions")]
    chunk = action.decode([layout.to_local("action", ids)])[0]       # (20, 7) float32
    Tokenizers(layout, action, state).save(ckpt / "tokenizers")
    tok = Tokenizers.load(ckpt / "tokenizers", expected=layout)      # mismatch -> error

Every encode clips to the fitted range and reports how much in ``codec.last_stats``
(and ``total_stats``); decoding malformed tokens raises, it never returns zeros.
"""

from action_codec.base import ClipStats, Codec
from action_codec.binning import BinningCodec, BinningConfig
from action_codec.checkpoint import Tokenizers
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
    "TokenRange", "TokenRangeError", "Tokenizers", "UnknownCodecError", "VocabLayout",
    "VocabMismatchError", "VocabSizes", "codec_names", "load_codec", "make_codec",
]
