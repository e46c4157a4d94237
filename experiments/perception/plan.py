"""What a plan-token policy believes vs what is true, in closed loop on held-out seeds.

    python experiments/perception/plan.py --policy RUN [--seeds 10] [--first 1000000]
                                          [--env mujoco:pick_place]

At every inference the policy's decoded plan (`TokenPolicy.last_plan`: named cube and plate
relative to the tool, and with `plan_objects` every object first) is compared with the
simulator's truth (policies.model.plan_targets.plan_targets). Per episode: success, mean plan error
of the
named cube and plate offsets in xy (and of every object's entry: vision alone, which tells a
cube not seen from a cube seen but not the one named), and what a failure
looks like at the end: `other_cube_on_plate` when a cube the instruction did not name ended on
the named plate (the policy grounded the wrong cube), else `other`. The last stdout line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

import numpy as np  # noqa: E402
import torch  # noqa: E402

import envs  # noqa: E402
from agent.commands.eval import EVAL_SEED_BASE  # noqa: E402
from agent.runtime import ChunkBroker, run_episode  # noqa: E402
from agent.timing import StageTimer  # noqa: E402
from envs.features import env_state_names, env_state_vector  # noqa: E402
from policies.model.plan_targets import PLAN_GOAL, PLAN_NAMES, plan_targets  # noqa: E402
from policies.model.token_policy import TokenPolicy  # noqa: E402

ON_PLATE_M = 0.03  # a cube whose centre is this close to a plate's in xy is on it
# Tasks whose goal names a cube and a plate (the plan's named entries), with the simulator's
# object poses to compare against.
PICK_PLACE_ENVS = ("mujoco:pick_place", "mujoco:pick_place_hard")


def failure_kind(priv: dict) -> str:
    goal = priv["goal"]
    plate = np.asarray(priv["objects"][goal["target"]]["pos"])[:2]
    for name, obj in priv["objects"].items():
        if name != goal["object"] and name.endswith("_cube") and \
                np.linalg.norm(np.asarray(obj["pos"])[:2] - plate) < ON_PLATE_M:
            return "other_cube_on_plate"
    return "other"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--policy", type=Path, required=True)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first", type=int, default=EVAL_SEED_BASE)
    p.add_argument("--env", default="mujoco:pick_place", choices=PICK_PLACE_ENVS,
                   help="a pick-and-place task: the plan names a cube and a plate")
    args = p.parse_args(argv)
    policy = TokenPolicy.load(args.policy)
    if not policy.config.plan_dim:
        raise SystemExit(f"{args.policy} writes no plan tokens (plan_dim 0)")
    env = envs.make(args.env)
    names = env_state_names(env)
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    infer = policy.infer

    def watched(obs):
        out = infer(obs)
        truth = plan_targets(env_state_vector(obs.privileged, names)[None], obs.state[None],
                             policy.config.state_layout, policy.config.plan_objects)[0]
        seen.append((truth, policy.last_plan[0].copy()))
        return out

    policy.infer = watched  # type: ignore[method-assign]
    episodes = []
    for seed in range(args.first, args.first + args.seeds):
        seen.clear()
        result = run_episode(env, ChunkBroker(policy), seed, StageTimer())
        full = np.abs(np.array([t - b for t, b in seen]))  # (inferences, plan_dim)
        err = full[:, PLAN_GOAL]  # (inferences, 7): named cube, named plate, turn
        objects = full[:, :full.shape[1] - len(PLAN_NAMES)].reshape(len(full), -1, 3)
        episodes.append({
            "seed": seed, "success": result.success, "steps": result.steps,
            "cube_xy_err_mm": round(float(np.linalg.norm(err[:, :2], axis=1).mean()) * 1e3, 1),
            "plate_xy_err_mm": round(float(np.linalg.norm(err[:, 3:5], axis=1).mean()) * 1e3, 1),
            "objects_xy_err_mm": round(float(np.linalg.norm(objects[..., :2], axis=-1).mean())
                                       * 1e3, 1) if objects.size else None,
            "failure": None if result.success else failure_kind(env.unwrapped.privileged()),
        })
        print(json.dumps(episodes[-1]), flush=True)
    env.close()
    fails = [e for e in episodes if not e["success"]]
    kinds = {k: sum(e["failure"] == k for e in fails) for k in ("other_cube_on_plate", "other")}
    summary = {
        "policy": str(args.policy), "env": args.env, "episodes": len(episodes),
        "success_rate": sum(e["success"] for e in episodes) / len(episodes),
        "cube_xy_err_mm_median": float(np.median([e["cube_xy_err_mm"] for e in episodes])),
        "plate_xy_err_mm_median": float(np.median([e["plate_xy_err_mm"] for e in episodes])),
        "objects_xy_err_mm_median": None if episodes[0]["objects_xy_err_mm"] is None else
        float(np.median([e["objects_xy_err_mm"] for e in episodes])),
        "failures": kinds, "torch_threads": torch.get_num_threads()}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
