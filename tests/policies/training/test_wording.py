"""--text-noise: words outside the objects' names scrambled, the object words kept."""

from __future__ import annotations

import numpy as np
import pytest

from envs.features import POSE_NAMES
from policies.training.config import TrainConfig
from policies.training.wording import add_word_noise, noisy_instruction, object_words

NAMES = tuple(f"{slot}.{p}" for slot in ("goal_object", "goal_target", "red_cube",
                                          "yellow_plate", "blue_ball") for p in POSE_NAMES)
KEEP = object_words([NAMES, None])
SENTENCE = "please put the red cube onto the yellow plate, now"


def test_object_words_come_from_the_object_names_not_the_goal_slots() -> None:
    assert KEEP == {"red", "cube", "yellow", "plate", "blue", "ball"}
    with pytest.raises(ValueError, match="environment state names"):
        object_words([None, ()])


def test_object_words_stay_in_order_and_the_rest_changes() -> None:
    rng = np.random.default_rng(0)
    outs = [noisy_instruction(SENTENCE, KEEP, rng, p=0.6) for _ in range(200)]
    for out in outs:
        kept = [w.strip(",") for w in out.split() if w.strip(",") in KEEP]
        assert kept == ["red", "cube", "yellow", "plate"]
    assert len(set(outs)) > 100  # varied
    others = {w for out in outs for w in out.split()} - set(SENTENCE.split()) - {"plate"}
    assert others and all(w.isalpha() and w.islower() for w in others)  # made-up words
    assert noisy_instruction(SENTENCE, KEEP, rng, p=0.0) == SENTENCE


def test_only_the_share_changes_and_a_noisy_text_too_long_is_left_as_it_was() -> None:
    rng = np.random.default_rng(1)
    texts = [SENTENCE] * 400
    out = add_word_noise(texts, KEEP, 0.25, rng, fits=lambda t: True)
    assert 0.15 < np.mean([o != SENTENCE for o in out]) < 0.3
    assert add_word_noise(texts, KEEP, 0.0, rng, fits=lambda t: True) == texts
    assert add_word_noise(texts, KEEP, 1.0, rng, fits=lambda t: t == SENTENCE) == texts


def test_text_noise_is_a_share() -> None:
    with pytest.raises(ValueError, match="text_noise is a share"):
        TrainConfig(text_noise=1.5)


def test_training_with_text_noise_needs_object_names(tmp_path) -> None:
    from policies.training.train import build_policy, train
    from tests.policies.training.test_train_losses import _demos

    demos = _demos()
    cfg = TrainConfig(model="nano", steps=3, batch_size=4, n_bins=16, chunk=2, execute=1,
                      checkpoint_every=1000, shift_px=0, text_noise=0.5)
    with pytest.raises(ValueError, match="environment state names"):
        train(build_policy(demos, cfg), demos, tmp_path, cfg)
