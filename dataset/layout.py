"""The LeRobotDataset v3.0 layout: paths, `info.json`, features, and atomic file writes.

    DIR/meta/info.json                                    the commit record (written last)
    DIR/meta/stats.json                                   aggregated stats
    DIR/meta/tasks.parquet                                task string (index) -> task_index
    DIR/meta/episodes/chunk-CCC/file-FFF.parquet          one row per episode
    DIR/data/chunk-CCC/file-FFF.parquet                   one row per frame
    DIR/videos/observation.images.<cam>/chunk-CCC/file-FFF.mp4

As in LeRobot, many episodes share one file; a file holds `episodes_per_file` consecutive
episodes (LeRobot rolls on size instead; any roll is valid, the episodes table says where each
episode lives), and a chunk folder holds `chunks_size` files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataset.errors import DatasetCorruptError
from dataset.video import VideoConfig

CODEBASE_VERSION = "v3.0"  # the LeRobotDataset format version this writes
CHUNKS_SIZE = 1000  # files per chunk folder (LeRobot's DEFAULT_CHUNK_SIZE)
EPISODES_PER_FILE = 50  # see writer.py: bounds the rewrite cost of an append
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
MOTOKEN_PATH = "meta/motoken.json"  # how it was recorded (env, policy); LeRobot ignores it
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
STAGING_DIR = ".staging"  # per-episode videos before commit; wiped on open
TMP_SUFFIX = ".tmp"  # never matches LeRobot's `*/*.parquet` glob
# The per-frame columns every LeRobot dataset has (LeRobot's DEFAULT_FEATURES).
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
SUCCESS_KEY = "next.success"  # per frame: the task was done after this frame's action
EXPERT_ACTION_KEY = "expert_action"  # per frame: the clean policy action (noisy collection)
# Per frame: simulator ground truth of the scene (LeRobot's name for it). Never an input to a
# policy (a real robot has no such sensor); trainers may use it for auxiliary targets.
ENV_STATE_KEY = "observation.environment_state"
# Per frame: True where a human acted (a takeover during `agent run --takeover`), False where
# the policy did. LeRobot's name: its HIL-SERL replay buffer reads `complementary_info.<k>`
# columns into a transition's `complementary_info[k]`, and `is_intervention` is the key its
# actor and learner use for human interventions. bool [1], like `next.success`, which
# LeRobot's loader reads as a bool tensor.
INTERVENTION_KEY = "complementary_info.is_intervention"
# Per frame: when its observation was captured, seconds from the episode's first frame
# (time.monotonic). LeRobot's `timestamp` must stay frame_index / fps (its loader checks it), so
# the clock the frames were really taken on lives here (`agent record`).
# Not under `observation.`: LeRobot feeds every observation.* feature to its policies as a
# state input (experiments/lerobot_compat/NOTE.md); a timestamp is metadata, like HIL-SERL's
# complementary_info.* columns.
CAPTURE_TIME_KEY = "complementary_info.capture_time"


@dataclass(frozen=True)
class FileLocation:
    """Which chunk/file an episode's rows, frames and metadata row live in."""

    chunk_index: int
    file_index: int

    @classmethod
    def of_episode(cls, episode_index: int, episodes_per_file: int) -> FileLocation:
        n = episode_index // episodes_per_file
        return cls(n // CHUNKS_SIZE, n % CHUNKS_SIZE)

    def fmt(self) -> dict[str, int]:
        return {"chunk_index": self.chunk_index, "file_index": self.file_index}


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset records: the part of `info.json` that must match on `--resume`.

    Attributes:
        fps: frames per second (= the env's control rate).
        robot_type: e.g. "mk6".
        cameras: camera names; each becomes `observation.images.<name>` (video).
        image_shape: (height, width, 3) of every camera.
        state_names / action_names: per-dimension names of `observation.state` / `action`.
        video: how frames are encoded.
        expert_action: frames also hold `expert_action`, the clean action the policy wanted
            when noise was added to the executed one (`agent collect --action-noise`). Off by
            default so noise-free datasets keep LeRobot's usual columns.
        env_state_names: per-dimension names of `observation.environment_state`, the
            simulator's object poses (see envs.features.env_state_names); empty where the env has
            no ground truth to give (a real robot over the bridge), and then not recorded.
        intervention: frames also hold INTERVENTION_KEY, who acted (a human takeover or the
            policy; `agent run --takeover DEVICE --dataset OUT`). Off by default.
        capture_time: frames also hold `complementary_info.capture_time`, the real capture time of
            each frame (recordings by hand, whose loop may run below its rate).
    """

    fps: int
    robot_type: str
    cameras: tuple[str, ...]
    image_shape: tuple[int, int, int]
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    video: VideoConfig = VideoConfig()
    expert_action: bool = False
    env_state_names: tuple[str, ...] = ()
    intervention: bool = False
    capture_time: bool = False

    def video_keys(self) -> list[str]:
        return [f"observation.images.{c}" for c in self.cameras]

    def features(self) -> dict[str, dict[str, Any]]:
        """LeRobot's `features` dict (the edge: it goes into info.json as is)."""
        h, w, c = self.image_shape
        feats: dict[str, dict[str, Any]] = {}
        for key in self.video_keys():
            feats[key] = {"dtype": "video", "shape": [h, w, c],
                          "names": ["height", "width", "channels"],
                          "info": self.video.info(h, w, self.fps)}
        feats["observation.state"] = {"dtype": "float32", "shape": [len(self.state_names)],
                                      "names": list(self.state_names)}
        feats["action"] = {"dtype": "float32", "shape": [len(self.action_names)],
                           "names": list(self.action_names)}
        if self.expert_action:
            feats[EXPERT_ACTION_KEY] = {**feats["action"], "names": list(self.action_names)}
        if self.env_state_names:
            feats[ENV_STATE_KEY] = {"dtype": "float32", "shape": [len(self.env_state_names)],
                                    "names": list(self.env_state_names)}
        if self.capture_time:
            feats[CAPTURE_TIME_KEY] = {"dtype": "float32", "shape": [1], "names": None}
        feats[SUCCESS_KEY] = {"dtype": "bool", "shape": [1], "names": None}
        if self.intervention:
            feats[INTERVENTION_KEY] = {"dtype": "bool", "shape": [1], "names": None}
        return {**feats, **DEFAULT_FEATURES}

    def empty_info(self, episodes_per_file: int) -> dict[str, Any]:
        """A fresh `info.json` (same keys as LeRobot's `create_empty_dataset_info`)."""
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": 0,
            "total_frames": 0,
            "total_tasks": 0,
            "chunks_size": CHUNKS_SIZE,
            # LeRobot rolls files on these sizes; we roll on episode count (see writer.py)
            # and record the sizes only so LeRobot's own appenders behave sensibly.
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200,
            "fps": self.fps,
            "splits": {},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "features": self.features(),
            "episodes_per_file": episodes_per_file,
        }


def feature_differences(stored: dict[str, Any], wanted: dict[str, Any],
                        names: tuple[str, str] = ("the dataset", "this recording")) -> list[str]:
    """Human-readable differences between two `features` dicts ([] when they match).

    `names` says what `stored` and `wanted` are in the messages.
    """
    first, second = names
    out = []
    for key in sorted(set(stored) | set(wanted)):
        if key not in wanted:
            out.append(f"{key}: in {first}, not in {second}")
        elif key not in stored:
            out.append(f"{key}: in {second}, not in {first}")
        else:
            a, b = stored[key], wanted[key]
            for field in ("dtype", "shape", "names", "info"):
                if a.get(field) != b.get(field):
                    out.append(f"{key}.{field}: {first} has {a.get(field)!r}, "
                               f"{second} has {b.get(field)!r}")
    return out


# -- atomic writes -----------------------------------------------------------------------------
def tmp_path(path: Path) -> Path:
    return path.with_name(path.name + TMP_SUFFIX)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    # Makes a rename durable: the directory entry itself must reach the disk.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_tmp(data: Any, path: Path) -> Path:
    """Write `data` to `path`'s temp name (fsynced) and return the temp path."""
    tmp = tmp_path(path)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w") as f:
        json.dump(data, f, indent=4, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def atomic_write_json(data: Any, path: Path) -> None:
    os.replace(write_json_tmp(data, path), path)
    fsync_dir(path.parent)


def load_json(path: Path) -> Any:
    """Raises DatasetCorruptError for a file that is not JSON (a truncated write, say)."""
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        raise DatasetCorruptError(f"{path} is not valid JSON ({e}): the file is damaged "
                                  f"(truncated or overwritten)") from e
