"""A chunk codec in the spirit of FAST (Pertsch et al., 2025): DCT + BPE.

Encoding a chunk of H actions with D dimensions:

1. normalise each dimension so its robust bounds (1st/99th percentile; see
   :mod:`action_codec.bounds`) map to [-1, 1]. As in FAST, values beyond the robust
   bounds are *not* clipped to them (that would cost the rare large commands, such as
   the expert's full-speed yaw turns); only values outside the full range seen in fit
   are clipped, and counted in ``last_stats``;
2. DCT-II along time (orthonormal, :mod:`action_codec.dct`): smooth motion puts almost
   all energy in the first few frequencies;
3. multiply by ``scale`` and round: the only lossy step;
4. flatten: by default low frequency first across dimensions, as FAST does (frequency 0
   of every dimension, then frequency 1, ...), so an autoregressive policy emits the
   coarse shape of the whole motion before its details. ``order="dimension"`` instead
   keeps each dimension's H coefficients together; on scripted-expert actions that needs
   about 30% fewer tokens (each dimension's trailing zeros form their own run, where
   one high-frequency gripper step breaks up the frequency-major run), see bench/codec.py;
5. BPE (:mod:`action_codec.bpe`) merges frequent runs into single tokens, giving a
   variable number of tokens per chunk.

Decoding inverts each step. A token sequence that does not expand to exactly H*D
coefficients raises :class:`MalformedTokensError`; nothing is padded with zeros.

Error: for inputs inside the fitted range whose coefficients stay within the fitted
integer range, a rounded coefficient is off by at most ``0.5 / scale``, so each decoded
value is within :meth:`FastCodec.error_bound` of the input (per dimension, in input
units). Coefficients outside the fitted integer range are clipped and counted in
``last_coeff_clipped``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from action_codec.base import (
    ClipStats,
    check_bounds_config,
    check_floats,
    config_from_meta,
    read_meta,
    write_meta,
)
from action_codec.bounds import count_clipped, inverse_span, robust_bounds
from action_codec.bpe import IntegerBPE
from action_codec.dct import dct, dct_matrix, idct, max_time_error
from action_codec.errors import InvalidInputError, NotFittedError

FORMAT_VERSION = 1
BPE_FILE = "bpe.json"


@dataclass(frozen=True)
class FastConfig:
    """Configuration of the DCT + BPE chunk codec.

    Attributes:
        horizon: Steps per chunk H (20 = one second at 20 Hz).
        scale: Coefficient quantisation: larger means smaller error and more tokens.
        vocab_size: BPE vocabulary size (base integers plus merges).
        percentiles: Robust normalisation bounds, in percent.
        min_span: Relative span under which a dimension is treated as constant.
        coeff_margin: The fitted coefficient range is widened by this fraction per side,
            so unseen chunks rarely need coefficient clipping.
        full_range: Cover every coefficient an in-bounds chunk can produce (no
            coefficient clipping ever, at the price of a larger base alphabet).
        min_frequency: Minimum pair count for a BPE merge.
        order: Flattening of the (H, D) coefficients: "frequency" (FAST: frequency 0 of
            every dimension first) or "dimension" (all of dimension 0, then 1, ...).
        out_dtype: Dtype of decoded arrays.
    """

    horizon: int = 20
    scale: float = 10.0
    vocab_size: int = 2048
    percentiles: tuple[float, float] = (1.0, 99.0)
    min_span: float = 1e-6
    coeff_margin: float = 0.1
    full_range: bool = False
    min_frequency: int = 2
    order: str = "frequency"
    out_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise InvalidInputError(f"horizon must be >= 1, got {self.horizon}")
        if not self.scale > 0:
            raise InvalidInputError(f"scale must be > 0, got {self.scale}")
        if self.vocab_size < 2:
            raise InvalidInputError(f"vocab_size must be >= 2, got {self.vocab_size}")
        check_bounds_config(self.percentiles, self.out_dtype)
        if self.order not in ("frequency", "dimension"):
            raise InvalidInputError(
                f"order must be 'frequency' or 'dimension', got {self.order!r}"
            )


class FastCodec:
    """Encode chunks (N, H, D) into N variable-length int64 token arrays, and back.

    Example:
        >>> codec = FastCodec(FastConfig(horizon=20)).fit(chunks)   # chunks (N, 20, 7)
        >>> tokens = codec.encode(chunks)      # list of N arrays, ids in [0, vocab_size)
        >>> codec.decode(tokens)               # (N, 20, 7), within error_bound()
    """

    name = "fast"

    def __init__(self, config: FastConfig | None = None) -> None:
        self.config = config or FastConfig()
        self.lo: np.ndarray | None = None  # (D,) robust bounds, normalised to -1 / +1
        self.hi: np.ndarray | None = None
        self.clip_lo: np.ndarray | None = None  # (D,) full fitted range; inputs clip here
        self.clip_hi: np.ndarray | None = None
        self.bpe: IntegerBPE | None = None
        self._mat = dct_matrix(self.config.horizon)  # (H, H)
        self.last_stats = ClipStats()
        self.total_stats = ClipStats()
        self.last_coeff_clipped = 0  # coefficients clipped to the BPE range by last encode

    @property
    def fitted(self) -> bool:
        """Whether ``fit`` or ``load`` has set the codec's parameters."""
        return self.bpe is not None

    @property
    def vocab_size(self) -> int:
        """Number of distinct local token ids (the trained BPE vocabulary)."""
        self._require_fitted()
        return self.bpe.vocab_size

    @property
    def dims(self) -> int:
        """Number of action dimensions D the codec was fitted on."""
        self._require_fitted()
        return int(self.lo.size)

    def fit(self, chunks: np.ndarray) -> FastCodec:
        """Fit bounds, coefficient range and BPE on chunks of shape (N, H, D).

        Returns:
            self.
        """
        x = self._check_chunks(chunks, dims=None)
        if x.shape[0] < 2:
            raise InvalidInputError(f"fit needs at least 2 chunks, got {x.shape[0]}")
        cfg = self.config
        flat = x.reshape(-1, x.shape[-1])
        self._set_bounds(*robust_bounds(flat, cfg.percentiles, cfg.min_span),
                         *robust_bounds(flat, (0.0, 100.0), cfg.min_span))
        codes = self._to_codes(x)
        low, high = self._coeff_range(codes)
        self.bpe = IntegerBPE.train(np.clip(codes, low, high), low, high, cfg.vocab_size,
                                    cfg.min_frequency)
        self.reset_stats()
        return self

    def _coeff_range(self, codes: np.ndarray) -> tuple[int, int]:
        # Largest coefficient any chunk inside the fitted range can produce.
        z_max = float(np.max(np.abs([self._z_lo, self._z_hi])))
        limit = int(np.ceil(self.config.scale * z_max * np.abs(self._mat).sum(axis=1).max()))
        if self.config.full_range:
            return -limit, limit
        low, high = int(codes.min()), int(codes.max())
        pad = int(np.ceil(self.config.coeff_margin * max(high - low, 1)))
        return max(low - pad, -limit), min(high + pad, limit)

    def _set_bounds(self, lo: np.ndarray, hi: np.ndarray, clip_lo: np.ndarray,
                    clip_hi: np.ndarray) -> None:
        self.lo, self.hi, self.clip_lo, self.clip_hi = lo, hi, clip_lo, clip_hi
        self._mid = 0.5 * (lo + hi)
        self._inv_half = 2.0 * inverse_span(lo, hi)  # 0 for constant dims: no division
        self._half = 0.5 * (hi - lo)
        # The clip range in normalised units; decoded values are clipped back into it.
        self._z_lo = (clip_lo - self._mid) * self._inv_half
        self._z_hi = (clip_hi - self._mid) * self._inv_half

    def _to_codes(self, x: np.ndarray) -> np.ndarray:
        """Rounded, scaled DCT coefficients (N, H*D), flattened in the configured order."""
        z = np.clip((x - self._mid) * self._inv_half, self._z_lo, self._z_hi)  # (N, H, D)
        coeffs = np.rint(dct(z, self._mat) * self.config.scale).astype(np.int64)  # (N, H, D)
        if self.config.order == "dimension":
            coeffs = coeffs.transpose(0, 2, 1)  # (N, D, H)
        return coeffs.reshape(x.shape[0], -1)

    def reset_stats(self) -> None:
        """Zero ``last_stats``, ``total_stats`` and ``last_coeff_clipped``."""
        dims = 0 if self.lo is None else self.lo.size
        self.last_stats = ClipStats(per_dim=np.zeros(dims, dtype=np.int64))
        self.total_stats = ClipStats(per_dim=np.zeros(dims, dtype=np.int64))
        self.last_coeff_clipped = 0

    def encode(self, chunks: np.ndarray) -> list[np.ndarray]:
        """One int64 token array per chunk for chunks of shape (N, H, D).

        Values outside the fitted range are clipped (``last_stats``); coefficients
        outside the BPE's integer range are clipped too (``last_coeff_clipped``).

        Raises:
            NotFittedError: Before ``fit``/``load``.
            InvalidInputError: Not (N, H, D) with the fitted H and D, non-float, NaN/inf.
        """
        self._require_fitted()
        x = self._check_chunks(chunks, dims=self.dims)
        per_dim = count_clipped(x, self.clip_lo, self.clip_hi)
        stats = ClipStats(int(x.size), int(per_dim.sum()), per_dim)
        self.last_stats = stats
        self.total_stats.add(stats)
        if x.shape[0] == 0:
            self.last_coeff_clipped = 0
            return []
        codes = self._to_codes(x)
        clipped = np.clip(codes, self.bpe.low, self.bpe.high)
        self.last_coeff_clipped = int((clipped != codes).sum())
        return self.bpe.encode(clipped)

    def decode(self, tokens: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """Chunks (N, H, D) for N token sequences (a list of 1-D arrays, or 2-D array).

        Raises:
            NotFittedError: Before ``fit``/``load``.
            InvalidInputError: Non-integer ids.
            TokenRangeError: An id outside ``[0, vocab_size)``.
            MalformedTokensError: A sequence not expanding to exactly H*D coefficients.
        """
        self._require_fitted()
        if isinstance(tokens, np.ndarray) and tokens.ndim == 1:
            raise InvalidInputError(
                "decode takes a batch (list of 1-D arrays or a 2-D array); "
                "use decode_chunk for a single token sequence"
            )
        h, d = self.config.horizon, self.dims
        codes = self.bpe.decode(list(tokens), h * d)  # (N, H*D)
        if self.config.order == "dimension":
            coeffs = codes.reshape(-1, d, h).transpose(0, 2, 1) / self.config.scale
        else:
            coeffs = codes.reshape(-1, h, d) / self.config.scale  # (N, H, D)
        # Inputs were inside the clip range, so clipping decoded values can only help.
        z = np.clip(idct(coeffs, self._mat), self._z_lo, self._z_hi)
        return (self._mid + z * self._half).astype(self.config.out_dtype)

    def encode_chunk(self, chunk: np.ndarray) -> np.ndarray:
        """Tokens of a single chunk (H, D)."""
        check_floats(chunk, "chunk", ndim=2)
        return self.encode(chunk[None])[0]

    def decode_chunk(self, tokens: np.ndarray) -> np.ndarray:
        """The chunk (H, D) for one token sequence."""
        return self.decode([np.asarray(tokens)])[0]

    def error_bound(self) -> np.ndarray:
        """Per-dimension max abs decode error (D,) for in-range, unclipped chunks."""
        self._require_fitted()
        return self._half * max_time_error(self._mat, 0.5 / self.config.scale)

    def save(self, directory: str | Path) -> None:
        """Write ``codec.json`` (config, bounds, integer range) and ``bpe.json``."""
        self._require_fitted()
        path = write_meta(directory, {
            "codec": self.name, "version": FORMAT_VERSION, "config": asdict(self.config),
            "params": {"lo": self.lo.tolist(), "hi": self.hi.tolist(),
                       "clip_lo": self.clip_lo.tolist(), "clip_hi": self.clip_hi.tolist(),
                       "low": self.bpe.low, "high": self.bpe.high},
        })
        self.bpe.save(path / BPE_FILE)

    @classmethod
    def load(cls, directory: str | Path) -> FastCodec:
        """Load a codec written by :meth:`save`.

        Raises:
            CheckpointError: Missing/unreadable files, another codec, or another version.
        """
        meta = read_meta(directory, codec=cls.name, version=FORMAT_VERSION)
        codec = cls(config_from_meta(meta, FastConfig))
        p = meta["params"]
        codec._set_bounds(*(np.asarray(p[k], dtype=np.float64)
                            for k in ("lo", "hi", "clip_lo", "clip_hi")))
        codec.bpe = IntegerBPE.load(Path(directory) / BPE_FILE, p["low"], p["high"])
        codec.reset_stats()
        return codec

    def _check_chunks(self, chunks: np.ndarray, dims: int | None) -> np.ndarray:
        x = check_floats(chunks, "chunks", ndim=3, dims=dims)
        if x.shape[1] != self.config.horizon:
            raise InvalidInputError(
                f"chunks must have shape (N, H={self.config.horizon}, D), got {x.shape}"
            )
        return x

    def _require_fitted(self) -> None:
        if self.bpe is None:
            raise NotFittedError(self.name)
