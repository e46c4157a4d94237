"""DART-style action noise for `agent collect`: execute perturbed actions, keep the clean one.

Behaviour cloning of an expert drifts in closed loop because the learner never sees how the
expert recovers from small errors (covariate shift). DART (Laskey et al. 2017, "DART: Noise
Injection for Robust Imitation Learning") perturbs the actions executed during collection
while labelling every frame with what the expert wanted, so the demonstrations visit the
states the learner will drift into, with the expert's correction as the label.

`NoisyAgent` wraps the agent (a `ChunkBroker`): each tick it returns the expert's action plus
Gaussian noise on the motion dims and remembers the clean action as `clean`. The env then
clips; the dataset's `action` stays what was applied and `expert_action` is `clean`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.features import ACTION_LAYOUT
from envs.types import Observation

DEFAULT_ROT_PER_POS = 5.0  # rad per m: 0.01 m <-> 0.05 rad, each ~1/5 of the per-step cap
# Mixed into the episode seed so the noise stream is not the env's own stream for that seed.
_NOISE_STREAM = 0xDA27


@dataclass(frozen=True)
class ActionNoise:
    """Standard deviations of the Gaussian noise added to executed actions.

    Attributes:
        pos_std: metres, on each of the 3 delta-position dims.
        rot_std: radians, on each of the 3 delta-rotation dims. The gripper gets none: a
            noisy open/close command would drop the object rather than teach a recovery.
    """

    pos_std: float
    rot_std: float

    def __post_init__(self) -> None:
        for name, v in (("position", self.pos_std), ("rotation", self.rot_std)):
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"action noise {name} std must be a finite number >= 0, "
                                 f"got {v!r}")

    @classmethod
    def parse(cls, text: str) -> ActionNoise:
        """From "POS" or "POS,ROT" (ROT defaults to POS * 5), e.g. "0.01,0.05"."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) not in (1, 2):
            raise ValueError(f"--action-noise takes POS or POS,ROT (metres, radians), got "
                             f"{text!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"--action-noise takes numbers POS or POS,ROT (metres, radians), "
                             f"got {text!r}") from None
        pos = values[0]
        return cls(pos, values[1] if len(values) == 2 else pos * DEFAULT_ROT_PER_POS)

    def to_json(self) -> dict[str, Any]:
        return {"pos_std_m": self.pos_std, "rot_std_rad": self.rot_std, "gripper_std": 0.0,
                "kind": "gaussian (DART)"}

    def sample(self, rng: np.random.Generator, action_dim: int) -> np.ndarray:
        """One noise vector for an action of `action_dim` dims (7 for the tabletop envs)."""
        a = ACTION_LAYOUT
        if action_dim < a.motion.stop:
            raise ValueError(f"action noise needs >= {a.motion.stop} action dims "
                             f"({' '.join(a.names[a.motion])}), got {action_dim}")
        std = np.zeros(action_dim)
        std[a.dpos], std[a.drot] = self.pos_std, self.rot_std
        return rng.normal(0.0, 1.0, action_dim) * std


class NoisyAgent:
    """An agent whose executed action is the wrapped agent's plus `ActionNoise`.

    Call `seed(episode_seed)` before each episode (the noise is then reproducible and the same
    whichever worker records the episode); `clean` is the wrapped agent's action of the
    latest `act`.
    """

    def __init__(self, agent: Any, noise: ActionNoise) -> None:
        self.agent, self.noise = agent, noise
        self.clean: np.ndarray | None = None
        self._rng: np.random.Generator | None = None

    def seed(self, episode_seed: int) -> None:
        self._rng = np.random.default_rng([_NOISE_STREAM, episode_seed])

    def reset(self) -> None:
        self.agent.reset()
        self.clean = None

    def act(self, obs: Observation) -> np.ndarray:
        if self._rng is None:
            raise RuntimeError("NoisyAgent.seed(episode_seed) must be called before an episode")
        clean = np.asarray(self.agent.act(obs), dtype=np.float32)
        self.clean = clean.copy()  # the policy may hand out views of its own buffers
        return clean + self.noise.sample(self._rng, clean.shape[-1]).astype(np.float32)
