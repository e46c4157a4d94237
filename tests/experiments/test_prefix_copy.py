"""experiments/async_execution/prefix_copy.py compares real chunks of the shipped policy, in
mm per step."""

import numpy as np

import envs
from policies.model.token_policy import TokenPolicy
from policies.registry import DEFAULT_CHECKPOINT
from tests.experiments.conftest import load_experiment


def test_compare_gives_one_row_of_distances_per_tick_after_the_delay():
    bench = load_experiment("async_execution", "prefix_copy")
    policy = TokenPolicy.load(DEFAULT_CHECKPOINT)
    env = envs.make("mujoco:pick_place")
    try:
        rows = bench.compare(policy, env, 1_000_000, steps=4, d=2)
    finally:
        env.close()
    assert len(rows) == 2  # ticks 2 and 3
    rows = np.array(rows)
    assert np.isfinite(rows).all() and (rows >= 0).all()
    # |forced - old| + |free - old| bounds |forced - free| (triangle inequality, per element
    # then averaged, so it holds for the means too)
    assert (rows[:, 0] <= rows[:, 1] + rows[:, 2] + 1e-9).all()
