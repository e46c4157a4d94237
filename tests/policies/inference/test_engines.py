import numpy as np
import torch

from policies.inference.torch_engine import DecodeEngine, TorchEngine
from policies.model.token_policy import TokenPolicy


class StepwiseTorch(TorchEngine):
    """The generic prefill/step loop instead of TorchEngine's on-device one."""

    generate = DecodeEngine.generate


def test_on_device_greedy_loop_matches_prefill_and_steps(nano_checkpoint):
    # greedy_ids is what a CUDA graph captures on a GPU; on CPU it must give the same ids as
    # the step-by-step loop every other engine uses.
    policy = TokenPolicy.load(nano_checkpoint[0])
    text, frames, state = policy.model.cfg.fake_inputs(batch=3, text_len=48, state_len=17)
    lo, hi = policy.layout.ranges["action"].start, policy.layout.ranges["action"].stop
    args = (text.numpy(), frames.numpy(), state.numpy(), 28, lo, hi)
    a = TorchEngine(policy.model, "cpu").generate(*args)
    b = StepwiseTorch(policy.model, "cpu").generate(*args)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 28) and ((a >= lo) & (a < hi)).all()


def test_engine_on_another_device_leaves_the_policy_model_alone(nano_checkpoint):
    policy = TokenPolicy.load(nano_checkpoint[0])
    engine = TorchEngine(policy.model, "meta")  # any device other than the model's
    assert engine.model is not policy.model
    assert next(policy.model.parameters()).device == torch.device("cpu")


def _args(policy, batch=2, n=14):
    text, frames, state = policy.model.cfg.fake_inputs(batch=batch, text_len=12, state_len=17)
    lo, hi = policy.layout.ranges["action"].start, policy.layout.ranges["action"].stop
    return (text.numpy(), frames.numpy(), state.numpy(), n, lo, hi)


def test_sampling_with_top1_or_cold_temperature_is_greedy(nano_checkpoint):
    policy = TokenPolicy.load(nano_checkpoint[0])
    engine, args = StepwiseTorch(policy.model, "cpu"), _args(policy)
    greedy = engine.generate(*args)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(engine.sample(*args, rng, top_k=1), greedy)
    np.testing.assert_array_equal(engine.sample(*args, rng, temperature=1e-4), greedy)


def test_sampled_first_token_follows_the_softmax(nano_checkpoint):
    policy = TokenPolicy.load(nano_checkpoint[0])
    engine = TorchEngine(policy.model, "cpu")
    text, frames, state, _, lo, hi = _args(policy, batch=1)
    logits, _ = engine.prefill(text, frames, state)
    z = logits[0, lo:hi] / 2.0
    top = np.argsort(z)[-8:]  # top_k=8: the softmax renormalised over these
    p = np.zeros_like(z)
    p[top] = np.exp(z[top] - z[top].max())
    p /= p.sum()
    n = 400
    draws = engine.sample(np.repeat(text, n, 0), np.repeat(frames, n, 0),
                          np.repeat(state, n, 0), 1, lo, hi, np.random.default_rng(1),
                          temperature=2.0, top_k=8)[:, 0] - lo
    freq = np.bincount(draws, minlength=hi - lo) / n
    assert 0.5 * np.abs(freq - p).sum() < 0.12  # total variation; sampling noise ~0.05


def test_top_k_keeps_only_the_k_most_likely(nano_checkpoint):
    policy = TokenPolicy.load(nano_checkpoint[0])
    engine = TorchEngine(policy.model, "cpu")
    text, frames, state, _, lo, hi = _args(policy, batch=1)
    logits, _ = engine.prefill(text, frames, state)
    top3 = set(np.argsort(logits[0, lo:hi])[-3:] + lo)
    draws = engine.sample(np.repeat(text, 200, 0), np.repeat(frames, 200, 0),
                          np.repeat(state, 200, 0), 1, lo, hi, np.random.default_rng(2),
                          temperature=5.0, top_k=3)[:, 0]
    assert set(draws) <= top3 and len(set(draws)) > 1


def test_bad_sampling_settings_are_refused(nano_checkpoint):
    import pytest

    policy = TokenPolicy.load(nano_checkpoint[0])
    engine, args, rng = TorchEngine(policy.model, "cpu"), _args(policy), np.random.default_rng()
    with pytest.raises(ValueError, match="temperature must be > 0"):
        engine.sample(*args, rng, temperature=0.0)
    with pytest.raises(ValueError, match="top_k must be in 1.."):
        engine.sample(*args, rng, top_k=0)


def test_candidate_chunks_start_with_the_greedy_one(nano_checkpoint):
    policy, demos = TokenPolicy.load(nano_checkpoint[0]), nano_checkpoint[1]
    from envs.types import Observation

    ep = demos[0]
    obs = Observation({c: ep.frames[c][0] for c in policy.config.cameras}, ep.state[0], ep.task)
    chunks = policy.sample_chunks(obs, 4, np.random.default_rng(0), temperature=3.0)
    assert chunks.shape == (4, policy.config.chunk, policy.config.action_dim)
    np.testing.assert_array_equal(chunks[0], policy.infer_chunk(obs).actions)
    assert not np.array_equal(chunks[1], chunks[2])  # hot sampling: candidates differ


def test_median_rule_is_not_fooled_by_a_point_mass():
    """The step-limit bin holds 30% of the mass, the rest is spread over the other side of
    zero: argmax picks the limit, the median picks where half the mass lies."""
    from policies.inference.torch_engine import pick_np, pick_torch

    p = np.full(11, 0.07)
    p[10] = 0.30  # the +limit bin; bins 0..9 (the other values) hold 0.70 between them
    z = np.log(p / p.sum())[None]
    assert pick_np(z, "argmax")[0] == 10
    cdf = np.cumsum(p / p.sum())
    assert pick_np(z, "median")[0] == int(np.argmax(cdf >= 0.5)) == 7
    assert pick_torch(torch.from_numpy(z), "median").item() == 7


def test_rules_agree_between_on_device_and_stepwise_loops(nano_checkpoint):
    policy = TokenPolicy.load(nano_checkpoint[0])
    args = _args(policy, batch=3, n=21)
    a = TorchEngine(policy.model, "cpu").generate(*args, rule="median")
    b = StepwiseTorch(policy.model, "cpu").generate(*args, rule="median")
    np.testing.assert_array_equal(a, b)


def test_unknown_rule_is_refused(nano_checkpoint):
    import pytest

    policy = TokenPolicy.load(nano_checkpoint[0])
    with pytest.raises(ValueError, match="unknown decode rule 'mode'; known"):
        TorchEngine(policy.model, "cpu").generate(*_args(policy), rule="mode")
