"""Training for `--exec ahead`: rows shifted by a delay, the state rolled forward."""

from __future__ import annotations

import numpy as np
import pytest

from envs.features import roll_forward
from policies.training.data import ChunkSampler
from policies.training.train import TrainConfig, build_policy, train
from tests.policies.training.test_train_losses import _demos


def _varied_demos(T: int = 10):
    """_demos with a different action on every frame, so a shift shows in the targets."""
    demos = _demos(T)
    rng = np.random.default_rng(2)
    for ep in demos:
        ep.action[:] = rng.uniform(-0.05, 0.05, ep.action.shape)
        ep.state[:, ep.state_layout.ee_quat] = [1.0, 0.0, 0.0, 0.0]
    return demos


def test_zero_delay_is_the_plain_row_and_a_delay_shifts_targets_not_frames() -> None:
    demos = _varied_demos()
    sampler = ChunkSampler(demos, ("front", "wrist"), chunk=4)
    rows = np.array([[0, 1], [1, 3], [2, 0]])
    plain = sampler.gather(rows)
    same = sampler.gather(rows, np.zeros(3, np.int64))
    np.testing.assert_array_equal(same.state, plain.state)
    np.testing.assert_array_equal(same.actions, plain.actions)
    out = sampler.gather(rows, np.array([2, 0, 3]))
    np.testing.assert_array_equal(out.frames, plain.frames)  # still the frame at t
    np.testing.assert_array_equal(out.actions[0], demos[0].action[3:7])  # from t + d
    np.testing.assert_array_equal(out.actions[2], demos[2].action[3:7])
    ep = demos[0]
    np.testing.assert_allclose(out.state[0], roll_forward(ep.state[1], ep.action[1:3],
                                                          ep.state_layout), rtol=1e-6)
    lay = ep.state_layout
    assert not np.allclose(out.state[0][lay.ee_pos], ep.state[1][lay.ee_pos])
    np.testing.assert_array_equal(out.state[0][lay.joints], ep.state[1][lay.joints])
    np.testing.assert_array_equal(out.state[1], plain.state[1])


def test_a_delay_past_the_episodes_end_is_cut_and_the_tail_padded() -> None:
    demos = _varied_demos(T=10)
    sampler = ChunkSampler(demos, ("front", "wrist"), chunk=4)
    out = sampler.gather(np.array([[0, 8]]), np.array([5]))  # only one action after t = 8
    np.testing.assert_array_equal(out.actions[0, 0], demos[0].action[9])
    assert out.pad[0].tolist() == [False, True, True, True]


def test_sample_draws_delays_up_to_the_maximum() -> None:
    demos = _varied_demos(T=40)
    sampler = ChunkSampler(demos, ("front", "wrist"), chunk=4, seed=0)
    batch = sampler.sample(256, max_delay=3)
    first = np.stack([demos[e].action[t] for e, t in batch.index])
    matched = [next((d for d in range(4) if t + d < 40 and np.array_equal(
        batch.actions[i, 0], demos[e].action[t + d])), None)
        for i, (e, t) in enumerate(batch.index)]
    assert None not in matched and set(matched) == {0, 1, 2, 3}
    assert not np.array_equal(batch.actions[:, 0], first)


def test_delay_and_stale_prefix_are_refused_together() -> None:
    with pytest.raises(ValueError, match="choose one"):
        TrainConfig(delay_max=3, stale_prefix=0.5)
    with pytest.raises(ValueError, match="delay_max must be >= 0"):
        TrainConfig(delay_max=-1)


def test_training_with_delays_runs_and_learns(tmp_path) -> None:
    from policies.training.train import build_policy, train

    demos = _demos()  # one action per episode: learnable whatever the shift
    cfg = TrainConfig(model="nano", steps=40, batch_size=8, lr=3e-3, warmup=5, n_bins=16,
                      chunk=4, execute=2, checkpoint_every=1000, shift_px=0, delay_max=3)
    logs = train(build_policy(demos, cfg), demos, tmp_path, cfg)
    assert logs[-1].loss < 0.7 * logs[0].loss, (logs[0].loss, logs[-1].loss)


def test_gather_says_how_far_each_row_was_rolled() -> None:
    sampler = ChunkSampler(_varied_demos(T=10), ("front", "wrist"), chunk=4)
    rows = np.array([[0, 1], [1, 8]])
    assert sampler.gather(rows).delays is None
    out = sampler.gather(rows, np.array([3, 5]))
    assert out.delays.tolist() == [3, 1]  # 8 + 5 is past the end: cut to the last action


def test_delay_token_needs_delay_max() -> None:
    with pytest.raises(ValueError, match="--delay-token.*--delay-max"):
        TrainConfig(delay_token=True)


def test_a_policy_with_delay_tokens_closes_its_state_with_the_delay(tmp_path) -> None:
    demos = _varied_demos(T=12)
    cfg = TrainConfig(model="nano", n_bins=16, chunk=4, execute=2, shift_px=0, delay_max=3,
                      delay_token=True)
    policy = build_policy(demos, cfg)
    assert policy.config.delay_tokens == 3
    lay = policy.layout
    states = np.stack([demos[0].state[0]] * 4)
    ids = policy.state_ids(states, delays=np.arange(4))
    # One column differs: end_state's place holds delay_0 .. delay_3.
    assert (ids != ids[:1]).any(axis=0).sum() == 1
    assert ids[:, -2].tolist() == [lay.special_id(f"delay_{d}") for d in range(4)]
    np.testing.assert_array_equal(policy.state_ids(states[:1]), ids[:1])  # None: delay 0
    with pytest.raises(ValueError, match=r"ints in 0\.\.3"):
        policy.state_ids(states[:1], delays=np.array([4]))
    policy.save(tmp_path / "p")
    back = type(policy).load(tmp_path / "p")
    assert back.config.delay_tokens == 3
    np.testing.assert_array_equal(back.state_ids(states, delays=np.arange(4)), ids)
    # A policy without delay tokens has end_state there, and refuses to be told a delay.
    plain = build_policy(demos, TrainConfig(model="nano", n_bins=16, chunk=4, execute=2,
                                            shift_px=0, delay_max=3))
    assert plain.config.delay_tokens == 0 and "delay_tokens" not in plain.config.to_dict()
    assert plain.state_ids(states[:1])[0, -2] == plain.layout.special_id("end_state")
    with pytest.raises(ValueError, match="no delay tokens"):
        plain.state_ids(states[:1], delays=np.array([2]))


def test_training_with_delay_tokens_runs_and_decodes_at_each_delay(tmp_path) -> None:
    demos = _varied_demos(T=12)
    cfg = TrainConfig(model="nano", steps=6, batch_size=8, warmup=2, n_bins=16, chunk=4,
                      execute=2, shift_px=0, delay_max=3, delay_token=True)
    policy = build_policy(demos, cfg)
    logs = train(policy, demos, tmp_path, cfg)
    assert np.isfinite(logs[-1].loss)
    assert type(policy).load(tmp_path).config.delay_tokens == 3  # the run's checkpoint
    obs_state = demos[0].state[:1]
    text = policy.text_ids([demos[0].task])
    frames = np.stack([demos[0].frames[c][:1] for c in policy.config.cameras], axis=1)
    chunks = [policy.generate(text, frames, policy.state_ids(obs_state, delays=np.array([d])))
              for d in (0, 3)]
    assert all(c.shape == (1, 4, 7) for c in chunks)


def test_delay_tokens_cannot_be_asked_of_a_policy_without_them(tmp_path) -> None:
    demos = _varied_demos(T=12)
    plain = build_policy(demos, TrainConfig(model="nano", n_bins=16, chunk=4, execute=2,
                                            shift_px=0))
    cfg = TrainConfig(model="nano", steps=2, batch_size=4, warmup=1, n_bins=16, chunk=4,
                      execute=2, shift_px=0, delay_max=3, delay_token=True)
    with pytest.raises(ValueError, match="delay_0..delay_3; this policy has none"):
        train(plain, demos, tmp_path, cfg)  # as --init of a policy trained without tokens
