"""DAgger labels for `agent collect --expert NAME`: the policy acts, an expert labels.

Behaviour cloning is trained on the expert's states; in closed loop the learner's small errors
take it to states the expert never visited, where it has no label and drifts further
(covariate shift). DAgger (Ross, Gordon and Bagnell 2011, "A Reduction of Imitation Learning
and Structured Prediction to No-Regret Online Learning") runs the *learner* and asks the expert
what it would have done in every state the learner reached; training on those labels teaches
the corrections on the learner's own distribution. DART (agent/action_noise.py) approximates
that distribution with noise; DAgger samples it.

`ExpertLabels` wraps two agents (`ChunkBroker`s): each tick it returns the learner's action
(what the env executes, so `action` stays what was applied) and keeps the expert's action for
the same observation as `clean` (recorded as `expert_action`, the column training reads, as for
DART). The expert must act on the present state alone: a scripted expert with a phase carried
between steps would label the learner's states by a path it never took
(policies.scripted.PushScript).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.types import Observation


class ExpertLabels:
    """An agent executing `learner`'s actions and keeping `expert`'s label for each tick."""

    def __init__(self, learner: Any, expert: Any) -> None:
        self.learner, self.expert = learner, expert
        self.clean: np.ndarray | None = None

    def seed(self, episode_seed: int) -> None:
        """Nothing is random here; kept so recorders treat it like NoisyAgent."""

    def reset(self) -> None:
        self.learner.reset()
        self.expert.reset()
        self.clean = None

    def act(self, obs: Observation) -> np.ndarray:
        self.clean = np.array(self.expert.act(obs), dtype=np.float32)  # a copy, not a view
        return np.asarray(self.learner.act(obs), dtype=np.float32)
