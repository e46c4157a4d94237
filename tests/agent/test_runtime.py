import time

import numpy as np

import envs
from agent.runtime import ChunkBroker, run_episode
from agent.timing import StageTimer
from envs.types import ActionChunk, Observation


class CountingPolicy:
    """Returns 3-step chunks whose actions encode (call index, step in chunk)."""

    name = "counting"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls = 0
        self.delay_s = delay_s

    def reset(self) -> None:
        self.calls = 0

    def infer(self, obs: Observation) -> ActionChunk:
        time.sleep(self.delay_s)
        self.calls += 1
        actions = np.zeros((3, 7), np.float32)
        actions[:, 0] = self.calls * 1e-3
        actions[:, 1] = np.arange(3) * 1e-3
        return ActionChunk(actions)


def test_chunk_broker_serves_each_action_once_then_reinfers():
    broker = ChunkBroker(CountingPolicy())
    broker.reset()
    obs = Observation(images={}, state=np.zeros(14, np.float32), instruction="x")
    got = [broker.act(obs)[:2] for _ in range(7)]
    np.testing.assert_allclose(np.array(got) * 1e3, [[1, 0], [1, 1], [1, 2], [2, 0], [2, 1],
                                                     [2, 2], [3, 0]])


def test_run_episode_records_stages_and_applied_actions():
    env = envs.make("mujoco:reach")
    timer, seen = StageTimer(), []
    result = run_episode(env, ChunkBroker(CountingPolicy()), 0, timer,
                         on_step=lambda o, a, i: seen.append(a))
    assert result.steps == len(seen) == env.spec.max_episode_steps  # never reaches: truncated
    assert not result.success
    assert set(timer.summary_ms()) == {"policy", "sim", "render", "total"}
    env.close()


def test_paced_loop_counts_deadline_misses_of_a_slow_policy():
    env = envs.make("mujoco:reach")

    class Slow(CountingPolicy):
        def infer(self, obs):  # 80 ms per call, longer than the 50 ms period
            time.sleep(0.08)
            return super().infer(obs)

    result = run_episode(env, ChunkBroker(Slow()), 0, StageTimer(), rate_hz=20.0)
    # One inference per 3 steps overruns its tick; the other two ticks are on time.
    assert result.deadline_misses >= result.steps // 3 - 1
    assert result.deadline_misses < result.steps
    env.close()
