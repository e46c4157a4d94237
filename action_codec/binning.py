"""Per-dimension binning codecs: one token per scalar, as RT-2 and OpenVLA tokenize actions.

Two strategies share one class:

* ``uniform``: ``n_bins`` equal bins between robust bounds (1st/99th percentile by
  default, see :mod:`action_codec.bounds`); a token decodes to its bin centre, so the
  error is at most half a bin for values inside the bounds.
* ``quantile``: a codebook of ``n_bins`` values per dimension placed at the data's
  quantiles ``linspace(0, 1, n_bins)`` (so the minimum and maximum are codebook values);
  a value encodes to its nearest codebook entry. The error is at most half the gap
  between neighbouring codebook entries. Point masses (a binary gripper: all codebook
  entries are 0 or 1) decode exactly, because repeated entries only create empty cells.

Values outside the fitted bounds are clipped to them; ``last_stats``/``total_stats``
(:class:`action_codec.base.ClipStats`) report how many. A constant dimension (see
:mod:`action_codec.bounds`) encodes to token 0 and decodes to the constant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from action_codec.base import (
    ClipStats,
    check_bounds_config,
    check_floats,
    check_token_ids,
    config_from_meta,
    read_meta,
    write_meta,
)
from action_codec.bounds import count_clipped, inverse_span, robust_bounds
from action_codec.errors import InvalidInputError, NotFittedError

FORMAT_VERSION = 1
Strategy = Literal["uniform", "quantile"]


@dataclass(frozen=True)
class BinningConfig:
    """Configuration of a binning codec.

    Attributes:
        strategy: "uniform" (equal bins between robust bounds) or "quantile".
        n_bins: Tokens per dimension; all dimensions share the ids ``[0, n_bins)``.
        percentiles: Robust bounds of the uniform strategy, in percent.
        min_span: Relative span under which a dimension is treated as degenerate.
        out_dtype: Dtype of decoded arrays (the env consumes float32).
    """

    strategy: Strategy = "uniform"
    n_bins: int = 256
    percentiles: tuple[float, float] = (1.0, 99.0)
    min_span: float = 1e-6
    out_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.strategy not in ("uniform", "quantile"):
            raise InvalidInputError(
                f"strategy must be 'uniform' or 'quantile', got {self.strategy!r}"
            )
        if not 2 <= self.n_bins <= 65536:
            raise InvalidInputError(f"n_bins must be in [2, 65536], got {self.n_bins}")
        check_bounds_config(self.percentiles, self.out_dtype)


class BinningCodec:
    """Encode (..., D) floats to (..., D) int64 tokens in ``[0, n_bins)`` and back.

    Example:
        >>> codec = BinningCodec(BinningConfig("uniform", n_bins=256)).fit(actions)
        >>> tokens = codec.encode(actions)          # (N, 7) int64
        >>> codec.decode(tokens)                    # (N, 7) float32, within half a bin
    """

    def __init__(self, config: BinningConfig | None = None) -> None:
        self.config = config or BinningConfig()
        self.lo: np.ndarray | None = None  # (D,) lower clip bound
        self.hi: np.ndarray | None = None  # (D,) upper clip bound
        self.centres: np.ndarray | None = None  # (D, n_bins) value each token decodes to
        self.last_stats = ClipStats()
        self.total_stats = ClipStats()

    @property
    def name(self) -> str:
        """Registry name of this codec ("uniform" or "quantile")."""
        return self.config.strategy

    @property
    def fitted(self) -> bool:
        """Whether ``fit`` or ``load`` has set the codec's parameters."""
        return self.centres is not None

    @property
    def vocab_size(self) -> int:
        """Number of distinct local token ids, shared by all dimensions."""
        return self.config.n_bins

    @property
    def dims(self) -> int:
        """Number of dimensions the codec was fitted on."""
        self._require_fitted()
        return self.centres.shape[0]

    def fit(self, data: np.ndarray) -> BinningCodec:
        """Fit per-dimension bins on samples of shape (N, D) (or (..., D), flattened).

        Returns:
            self, so ``codec = BinningCodec(cfg).fit(x)`` works.
        """
        x = check_floats(data, "fit data", min_ndim=2)
        x = x.reshape(-1, x.shape[-1]).astype(np.float64)
        if x.shape[0] < 2:
            raise InvalidInputError(f"fit data needs at least 2 samples, got {x.shape[0]}")
        cfg = self.config
        if cfg.strategy == "uniform":
            lo, hi = robust_bounds(x, cfg.percentiles, cfg.min_span)
            width = (hi - lo) / cfg.n_bins
            steps = np.arange(cfg.n_bins) + 0.5
            centres = lo[:, None] + steps[None, :] * width[:, None]
        else:
            levels = np.linspace(0.0, 1.0, cfg.n_bins)
            centres = np.quantile(x, levels, axis=0).T  # (D, n_bins), non-decreasing rows
            lo, hi = robust_bounds(x, (0.0, 100.0), cfg.min_span)  # the data's min/max
            # A (near-)constant dimension decodes to one value, like the uniform strategy.
            centres = np.where((lo == hi)[:, None], lo[:, None], centres)
        self._set_params(lo, hi, centres)
        return self

    def fit_columns(self, columns: list[np.ndarray]) -> BinningCodec:
        """Fit dimension d on its own samples columns[d] (1-D, any lengths): for dimensions
        present in only some rows, e.g. a multi-robot state's joint slots that an arm with
        fewer joints leaves absent (policies.model.robots). Each dimension gets exactly the
        bins `fit` would give it on those samples alone.

        Returns:
            self.
        """
        if not columns:
            raise InvalidInputError("fit_columns needs at least one column")
        parts = [BinningCodec(self.config).fit(np.asarray(c).reshape(-1, 1)) for c in columns]
        self._set_params(*(np.concatenate([getattr(p, k) for p in parts])
                           for k in ("lo", "hi", "centres")))
        return self

    def _set_params(self, lo: np.ndarray, hi: np.ndarray, centres: np.ndarray) -> None:
        self.lo, self.hi, self.centres = lo, hi, centres
        # Precomputed so encode/decode are a few vectorised passes with no branches.
        self._inv_width = inverse_span(lo, hi) * self.config.n_bins
        self._width = (hi - lo) / self.config.n_bins
        # Cell boundaries of the quantile codebook: midpoints of neighbouring entries.
        self._bounds = 0.5 * (centres[:, 1:] + centres[:, :-1])
        self._flat_centres = centres.astype(self.config.out_dtype).ravel()
        self.reset_stats()

    def reset_stats(self) -> None:
        """Zero ``last_stats`` and ``total_stats``."""
        dims = 0 if self.centres is None else self.centres.shape[0]
        self.last_stats = ClipStats(per_dim=np.zeros(dims, dtype=np.int64))
        self.total_stats = ClipStats(per_dim=np.zeros(dims, dtype=np.int64))

    def encode(self, data: np.ndarray) -> np.ndarray:
        """Tokens of shape ``data.shape`` (int64, in ``[0, n_bins)``) for floats (..., D).

        Values outside the fitted bounds are clipped; see ``last_stats``.

        Raises:
            NotFittedError: Before ``fit``/``load``.
            InvalidInputError: Non-float dtype, last axis != D, or NaN/inf.
        """
        self._require_fitted()
        x = check_floats(data, "encode input", dims=self.dims)
        per_dim = count_clipped(x, self.lo, self.hi)
        stats = ClipStats(int(x.size), int(per_dim.sum()), per_dim)
        self.last_stats = stats
        self.total_stats.add(stats)
        if self.config.strategy == "uniform":
            return self._encode_uniform(x)
        return self._encode_quantile(x)

    def _encode_uniform(self, x: np.ndarray) -> np.ndarray:
        scaled = (x - self.lo) * self._inv_width
        # Clip in float space first: a huge outlier would overflow the integer cast.
        np.clip(scaled, 0, self.config.n_bins - 1, out=scaled)
        return scaled.astype(np.int64)  # truncation == floor, values are >= 0

    def _encode_quantile(self, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(-1, x.shape[-1])
        tokens = np.empty(flat.shape, dtype=np.int64)
        # A loop over dimensions (7 or 14), never over rows: each searchsorted is vectorised.
        for d in range(flat.shape[1]):
            tokens[:, d] = np.searchsorted(self._bounds[d], flat[:, d], side="right")
        return tokens.reshape(x.shape)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Floats of shape ``tokens.shape`` for int tokens (..., D) in ``[0, n_bins)``.

        Raises:
            NotFittedError: Before ``fit``/``load``.
            InvalidInputError: Non-integer dtype or last axis != D.
            TokenRangeError: A token outside ``[0, n_bins)``.
        """
        self._require_fitted()
        t = check_token_ids(tokens, "decode input", self.vocab_size)
        if t.ndim < 1 or t.shape[-1] != self.dims:
            raise InvalidInputError(
                f"decode input last axis must be the fitted dimension count {self.dims}, "
                f"got shape {t.shape}"
            )
        offsets = np.arange(self.dims, dtype=np.int64) * self.config.n_bins
        return self._flat_centres[t + offsets]

    def save(self, directory: str | Path) -> None:
        """Write the config and fitted parameters as ``codec.json`` into ``directory``."""
        self._require_fitted()
        cfg = asdict(self.config)
        params = {"lo": self.lo.tolist(), "hi": self.hi.tolist()}
        if self.config.strategy == "quantile":
            params["centres"] = self.centres.tolist()  # uniform centres derive from lo/hi
        write_meta(directory, {"codec": self.name, "version": FORMAT_VERSION,
                               "config": cfg, "params": params})

    @classmethod
    def load(cls, directory: str | Path) -> BinningCodec:
        """Load a codec written by :meth:`save`.

        Raises:
            CheckpointError: Missing file, another codec's checkpoint, or another version.
        """
        meta = read_meta(directory, version=FORMAT_VERSION)
        codec = cls(config_from_meta(meta, BinningConfig))
        read_meta(directory, codec=codec.name)
        p = meta["params"]
        lo, hi = np.asarray(p["lo"], dtype=np.float64), np.asarray(p["hi"], dtype=np.float64)
        if codec.config.strategy == "uniform":
            steps = np.arange(codec.config.n_bins) + 0.5
            centres = lo[:, None] + steps[None, :] * ((hi - lo) / codec.config.n_bins)[:, None]
        else:
            centres = np.asarray(p["centres"], dtype=np.float64)
        codec._set_params(lo, hi, centres)
        return codec

    def _require_fitted(self) -> None:
        if self.centres is None:
            raise NotFittedError(self.name)
