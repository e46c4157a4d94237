"""The policy's one shared token vocabulary, written down once.

The only hand-written numbers are the segment sizes in :class:`VocabSizes`; every id
range is derived from them in a fixed segment order::

    [ text | action | state | image | plan | special ]
      0 ...                               total_size - 1

Text comes first so byte-level text ids equal their byte values. Codecs produce *local*
tokens in ``[0, size)``; :meth:`VocabLayout.to_global` and :meth:`VocabLayout.to_local`
shift them into and out of their segment with range checks.

A layout is saved as JSON next to a checkpoint; :meth:`VocabLayout.load` rebuilds it
from the stored sizes, refuses a file whose stored ranges or hash disagree with what
this code derives, and refuses a layout that differs from the one the caller expects.
:attr:`VocabLayout.hash` is a stable digest of the layout, recorded by exports.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from action_codec.base import Codec
from action_codec.errors import CheckpointError, TokenRangeError, VocabMismatchError

FORMAT = "motoken.vocab"
FORMAT_VERSION = 1

#: Order of the segments in id space. Changing it changes every id (and the hash).
SEGMENTS: tuple[str, ...] = ("text", "action", "state", "image", "plan", "special")

#: Special tokens, in id order inside the "special" segment.
DEFAULT_SPECIALS: tuple[str, ...] = (
    "pad",
    "begin_actions", "end_actions",
    "begin_state", "end_state",
    "begin_image", "end_image",
    "begin_frame", "end_frame",
    "begin_plan",
)


@dataclass(frozen=True)
class VocabSizes:
    """Number of ids in each segment; the single source every range derives from.

    Attributes:
        text: Text ids (256 for byte-level text, or a BPE's vocabulary size).
        action: The action codec's ``vocab_size``.
        state: The state codec's ``vocab_size``.
        image: The image VQ codebook size (0 while no image tokenizer exists).
        plan: The plan codec's ``vocab_size`` (0: the policy writes no plan tokens).
        specials: Names of special tokens; their count is the special segment's size.
    """

    text: int = 256
    action: int = 256
    state: int = 256
    image: int = 4096
    plan: int = 0
    specials: tuple[str, ...] = DEFAULT_SPECIALS

    def __post_init__(self) -> None:
        for name in SEGMENTS[:-1]:
            size = getattr(self, name)
            if not isinstance(size, int) or size < 0:
                raise VocabMismatchError(f"{name} size must be an int >= 0, got {size!r}")
        if len(set(self.specials)) != len(self.specials) or not all(self.specials):
            raise VocabMismatchError(f"special names must be unique, non-empty: {self.specials}")

    def size_of(self, segment: str) -> int:
        """Number of ids in ``segment``."""
        return len(self.specials) if segment == "special" else getattr(self, segment)


@dataclass(frozen=True)
class TokenRange:
    """Half-open global id range ``[start, stop)`` of one segment."""

    name: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        """Number of ids in the range."""
        return self.stop - self.start


@dataclass(frozen=True)
class VocabLayout:
    """Derived id ranges of the shared vocabulary. Build it from sizes, never from ids.

    Example:
        >>> layout = VocabLayout.from_codecs(action_codec, state_codec)
        >>> ids = layout.to_global("action", action_codec.encode(actions))
        >>> layout.special_id("begin_actions")
    """

    sizes: VocabSizes = field(default_factory=VocabSizes)
    ranges: dict[str, TokenRange] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ranges, start = {}, 0
        for name in SEGMENTS:
            stop = start + self.sizes.size_of(name)
            ranges[name] = TokenRange(name, start, stop)
            start = stop
        object.__setattr__(self, "ranges", ranges)  # frozen: derived once, here

    @classmethod
    def from_codecs(cls, action_codec: Codec, state_codec: Codec, text: int = 256,
                    image: int = 4096, specials: tuple[str, ...] = DEFAULT_SPECIALS
                    ) -> VocabLayout:
        """Layout whose action/state segments are sized by fitted codecs."""
        return cls(VocabSizes(text=text, action=action_codec.vocab_size,
                              state=state_codec.vocab_size, image=image, specials=specials))

    @property
    def total_size(self) -> int:
        """Number of ids in the whole vocabulary (the embedding table's rows)."""
        return self.ranges[SEGMENTS[-1]].stop

    def special_id(self, name: str) -> int:
        """Global id of the special token ``name``."""
        try:
            index = self.sizes.specials.index(name)
        except ValueError:
            raise TokenRangeError(
                f"unknown special token {name!r}; known: {', '.join(self.sizes.specials)}"
            ) from None
        return self.ranges["special"].start + index

    def _range(self, segment: str) -> TokenRange:
        if segment not in self.ranges:
            raise TokenRangeError(f"unknown segment {segment!r}; known: {', '.join(SEGMENTS)}")
        return self.ranges[segment]

    def to_global(self, segment: str, local: Any) -> np.ndarray:
        """Shift local ids ``[0, size)`` of ``segment`` to global ids (same shape, int64).

        Raises:
            TokenRangeError: Unknown segment or a local id outside ``[0, size)``.
        """
        r = self._range(segment)
        ids = _as_ids(local)
        _check_range(ids, 0, r.size, f"local {segment} token")
        return ids + r.start

    def to_local(self, segment: str, global_ids: Any) -> np.ndarray:
        """Map global ids of ``segment`` back to local ids ``[0, size)`` (same shape, int64).

        Raises:
            TokenRangeError: Unknown segment or an id outside the segment's global range.
        """
        r = self._range(segment)
        ids = _as_ids(global_ids)
        _check_range(ids, r.start, r.stop, f"global {segment} token")
        return ids - r.start

    def segment_of(self, global_id: int) -> str:
        """Name of the segment holding ``global_id``."""
        for r in self.ranges.values():
            if r.start <= global_id < r.stop:
                return r.name
        raise TokenRangeError(f"token id {global_id} is outside [0, {self.total_size})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: sizes, derived ranges and the hash."""
        sizes = asdict(self.sizes)
        sizes["specials"] = list(self.sizes.specials)
        return {"format": FORMAT, "version": FORMAT_VERSION, "sizes": sizes,
                "ranges": {n: [r.start, r.stop] for n, r in self.ranges.items()},
                "total_size": self.total_size, "hash": self.hash}

    @property
    def hash(self) -> str:
        """Stable sha256 hex digest of the segment order, sizes and special names."""
        sizes = asdict(self.sizes)
        sizes["specials"] = list(self.sizes.specials)
        canonical = json.dumps({"format": FORMAT, "version": FORMAT_VERSION,
                                "segments": list(SEGMENTS), "sizes": sizes},
                               sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def save(self, path: str | Path) -> None:
        """Write the layout as JSON to ``path`` (e.g. ``ckpt/vocab.json``)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VocabLayout:
        """Rebuild a layout from :meth:`to_dict` output, checking the stored derivations.

        Raises:
            CheckpointError: Wrong format/version, or stored ranges/hash that disagree
                with the ranges this code derives from the stored sizes.
        """
        if data.get("format") != FORMAT or data.get("version") != FORMAT_VERSION:
            raise CheckpointError(
                f"not a {FORMAT} v{FORMAT_VERSION} file: format={data.get('format')!r} "
                f"version={data.get('version')!r}"
            )
        try:
            sizes = dict(data["sizes"])
            sizes["specials"] = tuple(sizes["specials"])
            layout = cls(VocabSizes(**sizes))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"vocab layout file has unusable sizes: {exc}") from exc
        if layout.to_dict() != data:
            raise CheckpointError(
                "stored vocab ranges/hash disagree with the ones derived from its sizes: "
                f"stored {data.get('ranges')}, hash {data.get('hash')}; derived "
                f"{layout.to_dict()['ranges']}, hash {layout.hash}"
            )
        return layout

    @classmethod
    def load(cls, path: str | Path, expected: VocabLayout | None = None) -> VocabLayout:
        """Read a layout saved by :meth:`save`; if ``expected`` is given it must match.

        Raises:
            CheckpointError: Unreadable or inconsistent file.
            VocabMismatchError: The stored layout differs from ``expected``.
        """
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read vocab layout {path}: {exc}") from exc
        layout = cls.from_dict(data)
        if expected is not None:
            expected.check_same(layout, source=str(path))
        return layout

    def check_same(self, other: VocabLayout, source: str = "other layout") -> None:
        """Raise :class:`VocabMismatchError` naming every field where ``other`` differs."""
        mine, theirs = asdict(self.sizes), asdict(other.sizes)
        diffs = [f"{k}: expected {mine[k]!r}, {source} has {theirs[k]!r}"
                 for k in mine if mine[k] != theirs[k]]
        if diffs:
            raise VocabMismatchError("vocabulary layout mismatch: " + "; ".join(diffs))


def _as_ids(values: Any) -> np.ndarray:
    ids = np.asarray(values)
    if ids.size == 0 and ids.dtype.kind == "f":
        ids = ids.astype(np.int64)
    if ids.dtype.kind not in "iu":
        raise TokenRangeError(f"token ids must be integers, got dtype {ids.dtype}")
    return ids.astype(np.int64, copy=False)


def _check_range(ids: np.ndarray, start: int, stop: int, what: str) -> None:
    if ids.size == 0:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < start or hi >= stop:
        bad = lo if lo < start else hi
        raise TokenRangeError(f"{what} id {bad} is outside the allowed range [{start}, {stop})")
