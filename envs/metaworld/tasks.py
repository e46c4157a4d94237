"""Meta-World's 50 tasks: names, instructions, difficulty groups and the sets specs name.

Names are Meta-World's without the `-v3` suffix (`metaworld:pick-place` is `pick-place-v3`).
Instructions are the task descriptions LeRobot's Meta-World env says to its policies (SmolVLA's
Meta-World runs): huggingface/lerobot `src/lerobot/envs/metaworld_config.json`,
"TASK_DESCRIPTIONS", lowercased to fit our instruction charset (envs.tabletop.check_instruction).
The difficulty groups are the same file's "DIFFICULTY_TO_TASKS" (easy 28, medium 11, hard 6,
very_hard 5), the split the SmolVLA paper reports Meta-World by. MT10 is Meta-World's own
(`metaworld.env_dict.MT10_V3`).
"""

from __future__ import annotations

import difflib

from envs.errors import UnknownEnvError

MAX_STEPS = 500  # Meta-World's max_path_length, the horizon LeRobot evaluates with

DESCRIPTIONS: dict[str, str] = {
    "assembly": "pick up a nut and place it onto a peg",
    "basketball": "dunk the basketball into the basket",
    "bin-picking": "grasp the puck from one bin and place it into another bin",
    "box-close": "grasp the cover and close the box with it",
    "button-press-topdown": "press a button from the top",
    "button-press-topdown-wall": "bypass a wall and press a button from the top",
    "button-press": "press a button",
    "button-press-wall": "bypass a wall and press a button",
    "coffee-button": "push a button on the coffee machine",
    "coffee-pull": "pull a mug from a coffee machine",
    "coffee-push": "push a mug under a coffee machine",
    "dial-turn": "rotate a dial 180 degrees",
    "disassemble": "pick a nut out of a peg",
    "door-close": "close a door with a revolving joint",
    "door-lock": "lock the door by rotating the lock clockwise",
    "door-open": "open a door with a revolving joint",
    "door-unlock": "unlock the door by rotating the lock counter-clockwise",
    "hand-insert": "insert the gripper into a hole",
    "drawer-close": "push and close a drawer",
    "drawer-open": "open a drawer",
    "faucet-open": "rotate the faucet counter-clockwise",
    "faucet-close": "rotate the faucet clockwise",
    "hammer": "hammer a screw on the wall",
    "handle-press-side": "press a handle down sideways",
    "handle-press": "press a handle down",
    "handle-pull-side": "pull a handle up sideways",
    "handle-pull": "pull a handle up",
    "lever-pull": "pull a lever down 90 degrees",
    "peg-insert-side": "insert a peg sideways",
    "pick-place-wall": "pick a puck, bypass a wall and place the puck",
    "pick-out-of-hole": "pick up a puck from a hole",
    "reach": "reach a goal position",
    "push-back": "push the puck to a goal",
    "push": "push the puck to a goal",
    "pick-place": "pick and place a puck to a goal",
    "plate-slide": "slide a plate into a cabinet",
    "plate-slide-side": "slide a plate into a cabinet sideways",
    "plate-slide-back": "get a plate from the cabinet",
    "plate-slide-back-side": "get a plate from the cabinet sideways",
    "peg-unplug-side": "unplug a peg sideways",
    "soccer": "kick a soccer into the goal",
    "stick-push": "grasp a stick and push a box using the stick",
    "stick-pull": "grasp a stick and pull a box with the stick",
    "push-wall": "bypass a wall and push a puck to a goal",
    "reach-wall": "bypass a wall and reach a goal",
    "shelf-place": "pick and place a puck onto a shelf",
    "sweep-into": "sweep a puck into a hole",
    "sweep": "sweep a puck off the table",
    "window-open": "push and open a window",
    "window-close": "push and close a window",
}
TASKS: tuple[str, ...] = tuple(sorted(DESCRIPTIONS))

DIFFICULTY: dict[str, tuple[str, ...]] = {
    "easy": ("button-press", "button-press-topdown", "button-press-topdown-wall",
             "button-press-wall", "coffee-button", "dial-turn", "door-close", "door-lock",
             "door-open", "door-unlock", "drawer-close", "drawer-open", "faucet-close",
             "faucet-open", "handle-press", "handle-press-side", "handle-pull",
             "handle-pull-side", "lever-pull", "plate-slide", "plate-slide-back",
             "plate-slide-back-side", "plate-slide-side", "reach", "reach-wall", "window-close",
             "window-open", "peg-unplug-side"),
    "medium": ("basketball", "bin-picking", "box-close", "coffee-pull", "coffee-push", "hammer",
               "peg-insert-side", "push-wall", "soccer", "sweep", "sweep-into"),
    "hard": ("assembly", "hand-insert", "pick-out-of-hole", "pick-place", "push", "push-back"),
    "very_hard": ("shelf-place", "disassemble", "stick-pull", "stick-push", "pick-place-wall"),
}
MT10: tuple[str, ...] = ("reach", "push", "pick-place", "door-open", "drawer-open",
                         "drawer-close", "button-press-topdown", "peg-insert-side", "window-open",
                         "window-close")
# A set cycles its tasks over episode seeds: seed s runs task s % n (module envs.metaworld.env).
SETS: dict[str, tuple[str, ...]] = {"mt10": MT10, "mt50": TASKS, **DIFFICULTY}


def difficulty_of(task: str) -> str:
    """The difficulty group a task belongs to."""
    return next(group for group, tasks in DIFFICULTY.items() if task in tasks)


def spec_targets() -> tuple[str, ...]:
    """Every name `metaworld:NAME` accepts: the sets, then the tasks."""
    return tuple(SETS) + TASKS


def tasks_of(target: str) -> tuple[str, ...]:
    """The tasks `metaworld:target` runs (one for a task, the set's for a set).

    Raises:
        UnknownEnvError: a name that is neither a task nor a set, with the closest match.
    """
    if target in SETS:
        return SETS[target]
    if target in DESCRIPTIONS:
        return (target,)
    close = difflib.get_close_matches(target, spec_targets(), n=1, cutoff=0.6)
    hint = f"; did you mean 'metaworld:{close[0]}'?" if close else ""
    raise UnknownEnvError(f"unknown Meta-World task {target!r}{hint} (sets: "
                          f"{', '.join(SETS)}; tasks: {', '.join(TASKS)})")
