"""experiments/async_execution/rtc_emulated.py: the broker's inference lands exactly d ticks
after launch."""

import numpy as np
import pytest

from envs.types import ActionChunk, Observation
from tests.experiments.conftest import load_experiment

H = 8


class StampPolicy:
    """Chunk j (the j-th inference) has action[i, 0] = 100 * j + i: an executed action says
    which chunk it came from and at which index."""

    name = "stamp"

    def __init__(self) -> None:
        self.calls, self.committed = 0, []

    def reset(self) -> None:
        self.calls = 0

    def infer_chunk(self, obs: Observation, committed: np.ndarray | None = None) -> ActionChunk:
        actions = np.zeros((H, 7), np.float32)
        actions[:, 0] = 100 * self.calls + np.arange(H)
        self.calls += 1
        self.committed.append(None if committed is None else committed[:, 0].copy())
        return ActionChunk(actions)

    infer = infer_chunk


def obs() -> Observation:
    return Observation({}, np.zeros(14, np.float32), "x")


@pytest.mark.parametrize("d", [1, 2, 3])
def test_a_chunk_launched_at_t_takes_over_at_t_plus_d_from_its_index_d(d):
    bench = load_experiment("async_execution", "rtc_emulated")
    policy = StampPolicy()
    broker = bench.emulated_broker(policy, "naive", d)
    broker.reset()
    executed = [broker.act(obs())[0] for _ in range(4 * d)]
    # ticks 0..d-1: no chunk yet (hold); chunk 0 launched at 0 arrives at d, runs from index d;
    # chunk 1 is launched at d (right after the harvest) and arrives at 2d, from index d.
    assert executed[:d] == [0.0] * d
    assert executed[d:2 * d] == [0 * 100 + i for i in range(d, 2 * d)]
    assert executed[2 * d:3 * d] == [1 * 100 + i for i in range(d, 2 * d)]


def test_rtc_commits_exactly_the_emulated_delay():
    bench = load_experiment("async_execution", "rtc_emulated")
    policy = StampPolicy()
    broker = bench.emulated_broker(policy, "rtc", 2)
    broker.reset()
    for _ in range(6):
        broker.act(obs())
    # the second inference (launched at tick 2) commits chunk 0's actions for ticks 2, 3
    np.testing.assert_array_equal(policy.committed[1], [2, 3])
    assert all(len(c) == 2 for c in policy.committed[1:])


def test_an_emulated_delay_is_at_least_one_tick():
    bench = load_experiment("async_execution", "rtc_emulated")
    with pytest.raises(ValueError, match="at least 1 tick"):
        bench.emulated_broker(StampPolicy(), "naive", 0)
