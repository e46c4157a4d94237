"""Shared fixtures: smooth pick-and-place-like action chunks and codecs fitted on them.

The generator is a test fake (it lives here, never in production code): per-step deltas
that saturate at the env's limits and decay smoothly, small rotation corrections, and a
binary gripper that switches at most once per chunk.
"""

from __future__ import annotations

import numpy as np
import pytest

from action_codec import make_codec

H, D = 20, 7


def smooth_chunks(n: int, seed: int = 0, horizon: int = H) -> np.ndarray:
    """(n, horizon, 7) float32 chunks shaped like scripted-expert actions."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, horizon)[None, :, None]
    amp = rng.uniform(-0.08, 0.08, (n, 1, 3))
    decay = rng.uniform(0.5, 4.0, (n, 1, 3))
    pos = np.clip(amp * np.exp(-decay * t), -0.05, 0.05)
    rot = rng.normal(0, 0.05, (n, 1, 3)) * np.cos(rng.uniform(0, 3, (n, 1, 3)) * t)
    switch = rng.integers(0, horizon * 2, (n, 1, 1))  # >= horizon: no switch in this chunk
    start = rng.integers(0, 2, (n, 1, 1))
    steps = np.arange(horizon)[None, :, None]
    grip = np.where(steps < switch, start, 1 - start).astype(np.float64)
    return np.concatenate([pos, np.clip(rot, -0.3, 0.3), grip], axis=-1).astype(np.float32)


@pytest.fixture(scope="session")
def chunks() -> np.ndarray:
    return smooth_chunks(600, seed=1)


@pytest.fixture(scope="session")
def steps(chunks: np.ndarray) -> np.ndarray:
    return chunks.reshape(-1, D)


@pytest.fixture(scope="session")
def fast_codec(chunks: np.ndarray):
    return make_codec("fast", horizon=H, scale=10.0, vocab_size=512).fit(chunks)


@pytest.fixture(scope="session", params=["frequency", "dimension"])
def fast_full_codec(request, chunks: np.ndarray):
    """A chunk codec whose integer range covers every in-range chunk (no coefficient clip),
    in both flattening orders."""
    return make_codec("fast", horizon=H, scale=10.0, vocab_size=1024, full_range=True,
                      order=request.param).fit(chunks)


@pytest.fixture(scope="session")
def make_chunks():
    """The :func:`smooth_chunks` generator, for tests that need fresh data."""
    return smooth_chunks
