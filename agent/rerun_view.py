"""`agent run --rerun [WHERE]`: a Rerun view of the run, live or saved.

Per control tick it logs every camera (`camera/NAME`), the action the env actually applied
after clamping (`action`, one series per dimension: what was sent, not what the policy
asked), the robot state (`state`) and, with --lookahead, the frame the video head predicted
(`prediction/CAMERA`). A prediction made at tick d for k steps ahead is logged at tick d + k,
so in the viewer it sits on the timeline beside the real frame it tried to predict.

Timelines: `step` counts ticks over the whole run, `tick` restarts at 0 each episode, and
`seed` names the episode. WHERE is `spawn` (the default: start a local viewer), a path ending
in `.rrd` (save a recording to open later with `rerun FILE.rrd`), or a viewer's gRPC URL
(`rerun+http://HOST:9876/proxy`). rerun-sdk is an optional dependency (`pip install
'motoken[viz]'`), imported only when --rerun is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from envs.types import Observation

INSTALL = "pip install 'motoken[viz]' (or pip install rerun-sdk)"


class RerunError(ValueError):
    """--rerun given something it cannot log to, or rerun-sdk is missing."""


def open_stream(where: str) -> Any:
    """A rerun.RecordingStream sending to `where` (module doc)."""
    try:
        import rerun as rr
    except ImportError:
        raise RerunError(f"--rerun needs the rerun-sdk package: {INSTALL}") from None
    rec = rr.RecordingStream("motoken")
    if where == "spawn":
        rec.spawn()
    elif where.endswith(".rrd"):
        rec.save(where)
    elif "://" in where:
        rec.connect_grpc(where)
    else:
        raise RerunError(f"--rerun takes 'spawn', a FILE.rrd to save to, or a viewer URL like "
                         f"rerun+http://127.0.0.1:9876/proxy; got {where!r}")
    return rec


class RerunView:
    """Logs one run; `start(seed)` before each episode, `add` fits run_episode's on_step.

    latest: with lookahead, returns the newest prediction (agent.lookahead_agent.Prediction:
    serial, frame, horizon) or None; camera: the camera that prediction is of.
    """

    def __init__(self, stream: Any, latest: Callable[[], Any] | None = None,
                 camera: str | None = None) -> None:
        import rerun as rr

        self.rr, self.rec, self.latest, self.camera = rr, stream, latest, camera
        self._step, self._tick, self._seed, self._serial = 0, 0, 0, None

    def start(self, seed: int) -> None:
        self._tick, self._seed = 0, seed

    def add(self, obs: Observation, applied_action: np.ndarray, *_: object) -> None:
        rr, rec = self.rr, self.rec
        self._time()
        if self._tick == 0:
            self.rec.log("instruction", rr.TextLog(obs.instruction))
        for name, image in obs.images.items():
            rec.log(f"camera/{name}", rr.Image(image))
        rec.log("action", rr.Scalars(np.asarray(applied_action, np.float64)))
        rec.log("state", rr.Scalars(np.asarray(obs.state, np.float64)))
        new = self.latest() if self.latest is not None else None
        if new is not None and new.serial != self._serial:
            self._serial = new.serial
            # on_step runs after this tick's decision: the prediction is of tick + horizon.
            rec.set_time("tick", sequence=self._tick + new.horizon)
            rec.set_time("step", sequence=self._step + new.horizon)
            rec.log(f"prediction/{self.camera}", rr.Image(new.frame))
        self._tick += 1
        self._step += 1

    def _time(self) -> None:
        self.rec.set_time("step", sequence=self._step)
        self.rec.set_time("tick", sequence=self._tick)
        self.rec.set_time("seed", sequence=self._seed)

    def close(self) -> None:
        self.rec.flush()
        self.rec.disconnect()
