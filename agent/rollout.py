"""Episodes recorded in memory by running a policy through the control loop: demonstrations
for tests and quick experiments, and observations for `agent export`'s parity report."""

from __future__ import annotations

import numpy as np

import envs
from agent.runtime import ChunkBroker, run_episode
from agent.timing import StageTimer
from envs.features import env_state_names, env_state_vector
from envs.types import Observation
from policies.registry import load_policy
from policies.training.data import DemoEpisode


def rollout_demos(spec: str, seeds: range | list[int], policy_name: str = "scripted",
                  successful_only: bool = True) -> list[DemoEpisode]:
    """Record episodes in memory by running a policy (tests and quick experiments), with the
    environment state where the env has ground truth, as `agent collect` records them."""
    env = envs.make(spec)
    names = env_state_names(env)  # as `agent collect` records it; () without ground truth
    u = env.unwrapped  # its arm's name: what a collected dataset's info.json robot_type says
    robot = (getattr(getattr(u, "sim", None), "robot", None) or u.robot).name
    agent, demos = ChunkBroker(load_policy(policy_name)), []
    for seed in seeds:
        rec: dict[str, list] = {"state": [], "action": [], "frames": [], "env": []}

        def hook(obs, applied, info, rec=rec):
            rec["state"].append(obs.state)
            rec["action"].append(applied)
            rec["frames"].append(obs.images)
            rec["task"] = obs.instruction
            if names:
                rec["env"].append(env_state_vector(obs.privileged, names))

        result = run_episode(env, agent, seed, StageTimer(), on_step=hook)
        if successful_only and not result.success:
            continue
        frames = {c: np.stack([f[c] for f in rec["frames"]]) for c in rec["frames"][0]}
        demos.append(DemoEpisode(rec["task"], frames, np.stack(rec["state"]),
                                 np.stack(rec["action"]),
                                 np.stack(rec["env"]) if names else None,
                                 state_layout=env.unwrapped.state_layout,
                                 action_layout=env.unwrapped.action_layout,
                                 robot_type=robot, env_state_names=names or None))
    env.close()
    return demos


def rollout_observations(env_spec: str, n: int, seed: int) -> list[Observation]:
    """n observations from scripted rollouts (when no dataset is given)."""
    demos = rollout_demos(env_spec, range(seed, seed + max(1, n // 16)), successful_only=False)
    out = []
    for d in demos:
        for t in np.linspace(0, len(d.action) - 1, -(-n // len(demos))).astype(int):
            out.append(Observation({c: f[t] for c, f in d.frames.items()}, d.state[t], d.task,
                                   robot=d.robot_type))
    return out[:n]
