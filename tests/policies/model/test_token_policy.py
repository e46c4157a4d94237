import json
import shutil

import numpy as np
import pytest
import torch

from action_codec.binning import BinningCodec, BinningConfig
from envs.types import Observation
from policies.base import PolicyCheckpointError
from policies.model.token_policy import CheckpointMismatchError, TokenPolicy
from policies.training.data import ChunkSampler
from policies.training.train import TrainConfig


def test_tiny_run_overfits_and_reproduces_action_tokens(trained, demos):
    policy, logs, _ = trained
    assert logs[0].loss > 4.0
    # The smoothed target (a Gaussian over bins) has entropy ~0.5 ln(2 pi e sigma^2) nats:
    # the loss can fall to that floor, not to 0.
    floor = 0.5 * np.log(2 * np.pi * np.e * TrainConfig().label_sigma ** 2)
    assert logs[-1].loss < floor + 0.3, [round(x.loss, 3) for x in logs]
    sampler = ChunkSampler(demos, policy.config.cameras, policy.config.chunk)
    rows = sampler.index[::5]
    batch = sampler.gather(rows)
    got = policy.generate(policy.text_ids(batch.instructions), batch.frames,
                          policy.state_ids(batch.state))
    want_ids = policy.action_ids(batch.actions)
    got_ids = policy.action_ids(got)
    keep = np.repeat(~batch.pad, policy.config.action_dim, axis=1)
    assert (got_ids == want_ids)[keep].mean() > 0.9


def test_save_load_gives_identical_outputs(trained, demos):
    policy, _, out = trained
    loaded = TokenPolicy.load(out)
    obs = Observation({c: demos[0].frames[c][10] for c in ("front", "wrist")},
                      demos[0].state[10], demos[0].task)
    np.testing.assert_array_equal(policy.infer(obs).actions, loaded.infer(obs).actions)
    for a, b in zip(policy.model.state_dict().values(), loaded.model.state_dict().values(),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_infer_returns_the_executed_part_of_the_chunk(trained, demos):
    policy, _, _ = trained
    obs = Observation({c: demos[0].frames[c][0] for c in ("front", "wrist")},
                      demos[0].state[0], demos[0].task)
    chunk = policy.infer(obs)
    assert chunk.actions.shape == (policy.config.execute, 7)


def test_missing_camera_is_a_clear_error(trained, demos):
    policy, _, _ = trained
    obs = Observation({"front": demos[0].frames["front"][0]}, demos[0].state[0], "x")
    with pytest.raises(CheckpointMismatchError, match=r"lacks camera\(s\) \['wrist'\]"):
        policy.infer(obs)


def test_mismatched_vocabulary_is_rejected(trained, tmp_path):
    _, _, out = trained
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    vocab = json.loads((bad / "vocab.json").read_text())
    vocab["sizes"]["state"] += 1
    (bad / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(PolicyCheckpointError, match=f"{bad / 'vocab.json'} cannot be loaded"):
        TokenPolicy.load(bad)


def test_mismatched_codec_is_rejected(trained, tmp_path):
    _, _, out = trained
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    shutil.rmtree(bad / "action_codec")
    BinningCodec(BinningConfig(n_bins=64)).fit(np.random.rand(100, 7)).save(bad / "action_codec")
    with pytest.raises(CheckpointMismatchError, match="action codec has 64 tokens"):
        TokenPolicy.load(bad)
