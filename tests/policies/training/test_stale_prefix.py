"""Real-time chunking's training side: a perturbed prefix fed as input, not scored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.training.data import ChunkSampler, stale_prefix
from policies.training.train import TrainConfig, batch_loss, build_policy, train
from tests.policies.training.test_train_losses import _demos


def _batch(chunk: int = 4, size: int = 64):
    demos = _demos()
    return demos, ChunkSampler(demos, ("front", "wrist"), chunk).sample(size)


def test_only_the_prefix_of_chosen_rows_is_perturbed_and_the_gripper_never() -> None:
    _, batch = _batch()
    out = stale_prefix(batch, np.random.default_rng(0), prob=0.5, max_steps=3)
    assert out.actions is batch.actions  # the targets are the expert's
    diff = np.abs(out.input_actions - batch.actions) > 0  # (B, H, Da)
    for row, d in enumerate(out.prefix_steps):
        assert 0 <= d <= 3
        assert diff[row, :d, :6].all() and not diff[row, d:].any()
        assert not diff[row, :, 6].any()
    chosen = (out.prefix_steps > 0).mean()
    assert 0.3 < chosen < 0.7  # prob 0.5 of 64 rows


def test_a_lagged_prefix_is_the_expert_chunk_from_earlier_steps() -> None:
    demos, batch = _batch()
    sampler = ChunkSampler(demos, ("front", "wrist"), 4)
    lags = np.full(len(batch.actions), 2)
    lagged = sampler.lagged(batch.index, lags)
    for row, (e, t) in enumerate(batch.index):
        steps = np.clip(np.arange(t - 2, t + 2), 0, len(demos[e].action) - 1)
        np.testing.assert_array_equal(lagged[row], demos[e].action[steps])
    out = stale_prefix(batch, np.random.default_rng(0), prob=1.0, max_steps=3,
                       noise=(0.0, 0.0), lagged=lagged)
    for row, d in enumerate(out.prefix_steps):
        np.testing.assert_array_equal(out.input_actions[row, :d], lagged[row, :d])
        np.testing.assert_array_equal(out.input_actions[row, d:], batch.actions[row, d:])
    with pytest.raises(ValueError, match="must match"):
        stale_prefix(batch, np.random.default_rng(0), 1.0, 3, lagged=lagged[:, :2])
    with pytest.raises(ValueError, match="stale_prefix_lag"):
        TrainConfig(stale_prefix_lag=-1)


def test_bad_settings_say_what_is_allowed() -> None:
    _, batch = _batch()
    with pytest.raises(ValueError, match=r"in 1\.\.3"):
        stale_prefix(batch, np.random.default_rng(0), prob=0.5, max_steps=4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stale_prefix(batch, np.random.default_rng(0), prob=1.5, max_steps=2)
    with pytest.raises(ValueError, match="stale_prefix_steps"):
        TrainConfig(chunk=4, execute=2, stale_prefix=0.5, stale_prefix_steps=4)


def test_forced_steps_are_not_scored_and_inputs_reach_the_decoder() -> None:
    demos, batch = _batch(chunk=4, size=8)
    cfg = TrainConfig(model="nano", n_bins=16, chunk=4, execute=2, shift_px=0)
    policy = build_policy(demos, cfg)
    frames = torch.from_numpy(batch.frames).float()
    out = stale_prefix(batch, np.random.default_rng(0), prob=1.0, max_steps=3)
    with torch.no_grad():
        plain = batch_loss(policy, policy.model, batch, frames, torch.device("cpu"))
        # Same inputs, only the first steps unscored: a different (masked) mean.
        masked = batch_loss(policy, policy.model, type(batch)(**{**vars(batch),
                            "prefix_steps": out.prefix_steps}), frames, torch.device("cpu"))
        # Perturbed inputs change what the later steps are predicted from.
        stale = batch_loss(policy, policy.model, out, frames, torch.device("cpu"))
    assert masked.action.item() != pytest.approx(plain.action.item())
    assert stale.action.item() != pytest.approx(masked.action.item())


def test_training_with_a_stale_prefix_runs_and_learns(tmp_path) -> None:
    demos = _demos()
    cfg = TrainConfig(model="nano", steps=40, batch_size=8, lr=3e-3, warmup=5, n_bins=16,
                      chunk=4, execute=2, checkpoint_every=1000, shift_px=0,
                      stale_prefix=0.5, stale_prefix_steps=2)
    logs = train(build_policy(demos, cfg), demos, tmp_path, cfg)
    assert logs[-1].loss < 0.7 * logs[0].loss, (logs[0].loss, logs[-1].loss)
