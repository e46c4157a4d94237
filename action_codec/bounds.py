"""Per-dimension robust bounds, shared by the binning and chunk codecs.

Bounds follow OpenVLA: the 1st and 99th percentile of each dimension, so a handful of
outliers does not stretch every bin. Two degenerate cases need care:

* A **near-constant** dimension whose percentile span collapses although the data does
  vary: a gripper that is closed in 0.5% of the steps has equal 1st and 99th percentiles,
  and clipping to them would erase every "close" command. Such a dimension falls back to
  its full min/max span.
* A **constant** dimension (full span below ``min_span``): ``lo == hi`` and callers must
  encode it with zero width instead of dividing by the span. Every codec decodes it to
  the constant, and counts any other value as clipped.
"""

from __future__ import annotations

import numpy as np


def robust_bounds(data: np.ndarray, percentiles: tuple[float, float], min_span: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (lo, hi) bounds of ``data`` with shape (N, D).

    Args:
        data: Finite float samples, one row per sample.
        percentiles: Lower and upper percentile in [0, 100], e.g. (1, 99).
        min_span: A span at most ``min_span * max(1, |x|max)`` counts as degenerate.

    Returns:
        Two float64 arrays of shape (D,) with ``lo <= hi``; ``lo == hi`` marks a constant
        dimension.
    """
    data = np.asarray(data, dtype=np.float64)
    lo, hi = np.percentile(data, percentiles, axis=0)
    full_lo, full_hi = data.min(axis=0), data.max(axis=0)
    tol = min_span * np.maximum(1.0, np.abs(data).max(axis=0))
    collapsed = (hi - lo) <= tol
    # Near-constant but not constant: widen to the full range (see module docstring).
    lo = np.where(collapsed, full_lo, lo)
    hi = np.where(collapsed, full_hi, hi)
    constant = (hi - lo) <= tol
    mid = 0.5 * (full_lo + full_hi)
    return np.where(constant, mid, lo), np.where(constant, mid, hi)


def inverse_span(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``1 / (hi - lo)`` per dimension, and 0 for constant dimensions (never divides by 0)."""
    span = hi - lo
    safe = np.where(span > 0, span, 1.0)
    return np.where(span > 0, 1.0 / safe, 0.0)


def count_clipped(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Number of values outside ``[lo, hi]`` per dimension (last axis of ``x``)."""
    outside = (x < lo) | (x > hi)
    return outside.reshape(-1, x.shape[-1]).sum(axis=0, dtype=np.int64)
