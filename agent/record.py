"""Episode videos: every camera side by side, one mp4 per episode, encoded with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

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
        frame = np.concatenate([obs.images[k] for k in sorted(obs.images)], axis=1)
        if not self._opened:
            self._stream.height, self._stream.width = frame.shape[:2]
            self._opened = True
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():  # flush the encoder's delayed frames
            self._container.mux(packet)
        self._container.close()
