"""Recording by hand without stalls: a take encodes its videos while it is being recorded, and
one background `Saver` commits finished takes, in order, while the next one records.

Why: encoding a whole episode after it ends holds the next one back for as long as the encode
takes (LeRobot users report 30-40 s between episodes). Here every camera of a take has an
encoder thread fed frame by frame (PyAV encodes outside the GIL), so when an episode ends its
videos lack only the encoder's last delayed frames. The finished take goes to the saver's
thread, which flushes them, computes the stats and commits through the dataset's single
`DatasetWriter`; the control loop meanwhile resets the env and starts the next take.

Durability: each commit is atomic (dataset/writer.py). A discarded take (re-record) stops its
encoders and deletes its staged videos; anything left in the staging folder by a crash is wiped
when the writer closes or the dataset is resumed. A crash loses the take in flight and, only
during the moment its commit runs, the take before it.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataset import stats, video
from dataset.layout import DatasetSpec
from dataset.video import VideoConfig
from dataset.writer import DatasetWriter, EpisodeRecord
from envs.features import env_state_vector
from envs.types import Observation

BACKLOG_S = 10.0  # frames an encoder may fall behind (in seconds of video) before add() waits
STATS_FRAMES = 256  # frames kept per camera for image stats (LeRobot samples ~100 of them)


class RecordError(RuntimeError):
    """A take could not be encoded or saved; the message says which and why."""


_END = object()  # end of a queue


class VideoStream:
    """One camera of one take: frames in, an mp4 at `path` encoded on a background thread."""

    def __init__(self, path: Path, fps: int, cfg: VideoConfig, backlog: int) -> None:
        self.path = path
        self.frames = 0
        self.error: BaseException | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=backlog)
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(fps, cfg), daemon=True,
                                        name=f"encode {path.name}")
        self._thread.start()

    def add(self, frame: np.ndarray) -> None:
        """Queue one (H, W, 3) uint8 frame; waits only if the encoder is BACKLOG_S behind."""
        if self.error is not None:
            raise RecordError(f"encoding {self.path.name} failed: {self.error}")
        self._put(frame)

    def finish(self) -> None:
        """No more frames: the encoder flushes and closes the file (see `wait`)."""
        self._put(_END)

    def abort(self) -> None:
        """Stop encoding and delete the file, without waiting."""
        self._abort.set()
        self._put(_END)
        if not self._thread.is_alive():  # it had finished: the file is ours to delete
            self.path.unlink(missing_ok=True)

    def wait(self) -> int:
        """Block until the file is complete; the number of frames in it."""
        self._thread.join()
        if self.error is not None:
            raise RecordError(f"encoding {self.path.name} failed: {self.error}") from self.error
        return self.frames

    def _put(self, item: Any) -> None:
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():  # it died with a full queue: nobody will read
                    if item is _END:
                        return
                    raise RecordError(f"encoding {self.path.name} stopped: "
                                      f"{self.error}") from self.error

    def _items(self) -> Any:
        # On abort the frames still queued are dropped; the encoder is still flushed and closed
        # properly (SVT-AV1 complains when torn down mid-stream), then the file is deleted.
        while (item := self._queue.get()) is not _END and not self._abort.is_set():
            yield item

    def _run(self, fps: int, cfg: VideoConfig) -> None:
        try:
            self.frames = video.encode(self._items(), self.path, fps, cfg)
            if not self._abort.is_set():
                return
        except Exception as e:  # handed to the recording thread by add() and wait()
            if not self._abort.is_set():  # an aborted take with no frames cannot be encoded
                self.error = e
        self.path.unlink(missing_ok=True)


class _Thinned:
    """At most STATS_FRAMES evenly spaced frames of a stream of unknown length: when full,
    every other one is dropped and the stride doubles."""

    def __init__(self) -> None:
        self.kept: list[np.ndarray] = []
        self._stride, self._seen = 1, 0

    def add(self, frame: np.ndarray) -> None:
        if self._seen % self._stride == 0:
            self.kept.append(frame)
            if len(self.kept) > STATS_FRAMES:
                self.kept, self._stride = self.kept[::2], self._stride * 2
        self._seen += 1


@dataclass
class Take:
    """One episode being recorded: per-frame arrays in memory, videos encoding as it goes.

    Build with `Take.start`; `add` one frame per control step; then `finish` (to save) or
    `discard` (re-record: nothing of it stays).
    """

    spec: DatasetSpec
    streams: dict[str, VideoStream]
    started_at: float = field(default_factory=time.monotonic)
    state: list[np.ndarray] = field(default_factory=list)
    action: list[np.ndarray] = field(default_factory=list)
    done: list[bool] = field(default_factory=list)
    env_state: list[np.ndarray] = field(default_factory=list)
    captured: list[float] = field(default_factory=list)
    samples: dict[str, _Thinned] = field(default_factory=dict)

    @classmethod
    def start(cls, spec: DatasetSpec, staging: Path, name: str) -> Take:
        backlog = max(1, round(BACKLOG_S * spec.fps))
        streams = {key: VideoStream(staging / f"{name}-{key}.mp4", spec.fps, spec.video, backlog)
                   for key in spec.video_keys()}
        return cls(spec, streams, samples={key: _Thinned() for key in streams})

    def __len__(self) -> int:
        return len(self.action)

    def add(self, obs: Observation, applied: np.ndarray, success: bool,
            captured_at: float) -> None:
        """One frame: the observation the action was chosen from, the action the env really
        applied (info["applied_action"]), success after it, and when the observation was
        captured (time.monotonic())."""
        for cam, key in zip(self.spec.cameras, self.spec.video_keys(), strict=True):
            self.streams[key].add(obs.images[cam])
            self.samples[key].add(obs.images[cam])
        self.state.append(np.asarray(obs.state, dtype=np.float32))
        if self.spec.env_state_names:
            self.env_state.append(env_state_vector(obs.privileged, self.spec.env_state_names))
        self.action.append(np.array(applied, dtype=np.float32))
        self.done.append(bool(success))
        self.captured.append(captured_at)

    def finish(self, seed: int, task: str, failure: str | None = None) -> FinishedTake:
        """Close the videos (they finish encoding in the background) and hand the take over."""
        for stream in self.streams.values():
            stream.finish()
        return FinishedTake(self, seed, task, failure, ended_at=time.monotonic())

    def discard(self) -> None:
        """Stop the encoders; their threads delete the staged files."""
        for stream in self.streams.values():
            stream.abort()


@dataclass(frozen=True)
class FinishedTake:
    """A take that ended and is to be committed (by the `Saver`)."""

    take: Take
    seed: int
    task: str
    failure: str | None
    ended_at: float

    def record(self) -> EpisodeRecord:
        """Wait for its videos, then the record the writer commits."""
        t = self.take
        videos, image_stats = {}, {}
        for key, stream in t.streams.items():
            n = stream.wait()
            if n != len(t):
                raise RecordError(f"{stream.path.name} holds {n} frames, the take {len(t)}")
            videos[key] = stream.path
            image_stats[key] = stats.image_stats(np.stack(t.samples[key].kept))
        captured = np.asarray(t.captured, dtype=np.float64)
        return EpisodeRecord(
            seed=self.seed, task=self.task, success=bool(t.done[-1]) if t.done else False,
            state=np.stack(t.state), action=np.stack(t.action),
            next_success=np.array(t.done, dtype=bool), videos=videos, image_stats=image_stats,
            failure=self.failure,
            env_state=np.stack(t.env_state) if self.take.spec.env_state_names else None,
            capture_time=(captured - captured[0]) if t.spec.capture_time else None)


@dataclass(frozen=True)
class Saved:
    """A committed take: its episode index and how long after it ended it was committed."""

    index: int
    seed: int
    frames: int
    lag_s: float


class Saver:
    """The dataset's single writer: commits finished takes in order on one background thread.

    After a failed save it commits nothing more (later takes are dropped, their files deleted)
    and `error` says why; the episodes committed before stay intact.
    """

    def __init__(self, writer: DatasetWriter) -> None:
        self.writer = writer
        self.saved: list[Saved] = []
        self.error: BaseException | None = None
        self._queue: queue.Queue[Any] = queue.Queue()  # one item per episode, at most --episodes
        self._thread = threading.Thread(target=self._run, daemon=True, name="saver")
        self._thread.start()

    @property
    def pending(self) -> int:
        """Takes handed over and not yet committed (the one being committed included)."""
        return self._queue.unfinished_tasks

    def submit(self, take: FinishedTake) -> None:
        if self.error is not None:
            take.take.discard()
            raise RecordError(f"saving stopped after an error: {self.error}")
        self._queue.put(take)

    def close(self) -> list[Saved]:
        """Wait for every pending save; what was committed. RecordError if a save failed."""
        self._queue.put(_END)
        self._thread.join()
        if self.error is not None:
            raise RecordError(f"{self.error}") from self.error
        return self.saved

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            try:
                if self.error is not None:
                    item.take.discard()
                    continue
                record = item.record()
                index = self.writer.commit(record)
                self.saved.append(Saved(index, item.seed, record.length,
                                        time.monotonic() - item.ended_at))
            except Exception as e:  # reported by the recording thread (error / close)
                self.error = e
                item.take.discard()
            finally:
                self._queue.task_done()
        self._queue.task_done()
