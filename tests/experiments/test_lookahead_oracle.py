"""experiments/lookahead/lookahead_oracle.py: the simulated futures are the real ones, and the
sim is rewound."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.types import Observation
from tests.experiments.conftest import load_experiment

oracle = load_experiment("lookahead", "lookahead_oracle")


def test_sim_futures_are_what_stepping_gives_and_leave_the_sim_as_it_was():
    env = envs.make("mujoco:pick_place")
    try:
        obs, info = env.reset(seed=3)
        futures = oracle.SimFutures(env, max_horizon=8)
        rng = np.random.default_rng(0)
        low, high = env.action_space.low, env.action_space.high
        chunks = rng.uniform(low, high, size=(3, 8, 7)).astype(np.float32)
        _, states = futures.predict(Observation.from_env(obs, info), chunks, 4)
        assert states.shape == (3, 14)
        assert np.abs(states[0] - states[1]).max() > 1e-3  # different chunks, different futures
        # Rewound: stepping chunk 1 for real now ends where its simulated future did.
        for action in chunks[1, :4]:
            obs = env.step(action)[0]
        np.testing.assert_allclose(obs["state"], states[1], atol=1e-3)
    finally:
        env.close()


def test_random_control_with_true_target_is_refused_with_a_reason(capsys):
    with pytest.raises(SystemExit):
        oracle.main(["--policy", "unused", "--control", "random", "--target", "true"])
    assert "--target true has nothing to aim" in capsys.readouterr().err
