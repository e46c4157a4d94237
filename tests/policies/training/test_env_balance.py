"""env_balance_weights: every env of mixed datasets gets the same share of samples."""

from __future__ import annotations

import numpy as np

from envs.features import ACTION_LAYOUT, EE_NAMES, StateLayout
from policies.training.data import (
    ChunkSampler,
    DemoEpisode,
    combine_weights,
    env_balance_weights,
)

LAYOUT = StateLayout((*(f"j{k}" for k in range(6)), *EE_NAMES))


def episode(env: str, frames: int) -> DemoEpisode:
    return DemoEpisode("t", {"front": np.zeros((frames, 8, 8, 3), np.uint8)},
                       np.zeros((frames, LAYOUT.dim), np.float32),
                       np.zeros((frames, ACTION_LAYOUT.dim), np.float32),
                       state_layout=LAYOUT, env=env)


def test_each_env_gets_the_same_share_whatever_its_frames():
    eps = [episode("mujoco:push", 80), episode("mujoco:push", 90), episode("mujoco:reach", 9)]
    w = env_balance_weights(eps)
    assert w is not None and w.shape == (179,)
    p = w / w.sum()
    assert np.isclose(p[:170].sum(), 0.5) and np.isclose(p[170:].sum(), 0.5)
    assert np.allclose(p[:170], p[0]) and np.allclose(p[170:], p[170])  # frames alike within


def test_one_env_is_uniform_exactly_as_without():
    assert env_balance_weights([episode("mujoco:push", 5), episode("mujoco:push", 7)]) is None


def test_sampler_draws_envs_evenly():
    eps = [episode("a", 200), episode("b", 10)]
    s = ChunkSampler(eps, ("front",), 4, seed=0, weights=env_balance_weights(eps))
    rows = s.rng.choice(len(s.index), size=4000, p=s.p)
    share_b = np.mean(rows >= 200)
    assert 0.45 < share_b < 0.55


def test_combined_with_other_weights_multiplies():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 0.5])
    assert np.allclose(combine_weights(a, None, b), [3.0, 1.0])
    assert combine_weights(None, None) is None
