"""Torch vs. ONNX parity on recorded observations: the report `agent export` writes.

For every observation both engines decode a chunk greedily on their own (the share of
identical action tokens is what decides whether the robot would move the same), then the
logits are compared step by step along the torch sequence (teacher forcing, so one early
disagreement does not make every later logit incomparable). The same is repeated with the
first steps forced, the way real-time chunking calls the policy. Latency per chunk is timed
for each engine on the same inputs.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from envs.types import Observation
from policies.inference.torch_engine import DecodeEngine
from policies.model.blocks import Schedule
from policies.model.token_policy import TokenPolicy

TOKEN_SHARE_MIN = 0.99  # below this the export is reported as not at parity
LOGIT_DIFF_MAX = 1e-3  # float32 graph vs eager: differences are rounding, far below this


def dataset_observations(data: Path, n: int, cameras: tuple[str, ...]) -> list[Observation]:
    """n observations spread over the first episodes of a LeRobot dataset."""
    from dataset.reader import LeRobotDatasetReader

    ds = LeRobotDatasetReader(data)
    out: list[Observation] = []
    episodes = min(ds.num_episodes, max(1, n // 8))  # ~8 observations per episode
    for k in range(episodes):
        ep = ds.episode(k)
        frames = {c: ds.frames(k, c) for c in cameras}
        for t in np.linspace(0, ep.length - 1, -(-n // episodes)).astype(int):
            out.append(Observation({c: f[t] for c, f in frames.items()}, ep.state[t], ep.task,
                                   robot=ds.info.get("robot_type")))
    return out[:n]


def _inputs(policy: TokenPolicy, obs: Observation) -> tuple[np.ndarray, ...]:
    frames = np.stack([obs.images[c] for c in policy.config.cameras])[None]
    return policy.text_ids([obs.instruction]), frames, policy.observation_state_ids(obs)


def _logit_diff(a: DecodeEngine, b: DecodeEngine, inputs: tuple, fed: np.ndarray) -> float:
    """Largest logit difference along the sequence `fed` (B, L), one token per step."""
    la, ca = a.prefill(*inputs)
    lb, cb = b.prefill(*inputs)
    worst = float(np.abs(la - lb).max())
    ids = np.concatenate([fed, fed[:, -1:]], axis=1)  # the loop feeds all but the last
    for i in range(ids.shape[1] - 1):
        la, ca = a.step(ids[:, i:i + 1], ca)
        lb, cb = b.step(ids[:, i:i + 1], cb)
        worst = max(worst, float(np.abs(la - lb).max()))
    return worst


def _timed(engine: DecodeEngine, inputs: tuple, schedule: Schedule) -> tuple[np.ndarray, float]:
    s = schedule
    t = time.perf_counter()
    ids = engine.generate(*inputs, s.n, s.lo, s.hi, forced=s.forced, feed=s.feed, echo=s.echo)
    return ids, time.perf_counter() - t


def parity_report(policy: TokenPolicy, reference: DecodeEngine, candidate: DecodeEngine,
                  observations: list[Observation], forced_steps: int = 2) -> dict:
    """Compare `candidate` against `reference` (see module doc); a JSON-ready dict.

    Both engines decode what the policy decodes (policy.decode_schedule: its plan tokens, if
    any, then the action chunk); the greedy rule is argmax, the strictest comparison."""
    H, Da, Dp = policy.config.chunk, policy.config.action_dim, policy.config.plan_dim
    head = Dp + 1 if Dp else 0  # plan ids and begin_actions before the actions
    forced_steps = min(forced_steps, H - 1)
    free = policy.decode_schedule(np.empty((1, 0), np.int64))
    same = same_forced = total = total_forced = 0
    worst = 0.0
    times: dict[str, list[float]] = {reference.describe(): [], candidate.describe(): []}
    _timed(reference, _inputs(policy, observations[0]), free)  # warm-up
    _timed(candidate, _inputs(policy, observations[0]), free)
    for obs in observations:
        inputs = _inputs(policy, obs)
        ids_full, t_ref = _timed(reference, inputs, free)
        ids_new, t_new = _timed(candidate, inputs, free)
        times[reference.describe()].append(t_ref)
        times[candidate.describe()].append(t_new)
        ids_ref, ids_new = free.tokens(ids_full), free.tokens(ids_new)  # echo slots left out
        same, total = same + int((ids_ref == ids_new).sum()), total + ids_ref.size
        worst = max(worst, _logit_diff(reference, candidate, inputs, free.inputs(ids_full)))
        # Real-time chunking's call: the reference's first action steps forced.
        rtc = policy.decode_schedule(ids_ref[:, head:head + forced_steps * Da])
        a, _ = _timed(reference, inputs, rtc)
        b, _ = _timed(candidate, inputs, rtc)
        a, b = rtc.tokens(a), rtc.tokens(b)
        same_forced, total_forced = same_forced + int((a == b).sum()), total_forced + a.size
    share = same / total
    return {
        "observations": len(observations),
        "tokens_compared": total,  # per chunk: plan ids (if any), begin_actions, action ids
        "identical_token_share": round(share, 5),
        "identical_token_share_forced_prefix": round(same_forced / max(1, total_forced), 5),
        "forced_prefix_steps": forced_steps,
        "max_abs_logit_diff": float(f"{worst:.3g}"),
        "latency_ms_per_chunk": {
            name: {"p50": round(float(np.percentile(v, 50)) * 1e3, 2),
                   "p99": round(float(np.percentile(v, 99)) * 1e3, 2)}
            for name, v in times.items()},
        "parity": bool(share >= TOKEN_SHARE_MIN and worst <= LOGIT_DIFF_MAX),
        "thresholds": {"identical_token_share_min": TOKEN_SHARE_MIN,
                       "max_abs_logit_diff": LOGIT_DIFF_MAX},
    }
