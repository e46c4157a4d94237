"""envs.phrasings: deterministic, valid, honestly split phrasings with the episode's objects."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.errors import InstructionError
from envs.phrasings import SPLITS, WORDINGS, UnknownPhrasingsError, phrase, phrasings
from envs.tabletop import check_instruction
from sims.tasks import TASKS, make_task


def _goals(task: str, n: int = 12) -> list:
    t = make_task(task)
    return [t.sample(np.random.default_rng(s)).goal for s in range(n)]


FAMILY_TASK = {"pick_place": "pick_place", "push": "push", "reach": "reach"}


@pytest.mark.parametrize("family", sorted(WORDINGS))
@pytest.mark.parametrize("split", SPLITS)
def test_every_phrasing_is_a_valid_instruction_naming_the_real_objects(family, split):
    for goal in _goals(FAMILY_TASK[family]):
        options = phrasings(family, split, goal)
        assert len(options) >= 20, (family, split, len(options))
        tc = goal.target.split("_")[0]
        oc = None if goal.object is None else goal.object.split("_")[0]
        for text in options:
            assert check_instruction(text) == text
            assert "{" not in text and "  " not in text and text == text.strip()
            words = text.replace(",", " ").split()
            assert tc in words, text
            if oc is not None:
                assert oc in words and words.index(oc) != words.index(tc), text
            # No colour of another object on the table sneaks in.
            others = {c for c in ("red", "green", "blue", "yellow", "purple")} - {tc, oc}
            assert not others & set(words), text


@pytest.mark.parametrize("family", sorted(WORDINGS))
def test_split_is_disjoint_in_templates_verbs_and_sentences(family):
    train, held = WORDINGS[family]["train"], WORDINGS[family]["heldout"]
    assert not set(train.templates) & set(held.templates)
    assert not set(train.verbs) & set(held.verbs)
    # Shapes, not just strings: a held-out template is no train template with other words.
    def shape(t: str) -> str:
        return t.replace("{v} ", "").replace("please ", "").replace(", please", "")
    assert not {shape(t) for t in train.templates} & {shape(t) for t in held.templates}
    for goal in _goals(FAMILY_TASK[family]):
        assert not set(phrasings(family, "train", goal)) & set(phrasings(family, "heldout", goal))
        assert goal.instruction not in phrasings(family, "heldout", goal)


def test_the_tasks_own_sentence_is_a_train_phrasing():
    for task in ("pick_place", "push", "reach"):
        for goal in _goals(task, 4):
            assert goal.instruction in phrasings(task, "train", goal)


def test_phrase_is_deterministic_per_seed_and_varies_across_seeds():
    goal = _goals("pick_place", 1)[0]
    a = [phrase("pick_place", "train", goal, np.random.default_rng(s)) for s in range(30)]
    b = [phrase("pick_place", "train", goal, np.random.default_rng(s)) for s in range(30)]
    assert a == b
    assert len(set(a)) > 10


def test_unknown_split_or_family_is_refused_with_the_known_names():
    goal = _goals("push", 1)[0]
    with pytest.raises(UnknownPhrasingsError, match="known: \\['train', 'heldout'\\]"):
        phrasings("push", "test", goal)
    with pytest.raises(UnknownPhrasingsError, match="did you mean 'push'"):
        phrasings("pushh", "train", goal)


def test_env_says_a_phrasing_per_episode_with_the_same_layouts():
    plain = envs.make("mujoco:push", image_size=32)
    varied = envs.make("mujoco:push", image_size=32, phrasings="heldout")
    try:
        said = []
        for seed in range(6):
            o1, i1 = plain.reset(seed=seed)
            o2, i2 = varied.reset(seed=seed)
            p1, p2 = i1["privileged"], i2["privileged"]
            assert p1["goal"] == p2["goal"]
            for name, pose in p1["objects"].items():
                np.testing.assert_allclose(pose["pos"], p2["objects"][name]["pos"])
            goal = varied.unwrapped._goal
            assert o2["instruction"] in phrasings("push", "heldout", goal)
            assert o1["instruction"] == goal.instruction
            said.append(o2["instruction"])
        assert said == [varied.reset(seed=s)[0]["instruction"] for s in range(6)]
    finally:
        plain.close()
        varied.close()


def test_env_refuses_unknown_split_and_instruction_with_phrasings():
    with pytest.raises(UnknownPhrasingsError):
        envs.make("mujoco:reach", image_size=32, phrasings="dev")
    with pytest.raises(InstructionError, match="not both"):
        envs.make("mujoco:reach", image_size=32, phrasings="train", instruction="reach it")


def test_every_tabletop_family_has_phrasings():
    assert {t.family or t.name for t in (cls() for cls in TASKS.values())} == set(WORDINGS)
