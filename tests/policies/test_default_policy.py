"""The shipped default checkpoint (checkpoints/default/) loads and completes an episode."""

import pytest

import envs
from agent.runtime import ChunkBroker, run_episode
from agent.timing import StageTimer
from policies.model.token_policy import TokenPolicy, is_checkpoint
from policies.registry import DEFAULT_CHECKPOINT, default_policy_spec, load_policy

shipped = pytest.mark.skipif(not is_checkpoint(DEFAULT_CHECKPOINT),
                             reason="no default checkpoint in this checkout")


@shipped
def test_default_is_the_shipped_checkpoint():
    assert default_policy_spec() == str(DEFAULT_CHECKPOINT)
    assert isinstance(load_policy(None), TokenPolicy)


@shipped
def test_default_policy_completes_a_held_out_episode():
    env = envs.make("mujoco:pick_place")
    try:
        agent = ChunkBroker(load_policy(None))
        # Held-out seeds (agent eval's range); with ~90% success, three tries all failing
        # would be a regression, not bad luck (p ~ 1e-3).
        results = [run_episode(env, agent, 1_000_000 + s, StageTimer()) for s in range(3)]
    finally:
        env.close()
    assert any(r.success for r in results), [r.failure or r.steps for r in results]
    assert all(r.failure is None for r in results)
