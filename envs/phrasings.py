"""Instructions in the user's words: many phrasings of one table-top goal, split for honesty.

Each task family (pick_place, push, reach) has sentence shapes (templates) and verb synonyms
in two disjoint sets: TRAIN phrasings are what `agent collect --phrasings train` records, and
HELD-OUT phrasings (`agent eval --phrasings heldout`) use templates and verbs never seen in
training, so an evaluation on them measures understanding of new wording, not recall. Noun
synonyms ("block", "dish") are shared; held-out adds nouns of its own ("box", "tray"). The
colour and object slots are always the episode's real objects (`Goal.object`, `Goal.target`),
so every phrasing asks for the same thing as the task's own sentence.

Every phrasing passes `envs.tabletop.check_instruction` (lowercase letters, digits, " ,.'-"),
which is why there is no "?" or "->" in them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache

import numpy as np

from envs.errors import InstructionError
from sims.tasks import Goal, make_task

SPLITS = ("train", "heldout")


class UnknownPhrasingsError(InstructionError):
    """An unknown phrasing split or task family."""


@dataclass(frozen=True)
class Wording:
    """One split's sentence shapes and words for one family.

    Templates use {v} (verb), {oc} {on} (the object's colour and noun), {tc} {tn} (the
    target's); a template without {v} says the goal without a verb.
    """

    templates: tuple[str, ...]
    verbs: tuple[str, ...]
    nouns: dict[str, tuple[str, ...]]  # object kind (cube, plate, ball) -> synonyms


_CUBE_TRAIN, _PLATE_TRAIN = ("cube", "block"), ("plate", "dish")
_CUBE_HELD, _PLATE_HELD = ("cube", "block", "box"), ("plate", "dish", "tray")

WORDINGS: dict[str, dict[str, Wording]] = {
    "pick_place": {
        "train": Wording(
            templates=(
                "{v} the {oc} {on} on the {tc} {tn}",
                "{v} the {oc} {on} onto the {tc} {tn}",
                "please {v} the {oc} {on} on the {tc} {tn}",
                "{v} the {oc} {on} on top of the {tc} {tn}",
                "pick up the {oc} {on} and {v} it on the {tc} {tn}",
                "can you {v} the {oc} {on} onto the {tc} {tn}",
                "the {oc} {on} goes on the {tc} {tn}",
                "{oc} {on} on {tc} {tn}",
                "onto the {tc} {tn}, {v} the {oc} {on}",
            ),
            verbs=("put", "place", "set", "move"),
            nouns={"cube": _CUBE_TRAIN, "plate": _PLATE_TRAIN}),
        "heldout": Wording(
            templates=(
                "could you {v} the {oc} {on} to the {tc} {tn}",
                "{oc} {on} to the {tc} {tn}, please",
                "grab the {oc} {on} and {v} it down on the {tc} {tn}",
                "i want the {oc} {on} on the {tc} {tn}",
                "the {tc} {tn} needs the {oc} {on} on it",
                "{v} the {oc} {on} over to the {tc} {tn}",
                "on the {tc} {tn}, {v} the {oc} {on}",
            ),
            verbs=("drop", "bring", "transfer", "lay"),
            nouns={"cube": _CUBE_HELD, "plate": _PLATE_HELD}),
    },
    "push": {
        "train": Wording(
            templates=(
                "{v} the {oc} {on} onto the {tc} {tn}",
                "{v} the {oc} {on} to the {tc} {tn}",
                "please {v} the {oc} {on} onto the {tc} {tn}",
                "{v} the {oc} {on} until it is on the {tc} {tn}",
                "without lifting it, {v} the {oc} {on} onto the {tc} {tn}",
                "can you {v} the {oc} {on} over to the {tc} {tn}",
                "{oc} {on} onto {tc} {tn}",
            ),
            verbs=("push", "slide", "shove"),
            nouns={"cube": _CUBE_TRAIN, "plate": _PLATE_TRAIN}),
        "heldout": Wording(
            templates=(
                "could you {v} the {oc} {on} onto the {tc} {tn}",
                "{v} the {oc} {on} across the table to the {tc} {tn}",
                "the {oc} {on} should end up on the {tc} {tn}",
                "{oc} {on} to the {tc} {tn}, please",
                "keep it on the table and {v} the {oc} {on} onto the {tc} {tn}",
            ),
            verbs=("nudge", "shift", "scoot"),
            nouns={"cube": _CUBE_HELD, "plate": _PLATE_HELD}),
    },
    "reach": {
        "train": Wording(
            templates=(
                "{v} the {tc} {tn}",
                "please {v} the {tc} {tn}",
                "{v} the {tc} {tn} with the gripper",
                "can you {v} the {tc} {tn}",
                "{tc} {tn}",
            ),
            verbs=("reach", "touch", "go to"),
            nouns={"ball": ("ball", "sphere")}),
        "heldout": Wording(
            templates=(
                "could you {v} the {tc} {tn}",
                "move your hand to the {tc} {tn}",
                "i want the gripper at the {tc} {tn}",
                "{v} the {tc} {tn} and stay there",
                "the {tc} {tn} is where the gripper should be",
            ),
            verbs=("tap", "get to", "head for"),
            nouns={"ball": ("ball", "sphere", "orb")}),
    },
}


def _split_name(name: str) -> tuple[str, str]:
    """("red", "cube") from an object name such as "red_cube"."""
    colour, _, kind = name.partition("_")
    return colour, kind


def wording(family: str, split: str) -> Wording:
    """The templates and words of `family` in `split`.

    Raises:
        UnknownPhrasingsError: an unknown split or a family without phrasings.
    """
    if split not in SPLITS:
        raise UnknownPhrasingsError(f"unknown phrasing split {split!r}; known: {list(SPLITS)}")
    if family not in WORDINGS:
        close = difflib.get_close_matches(family, WORDINGS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownPhrasingsError(f"no phrasings for task family {family!r}; families with "
                                    f"phrasings: {sorted(WORDINGS)}{hint}")
    return WORDINGS[family][split]


def has_phrasings(family: str) -> bool:
    return family in WORDINGS


@cache
def _phrasings(family: str, split: str, obj: str | None, target: str) -> tuple[str, ...]:
    w = wording(family, split)
    tc, tkind = _split_name(target)
    oc, okind = _split_name(obj) if obj is not None else ("", "")
    out: list[str] = []
    for template in w.templates:
        for v in (w.verbs if "{v}" in template else ("",)):
            for on in (w.nouns[okind] if "{on}" in template else ("",)):
                for tn in (w.nouns[tkind] if "{tn}" in template else ("",)):
                    out.append(template.format(v=v, oc=oc, on=on, tc=tc, tn=tn))
    return tuple(dict.fromkeys(out))  # unique, in a fixed order


def phrasings(family: str, split: str, goal: Goal) -> tuple[str, ...]:
    """Every phrasing of `goal` in `split`, in a fixed order.

    Raises:
        UnknownPhrasingsError: an unknown split or a family without phrasings.
    """
    return _phrasings(family, split, goal.object, goal.target)


def phrase(family: str, split: str, goal: Goal, rng: np.random.Generator) -> str:
    """One phrasing of `goal` drawn with `rng` (the episode's seeded generator)."""
    options = phrasings(family, split, goal)
    return options[int(rng.integers(len(options)))]


def task_phrasings(task: str, split: str) -> tuple[str, ...]:
    """Every phrasing of every goal `task` (a sims.tasks name) can ask for in `split`: what a
    policy's text window must hold before a run with that split starts.

    Raises:
        UnknownPhrasingsError: an unknown split or a family without phrasings.
        UnknownTaskError: an unknown task.
    """
    t = make_task(task)
    family = t.family or t.name
    kinds: dict[str, list[str]] = {}
    for o in t.objects:
        kinds.setdefault(o.kind, []).append(o.name)
    # pick_place and push move a cube to a plate; reach names a marker (ball) only.
    goals = ([(None, m) for m in kinds.get("marker", [])] if "marker" in kinds else
             [(c, p) for c in kinds.get("cube", []) for p in kinds.get("plate", [])])
    out = (p for obj, target in goals for p in _phrasings(family, split, obj, target))
    return tuple(dict.fromkeys(out))
