"""Fixtures shared by the token-policy tests: one scripted episode and one tiny training run
on it (a nano policy, with plan tokens: rollout_demos records the environment state)."""

from __future__ import annotations

import pytest
import torch

from agent.rollout import rollout_demos
from policies.training.train import TrainConfig, build_policy, train


@pytest.fixture(scope="session")
def demos():
    return rollout_demos("mujoco:pick_place", range(1))


@pytest.fixture(scope="session")
def trained(demos, tmp_path_factory):
    """(policy, training logs, run dir) after 300 steps; tests read it, never change it."""
    torch.manual_seed(0)
    cfg = TrainConfig(model="nano", steps=300, batch_size=8, lr=3e-3, warmup=20, shift_px=0,
                      checkpoint_every=10_000)
    policy = build_policy(demos, cfg)
    out = tmp_path_factory.mktemp("run")
    logs = train(policy, demos, out, cfg)
    return policy, logs, out
