"""Joint training of the video head: its targets, its loss inside train(), its checkpoint."""

import numpy as np
import pytest
import torch

from envs.types import Observation
from policies.training.train import TrainConfig, build_policy, train
from policies.video.head import VideoHeadError
from policies.video.imagine import (
    FuturePredictor,
    NoVideoHeadError,
    TokenizerMismatchError,
    load_imagination,
)
from policies.video.train_head import VideoTrainConfig, VideoTraining
from policies.video.vq import VQTokenizer, get_config


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tok")
    VQTokenizer(get_config("tiny")).save(out)  # untrained but real: targets are its codes
    return out


def _video(demos, tokenizer_dir, **kw):
    torch.manual_seed(0)
    policy = build_policy(demos, TrainConfig(model="nano"))
    tok = VQTokenizer.load(tokenizer_dir)
    return policy, VideoTraining(policy, demos, tok, VideoTrainConfig(tokenizer_dir, **kw))


def test_targets_are_the_frame_k_ahead_and_samples_past_the_end_are_skipped(demos,
                                                                           tokenizer_dir):
    policy, video = _video(demos, tokenizer_dir, max_horizon=8)
    d, T = demos[0], len(demos[0].action)
    index = np.array([[0, t] for t in range(T)] * 4)  # every frame, several draws of k
    k, now, codes, bins, keep, where = video.targets(index)
    assert 1 <= int(k.min()) and int(k.max()) <= 8
    t = index[:, 1]
    np.testing.assert_array_equal(keep.numpy(), t + k.numpy() <= T - 1)
    i = int(np.flatnonzero(keep.numpy())[0])
    f = slice(t[i] + int(k[i]), t[i] + int(k[i]) + 1)  # the one future frame
    np.testing.assert_array_equal(codes[i], video.tokenizer.encode(d.frames["front"][f])[0])
    np.testing.assert_array_equal(bins[i], policy.state_codec.encode(d.state[f])[0])
    assert tuple(where[i]) == (0, f.start)  # the frame the pixel loss compares with
    # The present is the observed frame t itself, not the target.
    o = slice(t[i], t[i] + 1)  # the observed frame
    np.testing.assert_array_equal(now.codes[i], video.tokenizer.encode(d.frames["front"][o])[0])
    np.testing.assert_array_equal(now.bins[i], policy.state_codec.encode(d.state[o])[0])
    assert not keep[t == T - 1].any()  # the last frame has no future at all


def test_horizon_longer_than_the_chunk_is_an_error(demos, tokenizer_dir):
    with pytest.raises(VideoHeadError, match="video horizon 9 exceeds the chunk of 8 actions"):
        _video(demos, tokenizer_dir, max_horizon=9)


def test_joint_training_lowers_the_video_loss_and_checkpoints_the_head(demos, tokenizer_dir,
                                                                       tmp_path):
    policy, video = _video(demos, tokenizer_dir, max_horizon=4)
    cfg = TrainConfig(model="nano", steps=40, batch_size=8, lr=3e-3, warmup=5, shift_px=0,
                      checkpoint_every=10_000)
    logs = train(policy, demos, tmp_path, cfg, video=video)
    first, last = logs[0], logs[-1]
    assert first.video_loss is not None and last.video_loss < 0.8 * first.video_loss
    assert first.video_codes_loss > last.video_codes_loss
    # What was saved predicts exactly what the trained head in memory predicts.
    loaded_policy, head, tok = load_imagination(tmp_path)
    d = demos[0]
    obs = Observation({c: d.frames[c][3] for c in policy.config.cameras}, d.state[3], d.task)
    chunks = np.stack([d.action[3:3 + policy.config.chunk]] * 2)
    chunks[1, :, 0] += 0.02
    before = FuturePredictor(policy, video.head, video.tokenizer)
    after = FuturePredictor(loaded_policy, head, tok)
    with torch.no_grad():
        want = before.head(policy.model, before.context(obs, chunks),
                           before.present(obs, len(chunks)), 3)
        got = after.head(loaded_policy.model, after.context(obs, chunks),
                         after.present(obs, len(chunks)), 3)
    torch.testing.assert_close(got.code_logits, want.code_logits)
    torch.testing.assert_close(got.state_logits, want.state_logits)


def test_loading_refuses_a_run_without_a_head_and_another_tokenizer(demos, tokenizer_dir,
                                                                    tmp_path):
    policy, video = _video(demos, tokenizer_dir, max_horizon=2)
    policy.save(tmp_path / "plain")
    with pytest.raises(NoVideoHeadError, match="has no video head.*--tokenizer TOK"):
        load_imagination(tmp_path / "plain")
    policy.save(tmp_path / "run")
    video.save(tmp_path / "run")
    torch.manual_seed(1)
    VQTokenizer(get_config("tiny")).save(tmp_path / "other")
    with pytest.raises(TokenizerMismatchError, match="is not the one the video head was trained"):
        load_imagination(tmp_path / "run", tmp_path / "other")
    assert load_imagination(tmp_path / "run")[1].cfg.max_horizon == 2


def test_a_run_carries_its_tokenizer_in_video_head_tokenizer(demos, tokenizer_dir, tmp_path):
    import shutil

    policy, video = _video(demos, tokenizer_dir, max_horizon=2)
    policy.save(tmp_path / "run")
    video.save(tmp_path / "run")
    shutil.copytree(tokenizer_dir, tmp_path / "run" / "video_head" / "tokenizer")
    # The recorded path is gone (the run was moved to another machine): the copy is used.
    moved = tmp_path / "moved_run"
    shutil.copytree(tmp_path / "run", moved)
    record_path = tmp_path / "gone"
    cfg = moved / "video_head" / "config.json"
    cfg.write_text(cfg.read_text().replace(str(tokenizer_dir.resolve()), str(record_path)))
    assert str(record_path) in cfg.read_text()
    assert load_imagination(moved)[2].cfg == VQTokenizer.load(tokenizer_dir).cfg
    # The copy is hash-checked like any tokenizer.
    torch.manual_seed(2)
    VQTokenizer(get_config("tiny")).save(moved / "video_head" / "tokenizer")
    with pytest.raises(TokenizerMismatchError, match="is not the one the video head was trained"):
        load_imagination(moved)


def test_pixel_weight_adds_the_rendered_frames_log_mse_and_training_lowers_it(demos,
                                                                             tokenizer_dir,
                                                                             tmp_path):
    # The pixel term alone (codes and state weigh 0), so its fall is the pixel loss's doing.
    policy, video = _video(demos, tokenizer_dir, max_horizon=4, pixel_weight=2.0,
                           visual_weight=0.0, state_weight=0.0)
    assert video.head.cfg.pixel_weight == 2.0
    assert not any(p.requires_grad for p in video.tokenizer.parameters())  # frozen
    cfg = TrainConfig(model="nano", steps=30, batch_size=8, lr=3e-3, warmup=5, shift_px=0,
                      checkpoint_every=10_000)
    logs = train(policy, demos, tmp_path, cfg, video=video)
    first, last = logs[0], logs[-1]
    assert first.video_pixel_loss is not None and last.video_pixel_loss < first.video_pixel_loss
    for log in (first, last):  # total = 0 codes + 0 state + 2 pixels
        assert log.video_loss == pytest.approx(2.0 * log.video_pixel_loss, rel=1e-4)
    assert load_imagination(tmp_path)[1].cfg.pixel_weight == 2.0
