import math

import pytest
import torch
import torch.nn.functional as F

from policies.model.transformer import CONFIGS, TokenTransformer
from policies.video.head import (
    Present,
    VideoHead,
    VideoHeadConfig,
    VideoHeadShapeError,
    expected_frames,
    future_hidden,
    pixel_loss,
    video_loss,
)
from policies.video.vq import VQTokenizer, get_config, to_uint8

TOK = get_config("tiny")  # the tiny VQ's codebook; grid from its downsampling


def _setup(batch=2, chunk_ids=12, **head_kw):
    torch.manual_seed(0)
    cfg = CONFIGS["nano"]
    model = TokenTransformer(cfg)
    head_cfg = VideoHeadConfig(grid=TOK.grid, codebook_size=TOK.codebook_size, state_bins=32,
                               **head_kw)
    head = VideoHead(head_cfg, cfg.d_model)
    text, frames, state = cfg.fake_inputs(batch=batch)
    actions = torch.randint(0, cfg.vocab_size, (batch, chunk_ids))
    x = torch.cat([model.prefix_embeddings(text, frames, state), model.embed(actions)], dim=1)
    return model, head, x, _present(head_cfg, batch)


def _present(head_cfg, batch=2, seed=2):
    g = torch.Generator().manual_seed(seed)
    return Present(torch.randint(0, head_cfg.codebook_size, (batch, head_cfg.grid, head_cfg.grid),
                                 generator=g),
                   torch.randint(0, head_cfg.state_bins, (batch, head_cfg.state_dim), generator=g))


def _targets(head_cfg, batch=2):
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, head_cfg.codebook_size, (batch, head_cfg.grid, head_cfg.grid),
                          generator=g)
    bins = torch.randint(0, head_cfg.state_bins, (batch, head_cfg.state_dim), generator=g)
    return codes, bins


def test_output_shapes_on_nano_fake_inputs():
    model, head, x, now = _setup()
    c = head.cfg
    pred = head(model, x, now)
    assert pred.code_logits.shape == (2, c.grid, c.grid, c.codebook_size)
    assert pred.state_logits.shape == (2, c.state_dim, c.state_bins)
    codes, bins = head.predict(model, x, now)
    assert codes.shape == (2, c.grid, c.grid) and codes.dtype == torch.int64
    assert bins.shape == (2, c.state_dim) and int(codes.max()) < c.codebook_size


def test_future_hidden_uses_the_trunk_causally():
    model, head, x, now = _setup(batch=1)
    model.eval()
    q = head.queries.expand(1, -1, -1)
    with torch.no_grad():
        h = future_hidden(model, x, q)
        # The context positions are the trunk's own forward: queries do not change them, and
        # the first query's state equals a forward of [context, query 0] alone.
        h0 = future_hidden(model, x, q[:, :1])
    assert h.shape == (1, head.cfg.n_queries, model.cfg.d_model)
    torch.testing.assert_close(h[:, :1], h0, atol=1e-5, rtol=1e-5)


def test_loss_is_finite_and_reaches_head_and_trunk():
    model, head, x, now = _setup()
    codes, bins = _targets(head.cfg)
    loss = video_loss(head(model, x, now), codes, bins, head.cfg)
    assert torch.isfinite(loss.total) and loss.codes > 0 and loss.state > 0
    loss.total.backward()
    for p in (head.queries, head.code_head.weight, head.state_head.weight, head.code_embed.weight,
              head.bin_embed.weight, head.code_copy.weight, head.state_copy.bias,
              model.blocks[0].attn.qkv.weight, model.embed.weight, model.patches.grid.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_visual_weight_scales_the_visual_part():
    model, head, x, now = _setup()
    codes, bins = _targets(head.cfg)
    with torch.no_grad():
        pred = head(model, x, now)
    parts = {w: video_loss(pred, codes, bins, VideoHeadConfig(
        grid=head.cfg.grid, codebook_size=head.cfg.codebook_size, state_bins=32,
        visual_weight=w)) for w in (0.0, 0.5, 1.0)}
    torch.testing.assert_close(parts[0.0].total, parts[0.0].state)
    torch.testing.assert_close(parts[0.5].total, 0.5 * parts[1.0].codes + parts[1.0].state)
    torch.testing.assert_close(parts[1.0].total - parts[0.0].total, parts[1.0].codes)


def test_bad_targets_and_overlong_sequences_are_errors():
    model, head, x, now = _setup()
    codes, bins = _targets(head.cfg)
    pred = head(model, x, now)
    with pytest.raises(VideoHeadShapeError, match=r"codes must be int64 of shape \(2, 16, 16\)"):
        video_loss(pred, codes[:, :8], bins, head.cfg)
    with pytest.raises(VideoHeadShapeError, match=r"state_bins must lie in \[0, 32\)"):
        video_loss(pred, codes, bins + 32, head.cfg)
    long = torch.zeros(2, model.cfg.max_seq_len - 10, model.cfg.d_model)
    with pytest.raises(VideoHeadShapeError, match="exceeds the trunk's max_seq_len"):
        head(model, long, now)
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        VideoHeadConfig(horizon=0)


def test_one_head_predicts_every_horizon_and_says_which():
    model, head, x, now = _setup(max_horizon=8)
    model.eval()
    c = head.cfg
    with torch.no_grad():
        per_k = [head(model, x, now, k) for k in (1, 4, 8)]
        mixed = head(model, x, now, torch.tensor([4, 8]))  # one horizon per row
        default = head(model, x, now)
    for pred in per_k:
        assert pred.code_logits.shape == (2, c.grid, c.grid, c.codebook_size)
        assert pred.state_logits.shape == (2, c.state_dim, c.state_bins)
    # The horizon embedding changes the queries, so the predictions differ by horizon ...
    assert not torch.allclose(per_k[0].code_logits, per_k[2].code_logits)
    # ... and a row's prediction depends on its own horizon only.
    torch.testing.assert_close(mixed.code_logits[0], per_k[1].code_logits[0])
    torch.testing.assert_close(mixed.state_logits[1], per_k[2].state_logits[1])
    torch.testing.assert_close(default.code_logits, per_k[1].code_logits)  # cfg.horizon = 4


def test_horizon_outside_the_trained_range_is_an_error():
    model, head, x, now = _setup(max_horizon=6, horizon=6)
    with pytest.raises(VideoHeadShapeError, match=r"horizon must lie in 1..max_horizon 6, got "
                                                  r"values in \[1, 7\]"):
        head(model, x, now, torch.tensor([1, 7]))
    with pytest.raises(VideoHeadShapeError, match=r"an int or a \(2,\) tensor"):
        head(model, x, now, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="horizon 9 must be in 1..max_horizon 8"):
        VideoHeadConfig(horizon=9)


def test_keep_mask_leaves_samples_out_of_the_loss():
    model, head, x, now = _setup()
    codes, bins = _targets(head.cfg)
    with torch.no_grad():
        pred = head(model, x, now, torch.tensor([2, 3]))
        both = video_loss(pred, codes, bins, head.cfg)
        first = video_loss(pred, codes, bins, head.cfg, keep=torch.tensor([True, False]))
        alone = video_loss(type(pred)(pred.code_logits[:1], pred.state_logits[:1]), codes[:1],
                           bins[:1], head.cfg)
        none = video_loss(pred, codes, bins, head.cfg, keep=torch.tensor([False, False]))
    torch.testing.assert_close(first.total, alone.total)
    assert not torch.isclose(first.total, both.total)
    assert none.total == 0


def test_untrained_head_predicts_the_present_and_reads_it():
    """The copy gates start the head at "nothing changes" (module doc): before any training
    the most likely future is the present, code for code and bin for bin."""
    model, head, x, now = _setup()
    model.eval()
    codes, _ = head.predict(model, x, now)
    torch.testing.assert_close(codes, now.codes)
    with torch.no_grad():
        torch.testing.assert_close(head(model, x, now).state_logits.argmax(-1), now.bins)
    # The present enters the queries, not only the gate: another present, other hidden states.
    other = _present(head.cfg, seed=3)
    with torch.no_grad():
        a, b = head(model, x, now), head(model, x, other)
    a_rest = a.code_logits.scatter(-1, now.codes[..., None], 0.0)
    b_rest = b.code_logits.scatter(-1, other.codes[..., None], 0.0)
    assert not torch.allclose(a_rest, b_rest)


def test_present_of_the_wrong_shape_or_range_is_an_error():
    model, head, x, now = _setup()
    with pytest.raises(VideoHeadShapeError, match=r"present.codes must be int64 of shape "
                                                  r"\(2, 16, 16\)"):
        head(model, x, Present(now.codes[:1], now.bins))
    with pytest.raises(VideoHeadShapeError, match=r"present.bins must lie in \[0, 32\)"):
        head(model, x, Present(now.codes, now.bins + 32))


def test_state_bins_are_the_median_bin_and_codes_the_most_likely():
    model, head, x, now = _setup()
    with torch.no_grad():  # a trained-looking head: state mass spread over many bins
        head.state_copy.bias.fill_(0.0)
        head.state_head.weight.normal_(0, 1.0)
        pred = head(model, x, now)
    codes, bins = head.predict(model, x, now)
    cdf = pred.state_logits.softmax(-1).cumsum(-1)  # (B, Ds, bins)
    below = cdf.gather(-1, (bins - 1).clamp_min(0)[..., None])[..., 0]
    at = cdf.gather(-1, bins[..., None])[..., 0]
    assert ((below < 0.5) | (bins == 0)).all() and (at >= 0.5 - 1e-6).all()
    assert not torch.equal(bins, pred.state_logits.argmax(-1))  # the rules differ here
    torch.testing.assert_close(codes, pred.code_logits.argmax(-1))


def test_expected_rendering_of_a_certain_head_is_the_decoded_codes_and_has_gradients():
    torch.manual_seed(0)
    tok = VQTokenizer(TOK).eval()
    codes = torch.randint(0, TOK.codebook_size, (2, TOK.grid, TOK.grid))
    # A head sure of each cell's code (one-hot up to e^-60) renders exactly those codes.
    logits = F.one_hot(codes, TOK.codebook_size).float() * 60.0
    logits.requires_grad_(True)
    frames = expected_frames(logits, tok)  # (2, 3, H, W) in [-1, 1]
    assert frames.shape == (2, 3, TOK.image_size, TOK.image_size)
    torch.testing.assert_close(to_uint8(frames.detach()), tok.decode(codes), atol=1, rtol=0)
    frames.square().mean().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    with pytest.raises(VideoHeadShapeError, match="codes, the tokenizer's codebook"):
        expected_frames(logits[..., :-1], tok)


def test_pixel_loss_is_the_mean_log_mse_of_the_kept_frames():
    target = torch.zeros(3, 3, 8, 8)
    frames = torch.stack([torch.full((3, 8, 8), 0.1), torch.full((3, 8, 8), 0.2),
                          torch.full((3, 8, 8), 5.0)])  # MSE 0.01, 0.04, 25 (left out)
    keep = torch.tensor([True, True, False])
    want = (math.log(0.01 + 1e-6) + math.log(0.04 + 1e-6)) / 2
    assert pixel_loss(frames, target, keep).item() == pytest.approx(want, rel=1e-5)
    assert pixel_loss(frames, target, torch.zeros(3, dtype=torch.bool)).item() == 0.0
    with pytest.raises(VideoHeadShapeError, match="do not match"):
        pixel_loss(frames, target[:2], keep)
    with pytest.raises(ValueError, match="pixel_weight -1"):
        VideoHeadConfig(pixel_weight=-1)
