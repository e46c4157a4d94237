"""Table-top tasks: what is on the table, what the instruction asks, when it is done.

A task never touches a physics engine directly; it reads poses through `sims.base.Sim`, so the
same task runs on every backend. Layouts are drawn from the env's seeded generator only, which
makes every episode reproducible from its seed.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sims.base import CUBE_HALF, PLATE_HALF_HEIGHT, PLATE_RADIUS, ObjectSpec, Placement, Sim
from sims.errors import UnknownTaskError

# Where objects may start (m, world frame; the arm's base is at the origin). Chosen inside the
# arm's dexterous region: 0.30 m from the base (closer folds the wrist into the shoulder) to
# 0.62 m (farther nears full extension), +-0.22 m sideways.
TABLE_X = (0.33, 0.60)
TABLE_Y = (-0.22, 0.22)
CUBE_COLORS = ("red", "green", "blue")
PLATE_COLORS = ("yellow", "purple")
START_Z = (0.15, 0.30)  # m: the tool's starting height, clear of the 4 cm cubes
GRIPPER_RELEASED = 0.05  # m: fingers this far apart no longer hold a 4 cm cube.


@dataclass(frozen=True)
class Goal:
    """What this episode asks for: move `object` to `target` (either may be None)."""

    instruction: str
    object: str | None
    target: str


@dataclass(frozen=True)
class Start:
    """Where the tool centre point starts (m, world frame) and its yaw (rad, gripper down)."""

    pos: tuple[float, float, float]
    yaw: float


@dataclass(frozen=True)
class Episode:
    placements: list[Placement]
    goal: Goal
    start: Start | None = None  # None: the robot's home pose


class Task:
    """Base for tasks. Subclasses set the class attributes and implement sample/success."""

    name: str
    max_steps: int
    objects: tuple[ObjectSpec, ...]
    # Variants of one task share a family: same objects, instructions and expert, other
    # difficulty. A policy trained on one member meets another without refusal (agent run).
    family: str | None = None  # None: its own name

    def sample(self, rng: np.random.Generator) -> Episode:
        raise NotImplementedError

    def success(self, sim: Sim, goal: Goal) -> bool:
        raise NotImplementedError

    def reward(self, sim: Sim, goal: Goal) -> float:
        """Sparse: 1 on success, else 0. Learned policies here are trained by imitation."""
        return float(self.success(sim, goal))


def _sample_xy(rng: np.random.Generator, taken: list[tuple[np.ndarray, float]],
               clearance: float, near: Sequence[np.ndarray] = (), within: float = 0.0
               ) -> np.ndarray:
    """A table position at least `clearance` + each taken object's radius from all of them;
    if `near` is given, drawn within `within` of one of those points instead of anywhere."""
    lo, hi = np.array([TABLE_X[0], TABLE_Y[0]]), np.array([TABLE_X[1], TABLE_Y[1]])
    for _ in range(1000):
        if len(near):
            angle = rng.uniform(0, 2 * np.pi)
            xy = near[rng.integers(len(near))] + rng.uniform(0, within) * np.array(
                [np.cos(angle), np.sin(angle)])
            if not ((xy >= lo) & (xy <= hi)).all():
                continue
        else:
            xy = np.array([rng.uniform(*TABLE_X), rng.uniform(*TABLE_Y)])
        if all(np.linalg.norm(xy - p) >= clearance + r for p, r in taken):
            return xy
    raise NoRoomError("could not place objects without overlap; table region too small")


class NoRoomError(RuntimeError):
    """The objects placed so far leave no room for the next one."""


class PickPlace(Task):
    """Three coloured cubes, two plates; put the named cube on the named plate."""

    name = "pick_place"
    max_steps = 200  # 10 s at 20 Hz; the scripted expert needs ~5 s.
    objects = tuple([ObjectSpec(f"{c}_cube", "cube", c) for c in CUBE_COLORS]
                    + [ObjectSpec(f"{c}_plate", "plate", c) for c in PLATE_COLORS])
    # Success: the cube's centre this close to the plate's (m) in xy; 5.5 cm keeps the whole
    # 4 cm cube on the 13 cm plate.
    place_tolerance = PLATE_RADIUS - 0.01
    cube_clearance = 0.045  # m between cubes beyond their radius (7.5 cm centre to centre)
    crowd: float | None = None  # m: cubes after the first this close to an earlier one, if set

    def sample(self, rng: np.random.Generator) -> Episode:
        # A crowded cluster can be wedged in by the plates and the table's edge; then the whole
        # layout is drawn again. Uncrowded layouts always fit at once, so pick_place draws what
        # it always drew.
        for _ in range(100):
            try:
                return self._draw(rng)
            except NoRoomError:
                continue
        raise NoRoomError(f"{self.name}: no layout fitted the table in 100 draws")

    def _draw(self, rng: np.random.Generator) -> Episode:
        taken: list[tuple[np.ndarray, float]] = []
        placements = []
        for c in PLATE_COLORS:
            xy = _sample_xy(rng, taken, PLATE_RADIUS + 0.02)
            taken.append((xy, PLATE_RADIUS))
            placements.append(Placement(f"{c}_plate", (*xy, PLATE_HALF_HEIGHT), 0.0))
        cubes: list[np.ndarray] = []
        for c in CUBE_COLORS:
            near = cubes if self.crowd is not None else []
            xy = _sample_xy(rng, taken, self.cube_clearance, near, self.crowd or 0.0)
            taken.append((xy, CUBE_HALF * 1.5))
            cubes.append(xy)
            yaw = float(rng.uniform(-np.pi / 4, np.pi / 4))
            placements.append(Placement(f"{c}_cube", (*xy, CUBE_HALF), yaw))
        cube = CUBE_COLORS[rng.integers(len(CUBE_COLORS))]
        plate = PLATE_COLORS[rng.integers(len(PLATE_COLORS))]
        goal = Goal(f"put the {cube} cube on the {plate} plate", f"{cube}_cube", f"{plate}_plate")
        # The arm starts anywhere above the table (drawn last: the layouts of earlier seeds stay
        # as they were). From one fixed home pose, where the arm is along its path to the cube
        # gives away the direction, and a cloned policy learns to keep going that way instead
        # of looking (the copycat problem, Wen et al. 2020): issue 5's policies did exactly that.
        start = Start((float(rng.uniform(*TABLE_X)), float(rng.uniform(*TABLE_Y)),
                       float(rng.uniform(*START_Z))), float(rng.uniform(-np.pi / 4, np.pi / 4)))
        return Episode(placements, goal, start)

    def success(self, sim: Sim, goal: Goal) -> bool:
        assert goal.object is not None
        cube, _ = sim.object_pose(goal.object)
        plate, _ = sim.object_pose(goal.target)
        on_plate = np.linalg.norm(cube[:2] - plate[:2]) < self.place_tolerance
        resting = cube[2] < 2 * PLATE_HALF_HEIGHT + CUBE_HALF + 0.005
        return bool(on_plate and resting and sim.gripper_opening() > GRIPPER_RELEASED)


class PickPlaceHard(PickPlace):
    """pick_place with the cubes crowded together and a tighter target.

    Each cube after the first lies 5.8-7.5 cm (centre to centre; pick_place: 7.5 cm or more)
    from an earlier one, so the fingers close 1-3 cm from a neighbour, and the cube must land
    within 2.5 cm of the plate's centre instead of 5.5 cm. Same objects, instructions and
    expert as pick_place, so a pick_place policy runs here unchanged; what it lacks is precision.
    """

    name = "pick_place_hard"
    family = "pick_place"
    place_tolerance = 0.025
    cube_clearance = 0.028
    crowd = 0.075


class Push(Task):
    """Two cubes and a plate; push the named cube onto the plate (no grasping needed)."""

    name = "push"
    max_steps = 200
    objects = (ObjectSpec("red_cube", "cube", "red"), ObjectSpec("blue_cube", "cube", "blue"),
               ObjectSpec("yellow_plate", "plate", "yellow"))

    def sample(self, rng: np.random.Generator) -> Episode:
        taken: list[tuple[np.ndarray, float]] = []
        xy = _sample_xy(rng, taken, PLATE_RADIUS)
        taken.append((xy, PLATE_RADIUS))
        placements = [Placement("yellow_plate", (*xy, PLATE_HALF_HEIGHT), 0.0)]
        for c in ("red", "blue"):
            cxy = _sample_xy(rng, taken, 0.06)
            taken.append((cxy, CUBE_HALF * 1.5))
            placements.append(Placement(f"{c}_cube", (*cxy, CUBE_HALF), 0.0))
        cube = ("red", "blue")[rng.integers(2)]
        return Episode(placements, Goal(f"push the {cube} cube onto the yellow plate",
                                        f"{cube}_cube", "yellow_plate"))

    def success(self, sim: Sim, goal: Goal) -> bool:
        assert goal.object is not None
        cube, _ = sim.object_pose(goal.object)
        plate, _ = sim.object_pose(goal.target)
        return bool(np.linalg.norm(cube[:2] - plate[:2]) < PLATE_RADIUS - 0.02)


class Reach(Task):
    """Three coloured balls hanging in the air; touch the named one with the gripper."""

    name = "reach"
    max_steps = 100
    objects = tuple(ObjectSpec(f"{c}_ball", "marker", c) for c in CUBE_COLORS)
    tolerance = 0.02  # m between the tool centre point and the ball's centre.

    def sample(self, rng: np.random.Generator) -> Episode:
        taken: list[tuple[np.ndarray, float]] = []
        placements = []
        for c in CUBE_COLORS:
            xy = _sample_xy(rng, taken, 0.08)
            taken.append((xy, 0.0))
            placements.append(Placement(f"{c}_ball", (*xy, float(rng.uniform(0.08, 0.3)))))
        ball = CUBE_COLORS[rng.integers(len(CUBE_COLORS))]
        return Episode(placements, Goal(f"reach the {ball} ball", None, f"{ball}_ball"))

    def success(self, sim: Sim, goal: Goal) -> bool:
        tcp, _ = sim.ee_pose()
        ball, _ = sim.object_pose(goal.target)
        return bool(np.linalg.norm(tcp - ball) < self.tolerance)


TASKS: dict[str, type[Task]] = {t.name: t for t in (PickPlace, PickPlaceHard, Push, Reach)}


def make_task(name: str) -> Task:
    """The task called `name`, or an UnknownTaskError listing the known ones."""
    if name not in TASKS:
        close = difflib.get_close_matches(name, TASKS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}{hint}")
    return TASKS[name]()
