"""Instruction word noise: training for wording the policy has never seen (`--text-noise`).

A policy trained from scratch on a few sentence shapes reads their exact token sequences. Told
"the yellow tray needs the red box on it", it meets tokens it never saw around the two words
that matter, and the first generalist run lost 26 points on such held-out phrasings
(experiments/generalist/NOTE.md, section 5). Here a share of the training instructions have
their other words replaced by made-up ones, dropped, or padded with extra made-up words, while
the words that name the scene's objects ("red", "cube", "plate": read off the datasets' own
object names, never off any held-out wording) always stay, in order. The policy learns that
unfamiliar words around the object names carry nothing it needs.
"""

from __future__ import annotations

import string

import numpy as np

from policies.training.mixed import objects_of

LETTERS = np.array(list(string.ascii_lowercase))


def object_words(env_state_names: list[tuple[str, ...] | None]) -> frozenset[str]:
    """The words of every object name in the datasets' environment state (red_cube -> red,
    cube; mixed.objects_of: the goal slots are not objects).

    Raises:
        ValueError: no dataset names its objects (recorded without environment state), or
            names that are not environment state names.
    """
    words = {w for names in env_state_names if names for obj in objects_of(names)
             for w in obj.split("_")}
    if not words:
        raise ValueError("--text-noise keeps the words that name the scene's objects, read off "
                         "the datasets' environment state names; these datasets have none")
    return frozenset(words)


def made_up_word(rng: np.random.Generator) -> str:
    return "".join(rng.choice(LETTERS, size=int(rng.integers(2, 8))))


def noisy_instruction(text: str, keep: frozenset[str], rng: np.random.Generator,
                      p: float = 0.3) -> str:
    """`text` with each word outside `keep` replaced by a made-up word or dropped (each with
    probability p / 2), and a made-up word added before any word with probability p / 2. The
    `keep` words stay, in order. Punctuation stays on its word ("plate," keeps its comma)."""
    out: list[str] = []
    for word in text.split():
        if rng.random() < p / 2:
            out.append(made_up_word(rng))
        bare = word.strip(",.'-")
        if bare in keep:
            out.append(word)
            continue
        u = rng.random()
        if u < p / 2:
            out.append(word.replace(bare, made_up_word(rng)) if bare else word)
        elif u >= p:
            out.append(word)  # kept as it was; p / 2 < u < p: dropped
    return " ".join(out) or text


def add_word_noise(instructions: list[str], keep: frozenset[str], share: float,
                   rng: np.random.Generator, fits) -> list[str]:
    """A `share` of `instructions` made noisy; a noisy one that `fits(text)` refuses (longer
    than the text window) is replaced by its original."""
    out = []
    for text in instructions:
        if rng.random() < share:
            noisy = noisy_instruction(text, keep, rng)
            text = noisy if fits(noisy) else text
        out.append(text)
    return out
