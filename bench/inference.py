"""Inference backends and the real-time loop: latency per chunk, loop rate, deadline misses.

    python bench/inference.py [--policy checkpoints/default] [--chunks 40] [--episodes 3]

- latency: per-chunk `TokenPolicy.infer_chunk` on real pick-place observations for every
  backend that is available here (torch CPU 1 thread, ONNX Runtime with each installed
  provider; torch CUDA where there is a GPU), p50/p99 in ms; `onnx_speedup_cpu` is torch-CPU
  p50 / ONNX-CPU p50;
- loop: the full `mujoco:pick_place` loop with rendering (two cameras), paced at the env's
  20 Hz: `--exec sync` on the fastest backend (what `agent run` does by default; the goals are
  its rate and deadline misses), `--exec rtc` on the same backend, and `--exec sync` on
  torch-CPU, each with the achieved rate, deadline misses and per-stage latency;
- `sequential_steps_per_chunk`: decoder calls one chunk takes (prefill, plan tokens, then one
  per action token, or one per block of `action_block` tokens: `decoder_calls`).
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import envs  # noqa: E402
from agent.commands.eval import EVAL_SEED_BASE  # noqa: E402
from agent.execution import make_broker  # noqa: E402
from agent.rollout import rollout_observations  # noqa: E402
from agent.runtime import run_episode  # noqa: E402
from agent.timing import StageTimer  # noqa: E402
from policies.inference.backend import BackendOptions, make_engine  # noqa: E402
from policies.inference.onnx_engine import PROVIDERS, installed_providers  # noqa: E402
from policies.inference.torch_engine import TorchEngine, call_lengths  # noqa: E402
from policies.model.token_policy import TokenPolicy  # noqa: E402


def engines(policy: TokenPolicy, checkpoint: Path) -> dict[str, object]:
    out = {"torch-cpu": TorchEngine(policy.model, device="cpu")}
    for short, ort_name in PROVIDERS.items():
        if ort_name in installed_providers():
            opts = BackendOptions("onnx", checkpoint=checkpoint, provider=short)
            out[f"onnx-{short}"] = make_engine(policy, opts)
    if torch.cuda.is_available():  # moves the model: keep it last
        out["torch-cuda"] = TorchEngine(policy.model, device="cuda")
    return out


def chunk_latency_ms(policy: TokenPolicy, observations: list, repeats: int) -> np.ndarray:
    policy.infer_chunk(observations[0])  # warm-up (and CUDA graph capture)
    out = []
    for i in range(repeats):
        t = time.perf_counter()
        policy.infer_chunk(observations[i % len(observations)])
        out.append((time.perf_counter() - t) * 1e3)
    return np.array(out)


def loop(policy: TokenPolicy, mode: str, episodes: int) -> dict:
    env, timer = envs.make("mujoco:pick_place"), StageTimer()
    broker = make_broker(policy, mode)
    results = [run_episode(env, broker, EVAL_SEED_BASE + s, timer, rate_hz=20.0)
               for s in range(episodes)]
    broker.close()
    env.close()
    steps = sum(r.steps for r in results)
    stats = broker.stats.summary()
    return {"exec": mode, "backend": policy.engine.describe(), "episodes": episodes,
            "success_rate": float(np.mean([r.success for r in results])),
            "loop_hz": round(steps / sum(r.duration_s for r in results), 2),
            "deadline_misses": sum(r.deadline_misses for r in results), "steps": steps,
            "latency_ms": {k: {"p50": v["p50"], "p99": v["p99"]}
                           for k, v in timer.summary_ms().items()},
            "inference_ms": stats["inference_ms"], "held_ticks": stats["held_ticks"]}


def decoder_calls(policy: TokenPolicy) -> int:
    """Sequential decoder calls per chunk without a committed prefix: the prefill, then each
    call DecodeEngine._decode makes (one per plan or action token autoregressively; one per
    block with PolicyConfig.action_block/plan_block, policies.model.blocks)."""
    s = policy.decode_schedule(np.empty((1, 0), np.int64))
    return 1 + len(call_lengths(s.n, s.forced, s.feed, s.echo))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", type=Path, default=Path("checkpoints/default"))
    p.add_argument("--chunks", type=int, default=40)
    p.add_argument("--episodes", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    policy = TokenPolicy.load(args.policy)
    observations = rollout_observations("mujoco:pick_place", 16, EVAL_SEED_BASE)
    latency = {}
    found = engines(policy, args.policy)
    for name, engine in found.items():
        policy.use_engine(engine)
        ms = chunk_latency_ms(policy, observations, args.chunks)
        latency[name] = {"p50": round(float(np.median(ms)), 2),
                         "p99": round(float(np.percentile(ms, 99)), 2),
                         "engine": engine.describe()}
        print(name, latency[name], flush=True)
    best = min(latency, key=lambda k: latency[k]["p50"])
    policy.use_engine(found[best])
    sync = loop(policy, "sync", args.episodes)
    print("loop", sync, flush=True)
    rtc = loop(policy, "rtc", args.episodes)
    print("loop", rtc, flush=True)
    policy.use_engine(found["torch-cpu"])
    sync_torch = loop(policy, "sync", max(1, args.episodes - 1))
    c = policy.config
    n_act = c.chunk * c.action_dim
    print(json.dumps({
        "bench": "inference", "policy": str(args.policy),
        "params_m": round(policy.model.num_params() / 1e6, 3),
        "chunk": c.chunk, "tokens_per_chunk": n_act, "plan_tokens": c.plan_dim,
        "action_block": c.action_block, "plan_block": c.plan_block,
        "sequential_steps_per_chunk": decoder_calls(policy),
        "latency_ms_per_chunk": latency,
        "onnx_speedup_cpu": round(latency["torch-cpu"]["p50"] / latency["onnx-cpu"]["p50"], 2),
        "fastest_backend": best,
        "loop_hz": sync["loop_hz"], "deadline_misses": sync["deadline_misses"],
        "loop": {"sync_fastest": sync, "rtc_fastest": rtc, "sync_torch_cpu": sync_torch},
        "goals": {"onnx_speedup_cpu_min": 1.5, "loop_hz_min": 20.0, "deadline_misses": 0},
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, "
                   f"gpu: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}",
    }))


if __name__ == "__main__":
    main()
