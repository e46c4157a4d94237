"""Execution modes under an exact, emulated delay of d control ticks (no wall clock).

    python experiments/async_execution/rtc_emulated.py [--policy checkpoints/default] [--seeds 10]
                                                       [--ticks 1,2,4] [--modes naive,ensemble,rtc]

bench/rtc.py measures the modes in real time, where the delay a chunk really has is the
injected one plus the model's own latency, which moves with the machine's load. This experiment
removes the clock: the same AsyncBroker runs, but its inference completes exactly d ticks
after launch (computed at once, handed over on the d-th tick), the simulator advances one
tick per action, and rtc commits exactly d steps. Outcomes depend only on policy, seeds and
d, so the modes compare without noise. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

import numpy as np  # noqa: E402
import torch  # noqa: E402

import envs  # noqa: E402
from agent.commands.eval import EVAL_SEED_BASE  # noqa: E402
from agent.execution import AsyncBroker  # noqa: E402
from agent.runtime import run_episode  # noqa: E402
from agent.timing import StageTimer  # noqa: E402
from policies.inference.backend import BackendOptions, make_engine  # noqa: E402
from policies.model.token_policy import TokenPolicy  # noqa: E402


class TickFuture:
    """A finished computation that reports done() only once `ticks` control ticks passed."""

    def __init__(self, broker: AsyncBroker, ticks: int, value) -> None:
        self._broker, self._ready_at, self._value = broker, broker.tick + ticks, value

    def done(self) -> bool:
        return self._broker.tick >= self._ready_at

    def result(self):
        return self._value


class TickPool:
    """Stands in for AsyncBroker's thread pool: runs the job now, releases it d ticks later."""

    def __init__(self, ticks: int) -> None:
        self.broker: AsyncBroker | None = None  # set once the broker that uses it exists
        self._ticks = ticks

    def submit(self, fn, *args) -> TickFuture:
        return TickFuture(self.broker, self._ticks, fn(*args))

    def shutdown(self, wait: bool = True) -> None:
        pass


def emulated_broker(policy, mode: str, ticks: int) -> AsyncBroker:
    """AsyncBroker whose inferences take exactly `ticks` ticks (rtc commits that many)."""
    if ticks < 1:
        raise ValueError(f"an emulated delay is at least 1 tick, got {ticks}")
    pool = TickPool(ticks)
    broker = AsyncBroker(policy, mode, executor=pool)  # type: ignore[arg-type]
    pool.broker = broker
    broker.expected_delay_ticks = lambda: ticks  # type: ignore[method-assign]
    return broker


def run_cell(env, policy: TokenPolicy, mode: str, ticks: int, seeds: list[int]) -> dict:
    broker = emulated_broker(policy, mode, ticks)
    results = [run_episode(env, broker, s, StageTimer()) for s in seeds]
    stats = broker.stats.summary()
    boundary = stats["jerk"]["boundary"] or {"mean": 0.0}
    return {"episodes": len(seeds), "success_rate": float(np.mean([r.success for r in results])),
            "jerk": boundary["mean"], "mean_steps": float(np.mean([r.steps for r in results])),
            "held_share": round(stats["held_ticks"] / sum(r.steps for r in results), 3),
            "failed_seeds": [r.seed for r in results if not r.success]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", type=Path, default=Path("checkpoints/default"))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--ticks", default="1,2,4", help="emulated delays, in 50 ms control ticks")
    p.add_argument("--modes", default="naive,ensemble,rtc")
    p.add_argument("--backend", default="onnx")
    args = p.parse_args()
    torch.set_num_threads(1)
    policy = TokenPolicy.load(args.policy)
    backend = make_engine(policy, BackendOptions(args.backend, checkpoint=args.policy)).describe()
    seeds = [EVAL_SEED_BASE + i for i in range(args.seeds)]
    ticks = [int(t) for t in args.ticks.split(",")]
    env, modes, start = envs.make("mujoco:pick_place"), {}, time.monotonic()
    for mode in args.modes.split(","):
        modes[mode] = {}
        for d in ticks:
            modes[mode][str(d)] = run_cell(env, policy, mode, d, seeds)
            print(mode, d, modes[mode][str(d)], flush=True)
    env.close()
    print(json.dumps({"bench": "rtc_emulated", "policy": str(args.policy), "backend": backend,
                      "seeds": args.seeds, "first_seed": EVAL_SEED_BASE, "tick_ms": 50,
                      "modes": modes, "wall_s": round(time.monotonic() - start, 1)}))


if __name__ == "__main__":
    main()
