import numpy as np
import pytest

import envs
from sims.base import CUBE_HALF, PLATE_HALF_HEIGHT, Placement
from sims.tasks import PickPlace, PickPlaceHard, make_task


def _cube_xy(episode):
    return [np.array(p.pos[:2]) for p in episode.placements if p.name.endswith("_cube")]


def test_hard_variant_crowds_every_cube_next_to_another():
    task, easy = PickPlaceHard(), PickPlace()
    gaps_hard, gaps_easy = [], []
    for seed in range(50):
        for t, gaps in ((task, gaps_hard), (easy, gaps_easy)):
            xy = _cube_xy(t.sample(np.random.default_rng(seed)))
            gaps.append(max(min(np.linalg.norm(a - b) for b in xy if b is not a) for a in xy))
    assert max(gaps_hard) <= PickPlaceHard.crowd + 1e-9  # each cube's nearest is within 7 cm
    assert min(gaps_hard) >= PickPlaceHard.cube_clearance + CUBE_HALF * 1.5 - 1e-9  # apart
    assert np.median(gaps_easy) > 2 * PickPlaceHard.crowd  # pick_place spreads them out


def test_pick_place_layouts_unchanged_by_the_crowding_option():
    # pick_place must draw what it drew before the option existed (held-out seeds stay
    # comparable): with crowd None its cubes keep 7.5 cm apart and may be anywhere.
    assert PickPlace.crowd is None and PickPlace.cube_clearance == 0.045
    a = PickPlace().sample(np.random.default_rng(1000000))
    assert a.goal.instruction == "put the blue cube on the yellow plate"  # as drawn before
    np.testing.assert_allclose(a.placements[-1].pos, (0.57586, 0.15609, CUBE_HALF), atol=1e-5)


@pytest.mark.parametrize("offset, easy_ok, hard_ok", [(0.01, True, True), (0.04, True, False)])
def test_hard_variant_needs_the_cube_nearer_the_plate_centre(offset, easy_ok, hard_ok):
    env = envs.make("mujoco:pick_place_hard")
    sim = env.unwrapped.sim
    episode = PickPlaceHard().sample(np.random.default_rng(0))
    goal = episode.goal
    plate = next(p for p in episode.placements if p.name == goal.target)
    on = (plate.pos[0] + offset, plate.pos[1], 2 * PLATE_HALF_HEIGHT + CUBE_HALF)
    others = [p for p in episode.placements if p.name != goal.object]
    # the other cubes and plates far from the goal plate's edge are irrelevant to success
    sim.reset(others + [Placement(goal.object, on, 0.0)])
    assert make_task("pick_place").success(sim, goal) is easy_ok
    assert make_task("pick_place_hard").success(sim, goal) is hard_ok
    env.close()
