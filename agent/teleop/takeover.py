"""Human in the loop: `agent run --takeover DEVICE`, the policy acts until the operator takes
over, and acts again once they hand back (HG-DAgger's data collection, Kelly et al. 2019).

`TakeoverAgent` wraps the run's agent (a chunk broker) the way `agent.action_noise.NoisyAgent`
does, so the control loop stays as it is: each tick it reads the device (events and the
operator's action), decides who acts, and says so in `human` for the frame's
`intervention` label. On handback the wrapped agent is reset: the chunk it was executing
was planned before the takeover, from a scene the operator has since changed, and running
its remaining steps would jerk the arm back towards that old plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.episode_buffer import EpisodeBuffer
from agent.teleop.base import TeleopDevice
from envs.types import Observation


@dataclass
class TakeoverStats:
    """How control changed hands during a run (for the run's summary)."""

    takeovers: int = 0
    human_steps: int = 0
    policy_steps: int = 0
    # ("takeover" or "handback", episode, step) of every change of hands, in order
    switches: list[tuple[str, int, int]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        total = self.human_steps + self.policy_steps
        return {"takeovers": self.takeovers, "human_steps": self.human_steps,
                "policy_steps": self.policy_steps,
                "human_share": round(self.human_steps / total, 4) if total else 0.0}


class TakeoverAgent:
    """An agent whose action is the policy's until a `takeover` event, then the device's
    until a `handback` event. Each episode starts with the policy in control.

    Attributes:
        human: who produced the latest `act`'s action (True: the operator through the device).
        stop_requested: the operator sent `stop` (the caller ends the run after this episode).
    """

    def __init__(self, agent: Any, device: TeleopDevice) -> None:
        self.agent, self.device = agent, device
        self.human = False
        self.stop_requested = False
        self.takeover = TakeoverStats()
        self._in_control = False  # the operator holds control now (persists between ticks)
        self._episode, self._step = -1, 0

    @property
    def stats(self) -> Any:
        """The wrapped agent's execution stats (agent run's summary reads them)."""
        return self.agent.stats

    def reset(self) -> None:
        self.agent.reset()
        self.human = self._in_control = False
        self._episode, self._step = self._episode + 1, 0

    def act(self, obs: Observation) -> np.ndarray:
        # The device is read every tick, while the policy acts too: its events (takeover,
        # stop) must be seen the tick they happen.
        cmd = self.device.read(obs)
        if not self._in_control and "takeover" in cmd.events:
            self._in_control = True
            self.takeover.takeovers += 1
            self.takeover.switches.append(("takeover", self._episode, self._step))
        elif self._in_control and "handback" in cmd.events:
            self._in_control = False
            self.agent.reset()  # drop the chunk planned before the takeover (module doc)
            self.takeover.switches.append(("handback", self._episode, self._step))
        if "stop" in cmd.events:
            self.stop_requested = True
        self.human = self._in_control
        self._step += 1
        if self.human:
            self.takeover.human_steps += 1
            return np.asarray(cmd.action, dtype=np.float32)
        self.takeover.policy_steps += 1
        return self.agent.act(obs)

    def close(self) -> None:
        self.agent.close()
        self.device.close()


class InterventionLog:
    """`agent run --takeover DEVICE --dataset OUT`: each episode of the run becomes one
    committed episode of a LeRobot dataset whose frames say who acted
    (dataset.layout.INTERVENTION_KEY), with the actions as the env applied them.

    Per episode: `start()`, `add` as the loop's on_step hook, `commit(result)`.
    """

    def __init__(self, out: Path, env: Any, agent: TakeoverAgent,
                 recording: dict[str, Any]) -> None:
        from agent.recorder import dataset_spec
        from dataset.video import VideoConfig
        from dataset.writer import DatasetWriter

        spec = dataset_spec(env, VideoConfig(), intervention=True)
        self.writer = DatasetWriter.create(out, spec, recording=recording)
        self.agent = agent
        self._buffer: EpisodeBuffer | None = None

    def start(self) -> None:
        self._buffer = EpisodeBuffer(self.writer.spec, self.writer.staging)

    def add(self, obs: Observation, applied: np.ndarray, info: dict) -> None:
        assert self._buffer is not None, "start() before the episode"
        self._buffer.add(obs, applied, info, intervention=self.agent.human)

    def commit(self, result: Any) -> int:
        """Commit the episode (an agent.runtime.EpisodeResult); returns its index."""
        assert self._buffer is not None, "start() before the episode"
        record = self._buffer.record(result.seed, result.success, result.failure)
        self._buffer = None
        return self.writer.commit(record)

    def close(self) -> None:
        self.writer.close()
