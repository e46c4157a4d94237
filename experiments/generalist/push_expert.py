"""Is the push expert a good teacher? Success, length and how often it gives up a push and
re-approaches from above (a discontinuous switch the learner must copy from pixels), clean and
under DART noise, for the first push script ("first", kept below), the one that steers while
pushing ("steer", kept below) and the shipped one, which steers the same way with no phase
carried between steps ("markov", policies.scripted.PushScript).

    MUJOCO_GL=egl .venv/bin/python experiments/generalist/push_expert.py [--episodes 100]
        [--noise 0.01,0.05] [--scripts first,steer,markov]

Seeds from 200000 (scripts/train_generalist.sh's push seeds). Last line JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import envs
from agent.action_noise import ActionNoise
from envs.types import Observation
from policies.scripted import CUBE_HALF, PushScript, _Plan, _servo


class SteerPushScript(PushScript):
    """The steering script of stop 41 (commit aae896e): the shipped script's geometry, but its
    phase carried between steps, so whether a state is pushed or re-approached depends on
    the path to it."""

    def act(self, priv: dict) -> np.ndarray:
        """The stateful act of the scripts before the Markov one: its phase is carried from
        step to step (behind -> lower once within 1 cm of the point behind the cube at 8 cm,
        -> push, -> behind when lost)."""
        cube = priv["objects"][priv["goal"]["object"]]["pos"]
        plate = priv["objects"][priv["goal"]["target"]]["pos"]
        ee = priv["ee_pos"]
        gap = max(float(np.linalg.norm(plate[:2] - cube[:2])), 1e-6)
        direction = (plate[:2] - cube[:2]) / gap
        behind = cube[:2] - direction * (CUBE_HALF + 0.035)
        heading = float(np.arctan2(direction[1], direction[0]))
        yaw = float((heading + np.pi / 4) % (np.pi / 2) - np.pi / 4)
        if self.phase == "push" and self.lost(ee[:2] - cube[:2], direction):
            self.phase = "behind"
        if self.phase == "behind":
            plan = _Plan(np.r_[behind, 0.08], yaw, 1.0)
            if np.linalg.norm(plan.pos - ee) < 0.01:
                self.phase = "lower"
        elif self.phase == "lower":
            plan = _Plan(np.r_[behind, 0.03], yaw, 1.0)
            if abs(ee[2] - 0.03) < 0.008:
                self.phase = "push"
        else:
            step = np.clip(self.push_target(cube[:2], plate[:2], direction) - ee[:2], -0.02, 0.02)
            plan = _Plan(np.r_[ee[:2] + step, 0.03], yaw, 1.0)
        return _servo(priv, plan)


class FirstPushScript(SteerPushScript):
    """The first push script (policies/scripted.py before the steering one), kept here as the
    comparison: the pusher heads for a point by the plate's centre (not just behind the cube),
    and lifts and re-approaches whenever it is 2 cm off the cube-to-plate line."""

    def lost(self, rel: np.ndarray, direction: np.ndarray) -> bool:
        return abs(float(np.cross(direction, rel))) > 0.02

    def push_target(self, cube: np.ndarray, plate: np.ndarray,
                    direction: np.ndarray) -> np.ndarray:
        return plate + direction * 0.01 - direction * (CUBE_HALF + 0.02)


def run(script_cls, seed: int, noise: ActionNoise | None, env) -> dict:
    obs, info = env.reset(seed=seed)
    script, rng = script_cls(), np.random.default_rng([0xDA27, seed])
    phases, done = [], False
    while not done:
        priv = Observation.from_env(obs, info).privileged
        action = script.act(priv).astype(np.float32)
        phases.append(script.phase)
        if noise is not None:
            action = action + noise.sample(rng, action.shape[-1]).astype(np.float32)
        obs, _, term, trunc, info = env.step(action)
        done = term or trunc
    pairs = zip(phases[:-1], phases[1:], strict=True)
    reapproaches = sum(a == "push" and b == "behind" for a, b in pairs)
    return {"success": bool(info["is_success"]), "steps": len(phases),
            "reapproaches": reapproaches, "push_share": phases.count("push") / len(phases)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--noise", default="0.01,0.05")
    p.add_argument("--scripts", default="first,steer,markov")
    args = p.parse_args()
    scripts = {"first": FirstPushScript, "steer": SteerPushScript, "markov": PushScript}
    env = envs.make("mujoco:push")
    out = {}
    for name in args.scripts.split(","):
        for label, noise in (("clean", None), ("dart", ActionNoise.parse(args.noise))):
            rows = [run(scripts[name], 200_000 + i, noise, env) for i in range(args.episodes)]
            out[f"{name}/{label}"] = {
                "success": sum(r["success"] for r in rows), "episodes": len(rows),
                "mean_steps": round(float(np.mean([r["steps"] for r in rows])), 1),
                "reapproaches_mean": round(float(np.mean([r["reapproaches"] for r in rows])), 2),
                "episodes_with_reapproach": sum(r["reapproaches"] > 0 for r in rows),
                "push_share": round(float(np.mean([r["push_share"] for r in rows])), 2)}
            print(name, label, out[f"{name}/{label}"], flush=True)
    env.close()
    print(json.dumps({"noise": args.noise, **out}))


if __name__ == "__main__":
    main()
