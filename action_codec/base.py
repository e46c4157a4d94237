"""The protocol every codec follows, plus the input checks and clip statistics they share.

A codec turns float arrays (actions or robot state) into integer tokens in its own local
range ``[0, vocab_size)`` and back. Mapping local tokens into the policy's shared
vocabulary is the job of :mod:`action_codec.vocab`, not of the codec.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from action_codec.errors import CheckpointError, InvalidInputError, TokenRangeError

ConfigT = TypeVar("ConfigT")

#: File inside a codec directory holding its name, format version, config and parameters.
META_FILE = "codec.json"


@dataclass
class ClipStats:
    """How many input values an ``encode`` call had to clip to the fitted bounds.

    Codecs keep two of these: ``last_stats`` (the most recent ``encode`` call) and
    ``total_stats`` (every call since fit/load or ``reset_stats()``).

    Attributes:
        n_values: Number of scalar values encoded.
        n_clipped: How many of them lay outside the fitted bounds and were clipped.
        per_dim: Clipped count for each dimension, shape (D,).
    """

    n_values: int = 0
    n_clipped: int = 0
    per_dim: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def add(self, other: ClipStats) -> None:
        """Accumulate ``other`` into this object (used for ``total_stats``)."""
        if self.per_dim.size == 0:
            self.per_dim = np.zeros_like(other.per_dim)
        self.n_values += other.n_values
        self.n_clipped += other.n_clipped
        self.per_dim = self.per_dim + other.per_dim

    @property
    def fraction(self) -> float:
        """Fraction of values clipped (0.0 when nothing was encoded)."""
        return self.n_clipped / self.n_values if self.n_values else 0.0


@runtime_checkable
class Codec(Protocol):
    """What every codec provides. Encoders and decoders are batched numpy calls."""

    name: str

    @property
    def fitted(self) -> bool: ...

    @property
    def vocab_size(self) -> int: ...

    def fit(self, data: np.ndarray) -> Codec: ...

    def encode(self, data: np.ndarray) -> Any: ...

    def decode(self, tokens: Any) -> np.ndarray: ...

    def save(self, directory: str | Path) -> None: ...


def check_bounds_config(percentiles: tuple[float, float], out_dtype: str) -> None:
    """Validate the robust-bound percentiles and output dtype every fitted codec takes."""
    p_lo, p_hi = percentiles
    if not 0.0 <= p_lo < p_hi <= 100.0:
        raise InvalidInputError(f"percentiles must satisfy 0 <= lo < hi <= 100, got {percentiles}")
    if out_dtype not in ("float32", "float64"):
        raise InvalidInputError(f"out_dtype must be float32 or float64, got {out_dtype}")


def check_floats(x: np.ndarray, what: str, ndim: int | None = None, dims: int | None = None,
                 min_ndim: int = 1) -> np.ndarray:
    """Validate a float input array and return it as a numpy array.

    Args:
        x: The input.
        what: Name used in error messages (e.g. "actions").
        ndim: Exact number of axes required, or None to allow any number >= ``min_ndim``.
        dims: Required size of the last axis (the fitted dimension count), or None.
        min_ndim: Minimum number of axes when ``ndim`` is None.

    Raises:
        InvalidInputError: Not a float array, wrong shape, or NaN/inf present.
    """
    if not isinstance(x, np.ndarray):
        raise InvalidInputError(f"{what} must be a numpy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise InvalidInputError(
            f"{what} must have a floating dtype (float32 or float64), got {x.dtype}"
        )
    if ndim is not None and x.ndim != ndim:
        raise InvalidInputError(f"{what} must have {ndim} axes, got shape {x.shape}")
    if x.ndim < min_ndim:
        raise InvalidInputError(f"{what} must have at least {min_ndim} axes, got {x.shape}")
    if dims is not None and x.shape[-1] != dims:
        raise InvalidInputError(
            f"{what} last axis must be the fitted dimension count {dims}, got shape {x.shape}"
        )
    if x.size and not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise InvalidInputError(
            f"{what} must be finite: got {x[tuple(bad)]} at index {tuple(int(i) for i in bad)}"
        )
    return x


def check_token_ids(tokens: Any, what: str, vocab_size: int) -> np.ndarray:
    """Validate integer token ids against ``[0, vocab_size)`` and return them as int64.

    Raises:
        InvalidInputError: Not an integer array.
        TokenRangeError: An id is negative or >= ``vocab_size``.
    """
    arr = np.asarray(tokens)
    if arr.size == 0 and arr.dtype.kind == "f":
        arr = arr.astype(np.int64)  # np.asarray([]) is float64; an empty list is still valid
    if arr.dtype.kind not in "iu":
        raise InvalidInputError(f"{what} must be integer token ids, got dtype {arr.dtype}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= vocab_size:
            bad = lo if lo < 0 else hi
            raise TokenRangeError(
                f"{what}: token id {bad} is outside this codec's range [0, {vocab_size})"
            )
    return arr.astype(np.int64, copy=False)


def write_meta(directory: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``meta`` as ``codec.json`` into ``directory`` (created if missing)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    # Python's float repr round-trips float64 exactly, so JSON keeps tokens identical.
    (path / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
    return path


def read_meta(directory: str | Path, codec: str | None = None, version: int | None = None
              ) -> dict[str, Any]:
    """Read ``codec.json`` from ``directory`` and check its codec name and format version.

    Raises:
        CheckpointError: Missing/unreadable file, or a different codec or format version.
    """
    path = Path(directory) / META_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read codec checkpoint {path}: {exc}") from exc
    if codec is not None and meta.get("codec") != codec:
        raise CheckpointError(f"{path} holds a {meta.get('codec')!r} codec, expected {codec!r}")
    if version is not None and meta.get("version") != version:
        raise CheckpointError(
            f"{path} has format version {meta.get('version')!r}, this code reads {version}"
        )
    return meta


def config_from_meta(meta: dict[str, Any], config_cls: type[ConfigT]) -> ConfigT:
    """Rebuild a frozen config dataclass from ``meta["config"]`` (JSON lists -> tuples).

    Raises:
        CheckpointError: Missing config, or keys this version's config does not have.
    """
    try:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()}
        return config_cls(**fields)
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"codec checkpoint has an unusable config: {exc}") from exc
