"""Errors raised by the action_codec package.

Every error derives from :class:`CodecError`, so callers that only want to know
"the codec refused this" catch one class. The subclasses say which contract was
broken; their messages say what was received and what is allowed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CodecError(ValueError):
    """Base class of every action_codec error."""


class NotFittedError(CodecError):
    """A codec was used (encode, decode, save, vocab size) before ``fit`` or ``load``."""

    def __init__(self, codec_name: str) -> None:
        super().__init__(
            f"{codec_name} codec is not fitted: call fit(data) or load a saved codec first"
        )


class InvalidInputError(CodecError):
    """An input array has the wrong shape or dtype, or holds NaN/inf."""


class TokenRangeError(CodecError):
    """A token id lies outside the codec's (or a vocabulary segment's) range."""


class MalformedTokensError(CodecError):
    """A token sequence does not parse into a complete value (e.g. a truncated chunk)."""


class VocabMismatchError(CodecError):
    """A saved vocabulary layout differs from the one the caller expects."""


class CheckpointError(CodecError):
    """A saved codec directory is missing, unreadable, or written by another codec/version."""


class UnknownCodecError(CodecError, KeyError):
    """A codec name is not in the registry."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.name = name
        self.known = tuple(known)
        super().__init__(f"unknown codec {name!r}: known codecs are {', '.join(known)}{hint}")

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and wrap it in quotes.
        return str(self.args[0])
