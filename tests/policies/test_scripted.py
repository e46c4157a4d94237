import numpy as np
import pytest

import envs
from agent.runtime import ChunkBroker, run_episode
from agent.timing import StageTimer
from envs.types import Observation
from policies.registry import UnknownPolicyError, load_policy
from policies.scripted import CUBE_HALF, NoPrivilegedStateError, PushScript, ScriptedExpert


@pytest.mark.parametrize("spec, seeds", [("mujoco:pick_place", range(100, 105)),
                                         ("mujoco:pick_place_hard", range(100, 105)),
                                         ("mujoco:push", range(100, 105)),
                                         ("mujoco:reach", range(3))])
def test_scripted_expert_succeeds(spec, seeds):
    env = envs.make(spec)
    agent = ChunkBroker(ScriptedExpert())
    results = [run_episode(env, agent, s, StageTimer()) for s in seeds]
    assert all(r.success for r in results), [(r.seed, r.steps, r.failure) for r in results]
    env.close()


def test_scripted_expert_needs_privileged_state():
    obs = Observation(images={}, state=np.zeros(14, np.float32), instruction="x")
    with pytest.raises(NoPrivilegedStateError, match="privileged"):
        ScriptedExpert().infer(obs)


def test_unknown_policy_name_suggests_closest():
    with pytest.raises(UnknownPolicyError, match="did you mean 'scripted'"):
        load_policy("scripte")


def _push_scene(ee_xy) -> dict:
    """Cube at the origin, plate 20 cm along +x, the gripper at push height, pointing down."""
    return {"objects": {"red_cube": {"pos": np.array([0.0, 0.0, CUBE_HALF])},
                        "yellow_plate": {"pos": np.array([0.2, 0.0, 0.005])}},
            "goal": {"object": "red_cube", "target": "yellow_plate"},
            "ee_pos": np.array([*ee_xy, 0.03]), "ee_quat": np.array([0.0, 1.0, 0.0, 0.0])}


def test_push_script_steers_back_to_the_line_without_lifting():
    script = PushScript()
    # Behind the cube, 2.5 cm to the side of the cube-to-plate line: steer, do not lift.
    action = script.act(_push_scene((-CUBE_HALF - 0.015, 0.025)))
    assert script.phase == "push"
    assert action[1] < 0 and action[0] > 0 and action[2] <= 1e-6  # back to y = 0, on, not up
    # 5 cm off the line: the push is lost; re-approach from behind, up high.
    action = script.act(_push_scene((-CUBE_HALF - 0.015, 0.05)))
    assert script.phase == "behind" and action[2] > 0


def test_push_script_acts_on_the_present_state_alone():
    """A DAgger label must not depend on the path to a state: the same state gets the same
    action from a fresh script and from one that has just pushed or re-approached."""
    states = [_push_scene(xy) for xy in ((-CUBE_HALF - 0.015, 0.0), (-0.1, 0.08), (0.05, 0.0),
                                         (-CUBE_HALF - 0.015, 0.03))]
    for s in states:
        for before in states:
            script = PushScript()
            script.act(before)
            np.testing.assert_array_equal(script.act(s), PushScript().act(s))
