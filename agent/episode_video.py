"""Episode videos: every camera side by side, one mp4 per episode, encoded with PyAV.

With `agent run --lookahead K --record DIR` a `PredictionVideo` instead shows the video head's
camera next to the frame the head predicted for that tick (decoded by the VQ tokenizer).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from envs.types import Observation


class EpisodeVideo:
    """Writes the camera views of one episode to `path` (H.264, yuv420p)."""

    def __init__(self, path: Path, fps: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._container = av.open(str(path), mode="w")
        rate = Fraction(fps).limit_denominator(1000)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "23", "preset": "veryfast"}
        self._opened = False

    def add(self, obs: Observation, *_: object) -> None:
        """Append one frame; signature fits `agent.runtime.run_episode(on_step=...)`."""
        self.write(np.concatenate([obs.images[k] for k in sorted(obs.images)], axis=1))

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 frame; every frame must have the first one's size."""
        if not self._opened:
            self._stream.height, self._stream.width = frame.shape[:2]
            self._opened = True
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():  # flush the encoder's delayed frames
            self._container.mux(packet)
        self._container.close()


class PredictionVideo:
    """[real frame | predicted frame] per tick, for one camera.

    A decision at tick d predicts the frame of tick d + horizon; that prediction is shown
    from tick d + horizon on (until the next one is due), so both halves show the same moment,
    and the pane is black until the first prediction is due. `latest()` returns the newest
    prediction (agent.lookahead_agent.Prediction: serial, frame, horizon) or None.
    """

    def __init__(self, path: Path, fps: float, camera: str,
                 latest: Callable[[], Any]) -> None:
        self.video, self.camera, self.latest = EpisodeVideo(path, fps), camera, latest
        self._tick, self._serial = 0, None
        self._due: list[tuple[int, np.ndarray]] = []  # (tick it shows, frame), in order
        self._shown: np.ndarray | None = None

    def add(self, obs: Observation, *_: object) -> None:
        """Append one tick; signature fits `agent.runtime.run_episode(on_step=...)`."""
        real = obs.images[self.camera]
        new = self.latest()
        if new is not None and new.serial != self._serial:
            self._serial = new.serial
            # on_step runs after the tick's decision: the prediction is for this tick + k.
            self._due.append((self._tick + new.horizon, new.frame))
        while self._due and self._due[0][0] <= self._tick:
            self._shown = self._due.pop(0)[1]
        pred = np.zeros_like(real) if self._shown is None else self._shown
        if pred.shape != real.shape:
            raise ValueError(f"predicted frame {pred.shape} and camera {self.camera!r} frame "
                             f"{real.shape} differ in size")
        self.video.write(np.concatenate([real, pred], axis=1))
        self._tick += 1

    def close(self) -> None:
        self.video.close()
