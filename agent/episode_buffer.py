"""One episode's frames, gathered by a control loop's `on_step` hook, made into an
`EpisodeRecord` for `dataset.writer.DatasetWriter` (videos encoded into its staging folder).

`agent collect` builds its records in its recorder workers (agent/recorder.py); this is the
same gathering for loops that run in the main process, one episode at a time: `agent run
--takeover ... --dataset` and leader-arm recordings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dataset import stats, video
from dataset.layout import DatasetSpec
from dataset.writer import EpisodeRecord
from envs.features import env_state_vector
from envs.types import Observation


class EpisodeBuffer:
    """Frames of one episode in the order the loop stepped them (see `add`)."""

    def __init__(self, spec: DatasetSpec, staging: Path) -> None:
        self.spec, self.staging = spec, staging
        self.frames: dict[str, list[np.ndarray]] = {c: [] for c in spec.cameras}
        self.state: list[np.ndarray] = []
        self.action: list[np.ndarray] = []
        self.done: list[bool] = []
        self.env_state: list[np.ndarray] = []
        self.intervention: list[bool] = []
        self.task: str | None = None

    def __len__(self) -> int:
        return len(self.action)

    def add(self, obs: Observation, applied: np.ndarray, info: dict[str, Any],
            intervention: bool | None = None) -> None:
        """One frame: the observation the action was chosen from, the action the env applied
        (after its clipping), the step's info; `intervention` (who acted) where the spec
        records it."""
        if (intervention is None) == self.spec.intervention:
            raise ValueError(f"the dataset {'records' if self.spec.intervention else 'has no'} "
                             f"intervention column; got intervention={intervention!r}")
        for cam in self.frames:
            self.frames[cam].append(obs.images[cam])
        self.state.append(np.asarray(obs.state, dtype=np.float32))
        if self.spec.env_state_names:
            self.env_state.append(env_state_vector(obs.privileged, self.spec.env_state_names))
        self.action.append(np.asarray(applied, dtype=np.float32).copy())
        self.done.append(bool(info.get("is_success", False)))
        if intervention is not None:
            self.intervention.append(bool(intervention))
        if self.task is None:
            self.task = obs.instruction

    def record(self, seed: int, success: bool, failure: str | None = None) -> EpisodeRecord:
        """The episode as a record: its videos are encoded into the staging folder now."""
        if not self.action:
            raise ValueError(f"episode seed={seed} has no frames to record")
        videos, image_stats = {}, {}
        for cam, key in zip(self.spec.cameras, self.spec.video_keys(), strict=True):
            stack = np.stack(self.frames[cam])
            path = self.staging / f"seed{seed}-{key}.mp4"
            video.encode(stack, path, self.spec.fps, self.spec.video)
            videos[key], image_stats[key] = path, stats.image_stats(stack)
        assert self.task is not None
        return EpisodeRecord(
            seed=seed, task=self.task, success=success, state=np.stack(self.state),
            action=np.stack(self.action), next_success=np.array(self.done, dtype=bool),
            videos=videos, image_stats=image_stats, failure=failure,
            env_state=np.stack(self.env_state) if self.spec.env_state_names else None,
            intervention=(np.array(self.intervention, dtype=bool) if self.spec.intervention
                          else None))
