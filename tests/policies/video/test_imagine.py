import numpy as np
import pytest
import torch

from agent.rollout import rollout_demos
from envs.types import Observation
from policies.training.train import TrainConfig, build_policy
from policies.video.head import VideoHead, VideoHeadConfig, VideoHeadError, video_loss
from policies.video.imagine import FuturePredictor, video_targets
from policies.video.vq import VQTokenizer, get_config


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    demos = rollout_demos("mujoco:pick_place", range(1))
    policy = build_policy(demos, TrainConfig(model="nano"))
    tok = VQTokenizer(get_config("tiny")).eval()
    head = VideoHead(VideoHeadConfig(grid=tok.cfg.grid, codebook_size=tok.cfg.codebook_size,
                                     state_bins=policy.state_codec.vocab_size),
                     policy.model.cfg.d_model)
    d = demos[0]
    obs = Observation({c: d.frames[c][5] for c in policy.config.cameras}, d.state[5], d.task)
    return policy, head, tok, d, obs


def test_predictor_gives_states_and_frames_per_candidate(parts):
    policy, head, tok, d, obs = parts
    H = policy.config.chunk
    chunks = np.stack([d.action[5:5 + H] + 0.01 * i for i in range(3)])  # (3, H, Da)
    pred = FuturePredictor(policy, head, tok)
    states = pred(obs, chunks)
    assert states.shape == (3, policy.config.state_dim) and states.dtype == np.float32
    assert np.isfinite(states).all()
    frames = pred.frames(obs, chunks)
    assert frames.shape == (3, 128, 128, 3) and frames.dtype == np.uint8
    # The present it hands the head is the observation, encoded once for all candidates.
    now = pred.present(obs, 3)
    camera = policy.config.cameras[head.cfg.camera]
    torch.testing.assert_close(now.codes[2], tok.encode(obs.images[camera][None])[0])
    want = policy.state_codec.encode(obs.state[None].astype(np.float32))[0]
    np.testing.assert_array_equal(now.bins[1].numpy(), want)


def test_targets_from_real_future_train_the_head(parts):
    policy, head, tok, d, obs = parts
    H, k = policy.config.chunk, head.cfg.horizon
    pred = FuturePredictor(policy, head, tok)
    x = pred.context(obs, d.action[5:5 + H][None])  # (1, S, D)
    camera = policy.config.cameras[head.cfg.camera]
    codes, bins = video_targets(tok, policy, d.frames[camera][5 + k][None], d.state[5 + k][None])
    assert codes.shape == (1, 16, 16) and bins.shape == (1, policy.config.state_dim)
    loss = video_loss(head(policy.model, x, pred.present(obs)), codes, bins, head.cfg)
    assert torch.isfinite(loss.total)


def test_mismatched_head_is_refused(parts):
    policy, _, tok, _, _ = parts
    bad = VideoHead(VideoHeadConfig(state_bins=7, camera=5), policy.model.cfg.d_model)
    with pytest.raises(VideoHeadError, match="state_bins 7 != state codec bins 256.*camera 5"):
        FuturePredictor(policy, bad, tok)


def test_the_shipped_video_run_loads_with_its_own_tokenizer_and_imagines():
    import checkpoints
    from policies.video.imagine import load_imagination, tokenizer_dir

    run = checkpoints.VIDEO
    policy, head, tok = load_imagination(run)  # hash-checked against the bundled copy
    assert tokenizer_dir(run, {"path": "/nowhere"}) == run / "video_head" / "tokenizer"
    rng = np.random.default_rng(0)
    obs = Observation({c: rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
                       for c in policy.config.cameras},
                      np.zeros(policy.config.state_dim, np.float32),
                      "put the red cube on the yellow plate")
    chunks = policy.sample_chunks(obs, 3, rng)
    pred = FuturePredictor(policy, head, tok)
    logits, states = pred.predict(obs, chunks, 4)
    assert logits.shape == (3, 16, 16, 2048) and states.shape == (3, policy.config.state_dim)
    assert pred.decode(logits.argmax(-1)).shape == (3, 128, 128, 3)
    for how in ("argmax", "expected"):
        assert pred.render(logits, how).shape == (3, 128, 128, 3)
