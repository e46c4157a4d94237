import numpy as np
import pytest

import envs
from agent.runtime import ChunkBroker, run_episode
from agent.timing import StageTimer
from envs.types import Observation
from policies.registry import UnknownPolicyError, load_policy
from policies.scripted import NoPrivilegedStateError, ScriptedExpert


@pytest.mark.parametrize("spec, seeds", [("mujoco:pick_place", range(100, 105)),
                                         ("mujoco:pick_place_hard", range(100, 105)),
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
