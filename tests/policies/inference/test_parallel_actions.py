"""Parallel action decoding (PolicyConfig.parallel_actions): the chunk is one decoder pass.

What must hold: the fast path (one multi-token call) gives exactly what feeding the same
inputs one token at a time gives, on torch and on ONNX Runtime (block.onnx); committed actions
come back as given; and training feeds action_query where inference does.
"""

import numpy as np
import pytest
import torch

from envs.types import Observation
from policies.inference.onnx_engine import OnnxEngine
from policies.inference.onnx_export import block_lens, export_policy
from policies.inference.torch_engine import DecodeEngine, TorchEngine, fed_ids, next_block
from policies.model.token_policy import TokenPolicy


@pytest.fixture(scope="module")
def parallel(tmp_path_factory):
    from agent.rollout import rollout_demos
    from policies.training.train import TrainConfig, build_policy, train

    demos = rollout_demos("mujoco:pick_place", range(1))
    torch.manual_seed(0)
    cfg = TrainConfig(model="nano", steps=30, batch_size=8, lr=3e-3, warmup=5, shift_px=0,
                      checkpoint_every=10_000, parallel_actions=True, stale_prefix=0.5,
                      stale_prefix_steps=3)
    out = tmp_path_factory.mktemp("parallel_run")
    train(build_policy(demos, cfg), demos, out, cfg)
    policy = TokenPolicy.load(out)
    onnx_dir = tmp_path_factory.mktemp("parallel_onnx")
    meta = export_policy(policy, onnx_dir)
    return policy, demos, onnx_dir, meta


class OneByOne(DecodeEngine):
    """The torch model fed one token per call: the reference the block paths must equal."""

    def __init__(self, engine: TorchEngine) -> None:
        self.engine = engine

    def prefill(self, *a):
        return self.engine.prefill(*a)

    def step(self, ids, cache):
        return self.engine.step(ids, cache)


def _inputs(policy, demos, t=5):
    d = demos[0]
    obs = Observation({c: d.frames[c][t] for c in d.frames}, d.state[t], d.task)
    frames = np.stack([obs.images[c] for c in policy.config.cameras])[None]
    return policy.text_ids([obs.instruction]), frames, policy.state_ids(obs.state[None])


def test_next_block_groups_the_inputs_known_in_advance():
    known = (False, False, True, True, True, False)  # 2 plan picks, 3 known, last position
    assert next_block(1, known) == 2  # after a picked plan id: one token
    assert next_block(2, known) == 6  # the pick, then every known input up to n - 2
    fed, k = fed_ids(3, 2, forced=np.array([[-1, 7, -1]] * 2), feed=np.array([[-1, 9, 9]] * 2))
    assert k == (False, True, True) and (fed[:, 1] == 7).all()  # forced wins over feed
    with pytest.raises(ValueError, match="same in every row"):
        fed_ids(2, 2, feed=np.array([[1, -1], [-1, -1]]))


def test_the_schedule_feeds_action_query_after_every_action(parallel):
    policy = parallel[0]
    n, lo, hi, forced, feed, echo, _ = policy.decode_schedule(np.empty((1, 0), np.int64))
    head = policy.config.plan_dim + 1
    assert set(echo) == {-1}  # one block: nothing to re-feed
    # (nothing is fed after the last position)
    assert (feed[:, head:-1] == policy.layout.special_id("action_query")).all()
    assert (feed[:, :head] == -1).all()


@pytest.mark.parametrize("committed_steps", [0, 2])
def test_one_pass_equals_token_by_token_on_torch_and_onnx(parallel, committed_steps):
    policy, demos, onnx_dir, meta = parallel
    inputs = _inputs(policy, demos)
    Da, head = policy.config.action_dim, policy.config.plan_dim + 1
    ref_engine = OneByOne(TorchEngine(policy.model, "cpu"))
    free = policy.decode_schedule(np.empty((1, 0), np.int64))
    first = ref_engine.generate(*inputs, *free[:3], "median", free.forced, free.feed)
    committed = first[:, head:head + committed_steps * Da]
    n, lo, hi, forced, feed, _, _ = policy.decode_schedule(committed)
    want = ref_engine.generate(*inputs, n, lo, hi, "median", forced, feed)
    onnx = OnnxEngine(onnx_dir, meta, "cpu")
    assert list(onnx.block_sessions) == block_lens(policy) == [policy.config.chunk * Da + 1]
    for engine in (TorchEngine(policy.model, "cpu"), onnx):
        got = engine.generate(*inputs, n, lo, hi, "median", forced, feed)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(want[:, head:head + committed_steps * Da], committed)


def test_onnx_block_logits_match_torch(parallel):
    policy, demos, onnx_dir, meta = parallel
    inputs = _inputs(policy, demos)
    torch_e, onnx_e = TorchEngine(policy.model, "cpu"), OnnxEngine(onnx_dir, meta, "cpu")
    (k,) = block_lens(policy)
    ids = np.full((1, k), policy.layout.special_id("action_query"))
    (_, ct), (_, co) = torch_e.prefill(*inputs), onnx_e.prefill(*inputs)
    lt, _ = torch_e.step_block(ids, ct)
    lo_, _ = onnx_e.step_block(ids, co)
    assert lt.shape == lo_.shape == (1, k, policy.layout.total_size)
    assert np.abs(lt - lo_).max() < 1e-4


def test_infer_chunk_continues_committed_actions(parallel):
    policy, demos, _, _ = parallel
    d = demos[0]
    obs = Observation({c: d.frames[c][3] for c in d.frames}, d.state[3], d.task)
    chunk = policy.infer_chunk(obs).actions
    again = policy.infer_chunk(obs, committed=chunk[:2]).actions
    assert again.shape == chunk.shape
    np.testing.assert_allclose(again[:2], chunk[:2], atol=1e-6)
