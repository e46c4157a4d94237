"""Token-policy benchmark: CPU inference latency, training throughput, eval success.

    python bench/policy.py [--policy checkpoints/default] [--episodes 20] [--data DIR]

- inference: per-chunk latency of `TokenPolicy.infer` (torch, CPU, 1 thread) on real env
  observations, and the per-control-step cost (chunk latency / actions executed per chunk);
- training: samples/s of the training step (forward, backward, AdamW) on demonstrations
  (a dataset if --data is given, else a few fresh scripted rollouts), batch 32, 2 threads;
- eval: success rate on held-out seeds (agent eval's) of mujoco:pick_place.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import envs  # noqa: E402
from agent.commands.eval import EVAL_SEED_BASE  # noqa: E402
from agent.rollout import rollout_demos  # noqa: E402
from agent.runtime import ChunkBroker, run_episode  # noqa: E402
from agent.timing import StageTimer  # noqa: E402
from envs.types import Observation  # noqa: E402
from policies.model.token_policy import TokenPolicy  # noqa: E402
from policies.training.data import ChunkSampler, load_demos  # noqa: E402
from policies.training.train import TrainConfig, batch_loss, make_optimizer, random_shift  # noqa: E402


def inference_ms(policy: TokenPolicy, n: int = 50) -> np.ndarray:
    env = envs.make("mujoco:pick_place")
    obs, info = env.reset(seed=EVAL_SEED_BASE)
    o = Observation.from_env(obs, info)
    policy.infer(o)  # warm-up
    out = []
    for _ in range(n):
        t = time.perf_counter()
        policy.infer(o)
        out.append((time.perf_counter() - t) * 1e3)
    env.close()
    return np.array(out)


def train_samples_per_s(policy: TokenPolicy, demos, steps: int = 20, batch: int = 32) -> float:
    torch.set_num_threads(2)
    cfg = TrainConfig(chunk=policy.config.chunk, execute=policy.config.execute)
    model = policy.model.train()
    opt = make_optimizer(model, cfg)
    sampler = ChunkSampler(demos, policy.config.cameras, cfg.chunk)
    gen = torch.Generator().manual_seed(0)
    t0 = None
    for i in range(steps + 3):
        if i == 3:  # the first steps allocate: leave them out
            t0 = time.perf_counter()
        b = sampler.sample(batch)
        frames = random_shift(torch.from_numpy(b.frames), cfg.shift_px, gen)
        loss = batch_loss(policy, model, b, frames, torch.device("cpu"), cfg.label_sigma).action
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    torch.set_num_threads(1)
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", type=Path, default=Path("checkpoints/default"))
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--data", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    policy = TokenPolicy.load(args.policy)
    lat = inference_ms(policy)
    demos = load_demos([args.data]) if args.data else rollout_demos("mujoco:pick_place", range(3))
    sps = train_samples_per_s(TokenPolicy.load(args.policy), demos)
    env = envs.make("mujoco:pick_place")
    results = [run_episode(env, ChunkBroker(policy), EVAL_SEED_BASE + s, StageTimer())
               for s in range(args.episodes)]
    per_step = lat / policy.config.execute
    print(json.dumps({
        "bench": "policy", "policy": str(args.policy),
        "params_m": round(policy.model.num_params() / 1e6, 3),
        "chunk": policy.config.chunk, "execute": policy.config.execute,
        "infer_chunk_ms": {"p50": round(float(np.median(lat)), 2),
                           "p99": round(float(np.percentile(lat, 99)), 2)},
        "infer_per_control_step_ms": {"p50": round(float(np.median(per_step)), 2),
                                      "p99": round(float(np.percentile(per_step, 99)), 2)},
        "train_samples_per_s": round(sps, 1),
        "eval_episodes": args.episodes,
        "eval_success_rate": float(np.mean([r.success for r in results])),
        "device": "cpu", "torch_threads_infer": 1,
    }))


if __name__ == "__main__":
    main()
