"""Meta-World's scripted policy through our `metaworld:` env: success per task, step latency.

    PYTHONPATH=. MUJOCO_GL=egl python experiments/metaworld/scripted_success.py \
        --spec metaworld:mt10 --episodes 100 --out experiments/metaworld/scripted_mt10.json

The same path as `agent eval --env metaworld:mt10 --policy scripted` (envs.make, the runtime's
run_episode, policies.scripted, the same held-out seeds from 1,000,000), with one small camera
(gripperPOV, 32 px) instead of two 128 px ones: success does not depend on the pixels, and
software rendering is most of the step time on this CPU. Also splits a step's wall time into
Meta-World's own step (sim_s), rendering (render_s) and the rest (the pipe round trip and the
client). Last stdout line: JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import envs
from agent.commands.eval import EVAL_SEED_BASE
from agent.runtime import ChunkBroker, run_episode
from agent.timing import StageTimer
from policies.scripted import ScriptedExpert


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", default="metaworld:mt10")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=EVAL_SEED_BASE)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    env = envs.make(args.spec, cameras=("gripperPOV",), image_size=32)
    walls, sims, renders = [], [], []
    inner = env.step

    def timed_step(action: np.ndarray):  # wall time of one client step, worker's own split
        t0 = time.perf_counter()
        out = inner(action)
        walls.append(time.perf_counter() - t0)
        sims.append(env.unwrapped.last_timing.sim_s)
        renders.append(env.unwrapped.last_timing.render_s)
        return out

    env.step = timed_step
    agent, timer, per_task = ChunkBroker(ScriptedExpert()), StageTimer(), {}
    for i in range(args.episodes):
        r = run_episode(env, agent, args.seed + i, timer)
        per_task.setdefault(r.task, []).append((r.seed, r.success, r.steps))
        print(f"seed={r.seed} task={r.task} success={r.success} steps={r.steps}", flush=True)
    env.close()
    ms = lambda xs: round(1000 * float(np.median(xs)), 3)  # noqa: E731
    rest = np.array(walls) - np.array(sims) - np.array(renders)
    result = {
        "spec": args.spec, "episodes": args.episodes, "first_seed": args.seed,
        "success_rate": float(np.mean([s for v in per_task.values() for _, s, _ in v])),
        "per_task": {t: {"episodes": len(v), "successes": sum(s for _, s, _ in v),
                         "failed_seeds": [seed for seed, s, _ in v if not s],
                         "mean_steps": round(float(np.mean([n for *_, n in v])), 1)}
                     for t, v in sorted(per_task.items())},
        "step_ms_p50": {"wall": ms(walls), "metaworld_step": ms(sims), "render_32px": ms(renders),
                        "pipe_and_client": ms(rest)},
        "steps": len(walls),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
