import json
import shutil

import numpy as np
import onnx
import pytest

from envs.types import Observation
from policies.inference.onnx_engine import OnnxEngine
from policies.inference.onnx_export import export_policy, read_export
from policies.inference.parity import parity_report
from policies.inference.torch_engine import TorchEngine
from policies.model.token_policy import CheckpointMismatchError, TokenPolicy


@pytest.fixture(scope="module")
def exported(nano_checkpoint, tmp_path_factory):
    run, demos = nano_checkpoint
    policy = TokenPolicy.load(run)
    out = tmp_path_factory.mktemp("onnx")
    meta = export_policy(policy, out)
    return policy, out, meta, demos


def observations(demos, n=4):
    d = demos[0]
    return [Observation({c: d.frames[c][t] for c in d.frames}, d.state[t], d.task)
            for t in np.linspace(0, len(d.action) - 1, n).astype(int)]


def test_export_writes_checked_graphs_with_cache_io(exported):
    policy, out, meta, _ = exported
    for graph in ("prefill.onnx", "decode.onnx"):
        onnx.checker.check_model(str(out / graph))
    decode = onnx.load(str(out / "decode.onnx"))
    names = [i.name for i in decode.graph.input]
    n = policy.model.cfg.n_layers
    assert names == ["input_ids"] + [f"past.{i}.{kv}" for i in range(n) for kv in ("key", "value")]
    assert meta["vocab_hash"] == policy.layout.hash
    assert json.loads((out / "export.json").read_text())["policy"]["chunk"] == policy.config.chunk


def test_onnx_matches_torch_tokens_and_logits(exported):
    policy, out, meta, demos = exported
    report = parity_report(policy, TorchEngine(policy.model, "cpu"),
                           OnnxEngine(out, meta, "cpu"), observations(demos))
    assert report["identical_token_share"] == 1.0
    assert report["identical_token_share_forced_prefix"] == 1.0
    assert report["max_abs_logit_diff"] < 1e-4
    assert report["parity"] and set(report["latency_ms_per_chunk"]) == {
        "torch[cpu, 1 thread(s)]", "onnx[CPU]"}


def test_cpu_cache_as_numpy_or_bound_gives_the_same_numbers(exported):
    # On the CPU the engine feeds the cache as numpy (faster, see onnx_engine's doc); IO
    # binding, what GPUs use, must decode the very same logits and ids from the same graph.
    policy, out, meta, demos = exported
    host, bound = OnnxEngine(out, meta, "cpu"), OnnxEngine(out, meta, "cpu", io_binding=True)
    assert (host.io_binding, bound.io_binding) == (False, True)
    obs = observations(demos, 1)[0]
    inputs = (policy.text_ids([obs.instruction]),
              np.stack([obs.images[c] for c in policy.config.cameras])[None],
              policy.state_ids(obs.state[None]))
    (la, ca), (lb, cb) = host.prefill(*inputs), bound.prefill(*inputs)
    assert isinstance(ca[0], np.ndarray) and not isinstance(cb[0], np.ndarray)
    start = ca[0].shape[2]
    for _ in range(12):
        np.testing.assert_array_equal(la, lb)
        ids = la.argmax(-1)[:, None]
        (la, ca), (lb, cb) = host.step(ids, ca), bound.step(ids, cb)
    assert ca[0].shape[2] == start + 12 and ca[0].shape == tuple(cb[0].shape())
    schedule = policy.decode_schedule(np.empty((1, 0), np.int64))
    np.testing.assert_array_equal(host.generate(*inputs, *schedule[:3], "median", schedule[3]),
                                  bound.generate(*inputs, *schedule[:3], "median", schedule[3]))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_rtc_chunk_starts_with_the_committed_actions(exported, backend):
    policy, out, meta, demos = exported
    engine = (TorchEngine(policy.model, "cpu") if backend == "torch"
              else OnnxEngine(out, meta, "cpu"))
    policy.use_engine(engine)
    obs_a, obs_b = observations(demos, 2)
    committed = policy.infer_chunk(obs_a).actions[:3]  # what the running chunk will still do
    chunk = policy.infer_chunk(obs_b, committed=committed).actions
    H = policy.config.chunk
    assert chunk.shape == (H, 7)
    np.testing.assert_array_equal(chunk[:3], committed)
    with pytest.raises(ValueError, match="forced prefix"):
        policy.infer_chunk(obs_b, committed=np.zeros((H, 7), np.float32))
    policy.use_engine(TorchEngine(policy.model, "cpu"))


def test_export_of_other_weights_or_vocabulary_is_refused(exported, tmp_path):
    policy, out, _, _ = exported
    read_export(out, policy)  # the matching pair loads
    # Same config and vocabulary, freshly initialised weights: another training run.
    tweaked = TokenPolicy(type(policy.model)(policy.model.cfg), policy.config, policy.layout,
                          policy.state_codec, policy.action_codec, policy.text_tokenizer,
                          policy.plan_codec)
    with pytest.raises(CheckpointMismatchError, match="other weights"):
        read_export(out, tweaked)
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    meta = json.loads((bad / "export.json").read_text())
    meta["vocab_hash"] = "0" * 64
    (bad / "export.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointMismatchError, match="does not belong.*vocab_hash"):
        read_export(bad, policy)
    with pytest.raises(CheckpointMismatchError, match="not an ONNX export"):
        read_export(tmp_path, policy)


def _edited_export(out, d, **change):
    """A copy of the export `out` at `d` whose policy config has `change` (None: key removed)."""
    shutil.copytree(out, d)
    meta = json.loads((d / "export.json").read_text())
    meta["policy"] = {k: v for k, v in {**meta["policy"], **change}.items() if v is not None}
    (d / "export.json").write_text(json.dumps(meta))
    return d


def test_an_export_made_before_checkpoints_named_their_fields_still_belongs(exported,
                                                                           tmp_path):
    """Names change no graph: an export without them (a cached one of the same weights) is
    still this checkpoint's; one naming other fields is not."""
    policy, out, _, _ = exported

    def edited(name, **change):
        return _edited_export(out, tmp_path / name, **change)

    read_export(edited("old", state_names=None, action_names=None), policy)
    other = [f"j{i}" for i in range(6)] + list(policy.config.state_names[6:])
    with pytest.raises(CheckpointMismatchError, match="does not belong.*state_names"):
        read_export(edited("other", state_names=other), policy)


def test_an_export_made_before_action_blocks_existed_still_belongs(exported, tmp_path):
    """A cached export of an autoregressive checkpoint, made before PolicyConfig had
    parallel_actions (no key) or when it had it (false) and before action_block replaced it,
    is still this checkpoint's (found by running bench/inference.py on the shipped default
    with an old cache). A parallel one, or one of other blocks, is not."""
    policy, out, _, _ = exported
    assert policy.config.action_block == 1 and policy.config.plan_block == "token"

    def edited(name, **change):
        return _edited_export(out, tmp_path / name, **change)

    blockless = dict(action_block=None, plan_block=None)
    read_export(edited("before", **blockless), policy)
    read_export(edited("flag", parallel_actions=False, **blockless), policy)
    with pytest.raises(CheckpointMismatchError, match="does not belong.*action_block"):
        read_export(edited("parallel", parallel_actions=True, **blockless), policy)
    with pytest.raises(CheckpointMismatchError, match="does not belong.*action_block"):
        read_export(edited("steps", action_block=7), policy)


def test_cli_export_writes_graphs_and_parity_report(nano_checkpoint, tmp_path, capsys):
    from agent.cli import main

    out = tmp_path / "onnx"
    assert main(["export", "--policy", str(nano_checkpoint[0]), "--out", str(out),
                 "--observations", "4"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report == json.loads((out / "parity.json").read_text())
    assert report["parity"] and report["observations"] == 4
    assert report["source"]["env"] == "mujoco:pick_place"
    assert {"prefill.onnx", "decode.onnx", "export.json"} <= {p.name for p in out.iterdir()}
