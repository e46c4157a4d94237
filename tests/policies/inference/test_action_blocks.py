"""Block decoding (PolicyConfig.action_block / plan_block, policies.model.blocks).

What must hold: a token conditions on every real token of earlier blocks and on none of its
own block, in the layout, in the training forward and in the engines; torch and ONNX Runtime
decode the same ids; a chunk takes the decoder calls claimed; action_block 1 is the
autoregressive schedule and action_block H * Da the parallel one, token for token, and a
checkpoint that says "parallel_actions": true loads as that.
"""

import json
import shutil

import numpy as np
import pytest
import torch

from envs.types import Observation
from policies.inference.onnx_engine import OnnxEngine
from policies.inference.onnx_export import block_lens, export_policy
from policies.inference.torch_engine import DecodeEngine, TorchEngine, call_lengths, pick_np
from policies.model.blocks import (
    PLAN_BLOCKS,
    QUERY,
    allowed_blocks,
    groups,
    plan_groups,
    slot_layout,
    written_hidden,
)
from policies.model.token_policy import TokenPolicy
from policies.training.config import TrainConfig
from policies.training.train import build_policy

H, DA, DP = 8, 7, 22  # the default chunk; pick-place's plan with every object (conftest demos)


@pytest.fixture(scope="module")
def policies(demos):
    def make(**blocks):
        torch.manual_seed(0)
        policy = build_policy(demos, TrainConfig(model="nano", **blocks))
        policy.model.eval()
        return policy

    return {"ar": make(), "step": make(action_block=DA),
            "xyz": make(action_block=DA, plan_block="xyz"),
            "plan": make(action_block=DA, plan_block="whole"),
            "whole": make(action_block=H * DA), "parallel": make(parallel_actions=True)}


def _inputs(policy, demos, t=5):
    d = demos[0]
    obs = Observation({c: d.frames[c][t] for c in d.frames}, d.state[t], d.task)
    frames = np.stack([obs.images[c] for c in policy.config.cameras])[None]
    return policy.text_ids([obs.instruction]), frames, policy.state_ids(obs.state[None])


def _args(s):
    return (s.n, s.lo, s.hi, "median", s.forced, s.feed, s.echo)


class Counting(DecodeEngine):
    """Another engine's prefill/step/step_block, counted: one count per decoder call."""

    def __init__(self, engine: DecodeEngine) -> None:
        self.engine, self.calls = engine, 0

    def prefill(self, *a):
        self.calls += 1
        return self.engine.prefill(*a)

    def step(self, ids, cache):
        self.calls += 1
        return self.engine.step(ids, cache)

    def step_block(self, ids, cache):
        self.calls += 1
        return self.engine.step_block(ids, cache)


class OneByOne(Counting):
    """Every input its own call: the reference a block pass must equal."""

    step_block = DecodeEngine.step_block


@pytest.mark.parametrize("plan_block", PLAN_BLOCKS)
@pytest.mark.parametrize("block", allowed_blocks(4 * 3))
def test_the_layout_shows_each_token_every_earlier_block_and_none_of_its_own(block, plan_block):
    Dp, n = 7, 4 * 3  # the goal-only plan: cube xyz, plate xyz, turn
    spans = groups(Dp, plan_block, n, block)
    lay = slot_layout(spans)
    group_of = {w: g for g, (a, b) in enumerate(spans) for w in range(a, b)}
    for given in (0, 2 * 3):  # committed tokens at the start of the chunk: fed as real ids
        given_ids = set(range(Dp + 1, Dp + 1 + given)) | {Dp}  # begin_actions is given
        for s, w in enumerate(lay.target):
            if w < 0:
                continue
            seen = {lay.src[r] for r in range(1, s + 1)
                    if not lay.query[r] or lay.src[r] in given_ids}
            start = spans[group_of[w]][0]
            own = {v for v in seen if v >= start}
            assert set(range(start)) <= seen, (s, w)
            assert own <= given_ids, (s, w, own)  # only what inference is given anyway
    # one echo slot per token of every block but the last, except each block's last token
    assert lay.n == Dp + 1 + n + sum(b - a - 1 for a, b in spans[:-1])


def test_the_decoder_calls_per_chunk_are_as_claimed(policies, demos):
    inputs = _inputs(policies["ar"], demos)
    # The prefill predicts the plan's first token; a first group of several takes one more
    # call for the rest; then one call per later group (begin_actions rides on the first
    # action group's call). xyz: 7 triples and the turn.
    want = {"ar": DP + H * DA, "step": DP + H, "xyz": 2 + (DP - 1) // 3 + H, "plan": H + 2,
            "whole": DP + 1, "parallel": DP + 1}  # 78, 30, 17, 10, 23, 23 for the default
    for name, policy in policies.items():
        s = policy.decode_schedule(np.empty((1, 0), np.int64))
        counted = Counting(TorchEngine(policy.model, "cpu"))
        counted.generate(*inputs, *_args(s))
        assert counted.calls == 1 + len(call_lengths(s.n, s.forced, s.feed, s.echo)) == \
            want[name], name


@pytest.mark.parametrize("name", ["step", "xyz", "plan"])
@pytest.mark.parametrize("committed_steps", [0, 3])
def test_torch_onnx_and_one_token_per_call_decode_the_same_ids(policies, demos, tmp_path,
                                                               name, committed_steps):
    policy = policies[name]
    inputs = _inputs(policy, demos)
    free = policy.decode_schedule(np.empty((1, 0), np.int64))
    first = TorchEngine(policy.model, "cpu").generate(*inputs, *_args(free))
    committed = free.tokens(first)[:, DP + 1:DP + 1 + committed_steps * DA]
    s = policy.decode_schedule(committed)
    want = OneByOne(TorchEngine(policy.model, "cpu")).generate(*inputs, *_args(s))
    meta = export_policy(policy, tmp_path)
    onnx = OnnxEngine(tmp_path, meta, "cpu")
    assert sorted(onnx.block_sessions) == block_lens(policy)
    for engine in (TorchEngine(policy.model, "cpu"), Counting(TorchEngine(policy.model, "cpu")),
                   onnx):
        np.testing.assert_array_equal(engine.generate(*inputs, *_args(s)), want)
    np.testing.assert_array_equal(s.tokens(want)[:, DP + 1:DP + 1 + committed.shape[1]],
                                  committed)
    chunk = policy.use_engine(onnx).generate(*inputs)
    assert chunk.shape == (1, H, DA)


def _engine_logits(policy, inputs, tweak: int | None, committed=None) -> list[np.ndarray]:
    """Logits of every picked position, decoding on the torch engine (KV cache, block
    passes); the pick number `tweak` is moved 17 bins off its median."""
    s = policy.decode_schedule(np.empty((1, 0), np.int64) if committed is None else committed)
    seen = []

    def pick(z, span):
        seen.append(z.copy())
        ids = pick_np(z, "median")
        return (ids + 17) % (span[1] - span[0]) if len(seen) - 1 == tweak else ids

    TorchEngine(policy.model, "cpu")._decode(*inputs, s.n, s.lo, s.hi, s.forced, s.feed,
                                             s.echo, pick)
    return seen


def _training_logits(policy, inputs, written: np.ndarray, given: int = 0) -> np.ndarray:
    """(W, V) the training forward's logits predicting each written token, teacher-forced;
    the first `given` action tokens committed (fed as inference is given them)."""
    text, frames, state = (torch.as_tensor(a) for a in inputs)
    with torch.no_grad():
        x = policy.model.prefix_embeddings(text, frames, state)
        cols = torch.arange(written.shape[1])[None]
        given_mask = (cols > DP) & (cols <= DP + given)
        query = policy.layout.special_id(QUERY) if policy.config.blocks else -1
        h = written_hidden(policy.model, policy.slot_layout(), x, torch.as_tensor(written),
                           given_mask, query)
        return policy.model.embed.logits(h[:, 1:])[0].numpy()


@pytest.mark.parametrize("name", ["step", "xyz", "plan", "ar"])
def test_a_token_conditions_on_earlier_steps_and_not_its_own(policies, demos, name):
    policy, t, d = policies[name], 3, 2  # change step t's dimension d
    inputs = _inputs(policy, demos)
    action = lambda step: slice(DP + step * DA, DP + (step + 1) * DA)  # noqa: E731 (picks)
    base, moved = (_engine_logits(policy, inputs, tweak) for tweak in (None, DP + t * DA + d))
    same = [np.array_equal(a, b) for a, b in zip(base, moved, strict=True)]
    written = policy.decode_schedule(np.empty((1, 0), np.int64))
    ids = written.tokens(TorchEngine(policy.model, "cpu").generate(*inputs, *_args(written)))
    other = ids.copy()
    at = DP + 1 + t * DA + d  # the same token among the written ones (begin_actions between)
    other[0, at] = policy.layout.ranges["action"].start + (ids[0, at] + 17 - policy.layout.ranges[
        "action"].start) % 256
    a, b = _training_logits(policy, inputs, ids), _training_logits(policy, inputs, other)
    train_same = np.abs(a - b).max(-1) < 1e-5  # (W,)
    step = lambda k: slice(DP + 1 + k * DA, DP + 1 + (k + 1) * DA)  # noqa: E731 (written)
    assert all(same[:DP + t * DA + d + 1]) and train_same[:at + 1].all()
    if name == "ar":  # the contrast: later tokens of the same step see the change
        assert not all(same[action(t)]) and not train_same[step(t)].all()
    else:
        assert all(same[action(t)]) and train_same[step(t)].all()
    assert not any(same[action(t + 1)]) and not train_same[step(t + 1)].any()


@pytest.mark.parametrize("committed_steps", [0, 3])
def test_training_and_the_engine_compute_the_same_logits(policies, demos, committed_steps):
    for name in ("step", "xyz", "plan", "whole"):
        policy = policies[name]
        inputs = _inputs(policy, demos)
        free = policy.decode_schedule(np.empty((1, 0), np.int64))
        first = free.tokens(TorchEngine(policy.model, "cpu").generate(*inputs, *_args(free)))
        k = committed_steps * DA
        s = policy.decode_schedule(first[:, DP + 1:DP + 1 + k])
        ids = s.tokens(TorchEngine(policy.model, "cpu").generate(*inputs, *_args(s)))
        engine = np.concatenate(_engine_logits(policy, inputs, None, first[:, DP + 1:DP + 1 + k]))
        train = _training_logits(policy, inputs, ids, k)  # (W, V)
        picked = [w for w in range(ids.shape[1]) if w < DP or w > DP + k]  # the rest: given
        spans = [(s.lo[s.written[w]], s.hi[s.written[w]]) for w in picked]
        np.testing.assert_allclose(np.stack([train[w, a:b] for w, (a, b) in zip(
            picked, spans, strict=True)]), engine, atol=2e-4, err_msg=name)


def _old_schedule(policy, forced_actions):
    """TokenPolicy.decode_schedule as it was before action_block (commit d71a393)."""
    B, k = forced_actions.shape
    Dp, n_act = policy.config.plan_dim, policy.config.chunk * policy.config.action_dim
    head = Dp + 1 if Dp else 0
    lo = [policy.layout.ranges["action"].start] * (head + n_act)
    hi = [policy.layout.ranges["action"].stop] * (head + n_act)
    forced = np.full((B, head + n_act), -1, np.int64)
    feed = np.full((B, head + n_act), -1, np.int64)
    if Dp:
        r = policy.layout.ranges["plan"]
        lo[:Dp], hi[:Dp] = [r.start] * Dp, [r.stop] * Dp
        forced[:, Dp] = policy.layout.special_id("begin_actions")
    forced[:, head:head + k] = forced_actions
    if policy.config.parallel_actions:
        feed[:, head:] = policy.layout.special_id("action_query")
    return head + n_act, lo, hi, forced, feed


@pytest.mark.parametrize("name", ["ar", "whole", "parallel"])
def test_blocks_of_one_and_of_the_chunk_are_the_old_schedules(policies, demos, name):
    policy = policies[name]
    assert policy.config.parallel_actions == (name != "ar")
    committed = np.arange(2 * DA)[None] + policy.layout.ranges["action"].start
    for given in (committed[:, :0], committed):
        s = policy.decode_schedule(given)
        n, lo, hi, forced, feed = _old_schedule(policy, given)
        assert (s.n, s.lo, s.hi) == (n, lo, hi) and set(s.echo) == {-1}
        assert s.written == tuple(range(n))
        np.testing.assert_array_equal(s.forced, forced)
        np.testing.assert_array_equal(s.feed[:, :-1], feed[:, :-1])  # none fed after the last
    s = policy.decode_schedule(committed[:, :0])
    inputs = _inputs(policy, demos)
    np.testing.assert_array_equal(
        TorchEngine(policy.model, "cpu").generate(*inputs, *_args(s)),
        OneByOne(TorchEngine(policy.model, "cpu")).generate(*inputs, *_old_schedule(
            policy, committed[:, :0])[:3], "median", *_old_schedule(policy, committed[:, :0])[3:]))


def test_a_plan_block_flag_checkpoint_loads_as_the_plan_block_it_meant(policies, demos,
                                                                        tmp_path):
    policy = policies["plan"]
    policy.save(tmp_path / "new")
    meta = json.loads((tmp_path / "new" / "config.json").read_text())
    meta["policy"]["plan_block"] = True  # as checkpoints before "xyz" wrote the whole plan
    (tmp_path / "new" / "config.json").write_text(json.dumps(meta))
    loaded = TokenPolicy.load(tmp_path / "new")
    assert loaded.config.plan_block == "whole" and loaded.config == policy.config
    inputs = _inputs(policy, demos)
    np.testing.assert_array_equal(loaded.generate(*inputs), policy.generate(*inputs))


def test_xyz_plan_blocks_are_the_positions_then_the_turn():
    assert plan_groups(7, "xyz") == [(0, 3), (3, 6), (6, 7)]
    assert plan_groups(22, "xyz")[-3:] == [(15, 18), (18, 21), (21, 22)]
    with pytest.raises(ValueError, match=r"3k \+ 1; got 8"):
        plan_groups(8, "xyz")
    with pytest.raises(ValueError, match=r"'xy' is not one of \['token', 'xyz', 'whole'\]"):
        plan_groups(7, "xy")


def test_a_parallel_actions_checkpoint_loads_as_the_whole_chunk_block(policies, demos, tmp_path):
    policy = policies["whole"]
    policy.save(tmp_path / "new")
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "new", old)
    meta = json.loads((old / "config.json").read_text())
    for k in ("action_block", "plan_block"):
        del meta["policy"][k]
    meta["policy"]["parallel_actions"] = True  # as checkpoints before action_block wrote it
    (old / "config.json").write_text(json.dumps(meta))
    loaded = TokenPolicy.load(old)
    assert loaded.config == policy.config and loaded.config.action_block == H * DA
    inputs = _inputs(policy, demos)
    np.testing.assert_array_equal(loaded.generate(*inputs), policy.generate(*inputs))


def test_block_sizes_that_do_not_divide_the_chunk_are_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match=r"allowed \[1, 2, 4, 7, 8, 14, 28, 56\]"):
        TrainConfig(action_block=5)
    with pytest.raises(ValueError, match="means --action-block 56"):
        TrainConfig(action_block=7, parallel_actions=True)
    assert TrainConfig(chunk=4, action_block=28).blocks == (28, "token")
    with pytest.raises(ValueError, match=r"plan_block 'xy' is not one of"):
        TrainConfig(plan_block="xy")
    with pytest.raises(ValueError, match="--plan-block xyz decodes plan tokens in blocks; this "
                                         "run writes none"):
        TrainConfig(plan_block="xyz", sim_truth=False)


def test_schedule_inputs_are_what_the_engine_fed(policies, demos):
    policy = policies["step"]
    inputs = _inputs(policy, demos)
    s = policy.decode_schedule(np.empty((1, 0), np.int64))
    fed = []

    class Recording(Counting):
        def step(self, ids, cache):
            fed.append(ids)
            return super().step(ids, cache)

        def step_block(self, ids, cache):
            fed.append(ids)
            return super().step_block(ids, cache)

    ids = Recording(TorchEngine(policy.model, "cpu")).generate(*inputs, *_args(s))
    np.testing.assert_array_equal(np.concatenate(fed, axis=1), s.inputs(ids))


def test_export_parity_holds_for_blocks(policies, demos, tmp_path):
    from policies.inference.parity import parity_report

    policy = policies["step"]
    meta = export_policy(policy, tmp_path)
    d = demos[0]
    obs = [Observation({c: d.frames[c][t] for c in d.frames}, d.state[t], d.task)
           for t in (0, 9)]
    report = parity_report(policy, TorchEngine(policy.model, "cpu"),
                           OnnxEngine(tmp_path, meta, "cpu"), obs)
    assert report["parity"] and report["identical_token_share_forced_prefix"] == 1.0, report
    assert report["tokens_compared"] == 2 * (DP + 1 + H * DA)
