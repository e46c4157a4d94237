"""A binning codec with one more token: "absent", for values a row does not have.

A policy whose plan covers the union of several tasks' objects (policies.training.mixed) has
slots for objects an episode's task lacks. Their value is NaN, and no bin may stand for it: a
made-up number would teach the model that a missing ball sits at some offset from the tool.
`WithAbsent` encodes NaN as its own id, `absent_id` = the inner codec's vocab_size (the last
id of the segment, so a decoder constrained to the segment's contiguous id range can write
it), and decodes that id back to NaN.

The fitted bins are the inner codec's, unchanged (fit it on present values only, e.g.
`BinningCodec.fit_columns`); saving writes the inner codec, so the file does not say whether
an absent id exists: the policy config does (PolicyConfig.plan_object_names).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from action_codec.base import check_token_ids
from action_codec.binning import BinningCodec
from action_codec.errors import InvalidInputError


class WithAbsent:
    """`inner`'s tokens, plus `absent_id` for NaN (module doc).

    Example:
        >>> codec = WithAbsent(BinningCodec().fit_columns(present_columns))
        >>> codec.encode(np.array([[0.1, np.nan]], np.float32))   # [[bin, codec.absent_id]]
        >>> codec.decode(np.array([[3, codec.absent_id]]))        # [[centre, nan]]
    """

    def __init__(self, inner: BinningCodec) -> None:
        self.inner = inner

    @property
    def absent_id(self) -> int:
        return self.inner.vocab_size

    @property
    def vocab_size(self) -> int:
        """The inner codec's bins and the absent id."""
        return self.inner.vocab_size + 1

    @property
    def dims(self) -> int:
        return self.inner.dims

    def encode(self, data: np.ndarray) -> np.ndarray:
        """(..., D) floats, NaN where absent -> (..., D) int64: bins, absent_id at NaN.

        Raises:
            InvalidInputError: +-inf (a broken value, not an absent one), or what the inner
                codec refuses.
        """
        x = np.asarray(data)
        if x.dtype.kind != "f":
            raise InvalidInputError(f"encode input must have a floating dtype, got {x.dtype}")
        absent = np.isnan(x)
        if np.isinf(x).any():
            raise InvalidInputError("encode input holds +-inf; only NaN means absent")
        # Absent values are encoded as the lower bound (any value would do) and replaced.
        filled = np.where(absent, self.inner.lo, x).astype(x.dtype)
        return np.where(absent, self.absent_id, self.inner.encode(filled))

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """(..., D) ids in [0, vocab_size) -> (..., D) floats, NaN at absent_id.

        Raises:
            TokenRangeError: an id outside [0, vocab_size); what the inner codec refuses.
        """
        t = check_token_ids(tokens, "decode input", self.vocab_size)
        absent = t == self.absent_id
        values = self.inner.decode(np.where(absent, 0, t))
        return np.where(absent, np.nan, values).astype(values.dtype)

    def save(self, directory: str | Path) -> None:
        """The inner codec's file (module doc)."""
        self.inner.save(directory)
