import pytest
import torch

from policies.model.transformer import CONFIGS, TokenTransformer


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_config_runs_on_fake_inputs(name):
    cfg = CONFIGS[name]
    model = TokenTransformer(cfg).eval()
    text, frames, state = cfg.fake_inputs(batch=2)
    x = model.prefix_embeddings(text, frames, state)
    assert x.shape == (2, 8 + cfg.n_patches + 17, cfg.d_model)
    logits, caches = model(x)
    assert logits.shape == (2, x.shape[1], cfg.vocab_size)
    assert len(caches) == cfg.n_layers and torch.isfinite(logits).all()


def test_kv_cache_decoding_matches_full_forward():
    cfg = CONFIGS["nano"]
    model = TokenTransformer(cfg).eval()
    text, frames, state = cfg.fake_inputs(batch=1)
    extra = torch.randint(0, cfg.vocab_size, (1, 5))
    with torch.inference_mode():
        prefix = model.prefix_embeddings(text, frames, state)
        full, _ = model(torch.cat([prefix, model.embed(extra)], dim=1))
        logits, caches = model(prefix)
        steps = [logits[:, -1]]
        for i in range(extra.shape[1]):
            logits, caches = model(model.embed(extra[:, i:i + 1]), prefix.shape[1] + i, caches)
            steps.append(logits[:, -1])
    expected = full[:, prefix.shape[1] - 1:]
    torch.testing.assert_close(torch.stack(steps, dim=1), expected, atol=1e-4, rtol=1e-4)


def test_sequence_longer_than_max_is_an_error():
    cfg = CONFIGS["nano"]
    model = TokenTransformer(cfg)
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        model(torch.zeros(1, cfg.max_seq_len + 1, cfg.d_model))


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="divisible"):
        type(CONFIGS["nano"])(d_model=65, n_heads=2)


def test_film_lets_the_instruction_change_the_image_tokens():
    cfg = type(CONFIGS["nano"])(**{**CONFIGS["nano"].to_dict(), "film": True})
    model = TokenTransformer(cfg).eval()
    text, frames, state = cfg.fake_inputs(batch=1)
    other = (text + 1) % cfg.vocab_size
    T, P = text.shape[1], cfg.n_patches

    def image_tokens(t):
        with torch.inference_mode():
            return model.prefix_embeddings(t, frames, state)[:, T:T + P]

    # Zero-initialised FiLM: training starts from the unconditioned encoder ...
    torch.testing.assert_close(image_tokens(text), image_tokens(other), rtol=0, atol=0)
    torch.nn.init.normal_(model.patches.film.weight, std=0.5)
    # ... and once trained, the words modulate what the cameras' tokens say.
    assert (image_tokens(text) - image_tokens(other)).abs().max() > 1e-3
