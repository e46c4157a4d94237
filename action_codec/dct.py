"""Orthonormal DCT-II/III along the time axis through a precomputed matrix.

scipy is not a dependency, and a chunk is short (H = 20), so a dense (H, H) matrix
product is both simpler and faster than an FFT-based transform. The matrix ``C`` is
orthonormal (``C @ C.T == I``): DCT-II is ``C @ x`` and its inverse, DCT-III, is
``C.T @ X``; this matches ``scipy.fft.dct(x, type=2, norm="ortho", axis=0)``.
"""

from __future__ import annotations

import numpy as np


def dct_matrix(length: int) -> np.ndarray:
    """The (length, length) orthonormal DCT-II matrix; row k is frequency k."""
    n = np.arange(length)
    k = n[:, None]
    mat = np.sqrt(2.0 / length) * np.cos(np.pi * (2 * n[None, :] + 1) * k / (2 * length))
    mat[0] /= np.sqrt(2.0)  # the DC row needs 1/sqrt(length) for orthonormality
    return mat


def dct(x: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """DCT-II of ``x`` (..., H, D) along axis -2, with ``mat = dct_matrix(H)``."""
    return mat @ x


def idct(coeffs: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Inverse of :func:`dct` (DCT-III), ``coeffs`` (..., H, D)."""
    return mat.T @ coeffs


def max_time_error(mat: np.ndarray, coeff_error: float) -> float:
    """Worst time-domain error when every coefficient is off by at most ``coeff_error``.

    Each time sample is a column of ``mat`` dotted with the coefficient errors, so the
    bound is the largest column L1 norm times ``coeff_error`` (at most sqrt(H) times).
    """
    return float(np.abs(mat).sum(axis=0).max() * coeff_error)
