"""`LeRobotDatasetReader`: per-episode arrays and decoded frames from a v3.0 dataset.

Reads only what `meta/info.json` counts as committed (see writer.py), so a dataset left by a
crash reads the same as after `--resume` cleans it. No torch, no `datasets`: pyarrow + PyAV.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataset import layout, tables, video
from dataset.errors import DatasetCorruptError, EpisodeNotFoundError, NotADatasetError

# The info.json keys this reader (and `DatasetWriter.resume`) cannot do without.
INFO_KEYS = ("total_episodes", "total_frames", "fps", "features", "data_path", "video_path")
# What to do about files that disagree: which of them is right cannot be told from the rest.
_DISAGREE = ("the dataset's files disagree (edited, or copied in part): restore it from a "
             "copy, or record it again")


@dataclass(frozen=True)
class EpisodeData:
    """One episode's per-frame arrays.

    Attributes:
        index: episode index.
        task: the instruction string.
        state: (T, S) float32 `observation.state`.
        action: (T, A) float32 `action` (as applied).
        timestamp: (T,) float32 seconds from the episode start.
        next_success: (T,) bool.
        success: the episode ended in success.
        seed: env seed that reproduces the episode (-1 if not recorded).
        expert_action: (T, A) float32 clean policy actions of a noisy (DART) collection;
            None when the dataset has no `expert_action` feature.
        env_state: (T, E) float32 `observation.environment_state` (simulator ground truth);
            None when the dataset has none.
        intervention: (T,) bool, True where a human acted (layout.INTERVENTION_KEY); None
            when the dataset has no such column.
        capture_time: (T,) float32 `complementary_info.capture_time`, seconds from the first
            frame at which each frame was really captured (`agent record`); None when not recorded.
    """

    index: int
    task: str
    state: np.ndarray
    action: np.ndarray
    timestamp: np.ndarray
    next_success: np.ndarray
    success: bool
    seed: int
    expert_action: np.ndarray | None = None
    env_state: np.ndarray | None = None
    intervention: np.ndarray | None = None
    capture_time: np.ndarray | None = None

    @property
    def length(self) -> int:
        return len(self.state)


class LeRobotDatasetReader:
    """Read a LeRobotDataset v3.0 directory.

        >>> ds = LeRobotDatasetReader("/tmp/pp100")
        >>> ds.num_episodes, ds.fps, ds.camera_keys
        >>> ep = ds.episode(3)                        # EpisodeData
        >>> front = ds.frames(3, "observation.images.front")   # (T, H, W, 3) uint8
    """

    def __init__(self, root: str | Path) -> None:
        """Opens and checks `root`: info.json must read and agree with the episodes table.

        Raises:
            NotADatasetError: no such directory, no meta/info.json, or another version.
            DatasetCorruptError: a damaged info.json or episodes table, or totals that
                disagree with the table; the message names the file.
        """
        self.root = Path(root)
        info_path = self.root / layout.INFO_PATH
        if not self.root.is_dir():
            what = "is a file" if self.root.exists() else "does not exist"
            raise NotADatasetError(f"{self.root} {what}; a dataset is a directory "
                                   f"(written by `agent collect`)")
        if not info_path.exists():
            raise NotADatasetError(f"{self.root} is not a LeRobot dataset (no {layout.INFO_PATH})")
        self.info: dict[str, Any] = layout.load_json(info_path)
        self._cached: tuple[Path, pa.Table] | None = None
        version = self.info.get("codebase_version") if isinstance(self.info, dict) else None
        if version != layout.CODEBASE_VERSION:
            raise NotADatasetError(f"{self.root} is a LeRobot {version} dataset; this reader "
                                   f"reads {layout.CODEBASE_VERSION}")
        # The committed rows of the episodes table (stats columns left out), in order.
        self.episodes: list[dict[str, Any]] = committed_episodes(self.root, self.info)

    # -- metadata ----------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return int(self.info["total_episodes"])

    @property
    def num_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        return self.info["features"]

    @property
    def has_expert_action(self) -> bool:
        """Whether frames hold `expert_action` (recorded with `agent collect --action-noise`)."""
        return layout.EXPERT_ACTION_KEY in self.features

    @property
    def has_intervention(self) -> bool:
        """Whether frames say who acted (recorded with `agent run --takeover ... --dataset`)."""
        return layout.INTERVENTION_KEY in self.features

    @property
    def state_names(self) -> list[str]:
        """Names of `observation.state`'s dims (envs.features.StateLayout's, for our envs)."""
        return list(self.features["observation.state"]["names"])

    @property
    def action_names(self) -> list[str]:
        """Names of `action`'s dims (and `expert_action`'s)."""
        return list(self.features["action"]["names"])

    @property
    def env_state_names(self) -> list[str]:
        """Names of `observation.environment_state`'s dims ([] when it was not recorded)."""
        feat = self.features.get(layout.ENV_STATE_KEY)
        return list(feat["names"]) if feat else []

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f["dtype"] == "video"]

    @cached_property
    def tasks(self) -> list[str]:
        by_index = tables.read_tasks(self.root / layout.TASKS_PATH)
        return [t for t, _ in sorted(by_index.items(), key=lambda kv: kv[1])]

    @cached_property
    def recording(self) -> dict[str, Any]:
        """How the dataset was recorded (env spec, policy...), from meta/motoken.json."""
        path = self.root / layout.MOTOKEN_PATH
        return layout.load_json(path) if path.exists() else {}

    @cached_property
    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        from dataset.stats import from_json

        return from_json(layout.load_json(self.root / layout.STATS_PATH))

    def episode_meta(self, k: int) -> dict[str, Any]:
        if not 0 <= k < self.num_episodes:
            raise EpisodeNotFoundError(f"episode {k} not in {self.root} ({self.num_episodes} "
                                       f"episodes: 0..{self.num_episodes - 1})")
        return self.episodes[k]

    def episode_stats(self, k: int) -> dict[str, dict[str, np.ndarray]]:
        """Episode k's per-episode stats (feature -> stat -> array), from its episodes row."""
        meta = self.episode_meta(k)
        path = self.root / layout.EPISODES_PATH.format(
            chunk_index=meta["meta/episodes/chunk_index"],
            file_index=meta["meta/episodes/file_index"])
        cols = [c for c in pq.read_schema(path).names if c.startswith("stats/")]
        table = pq.read_table(path, columns=["episode_index", *cols])
        rows = table.filter(pc.equal(table["episode_index"], k)).to_pylist()
        if not rows:
            raise DatasetCorruptError(f"{path} has no row for episode {k}; {_DISAGREE}")
        out: dict[str, dict[str, np.ndarray]] = {}
        for col in cols:
            feature, name = col.split("/", 1)[1].rsplit("/", 1)
            out.setdefault(feature, {})[name] = np.asarray(rows[0][col])
        return out

    # -- data --------------------------------------------------------------------------------
    def episode(self, k: int) -> EpisodeData:
        """Episode k's per-frame arrays."""
        meta = self.episode_meta(k)
        path = self.root / self.info["data_path"].format(chunk_index=meta["data/chunk_index"],
                                                         file_index=meta["data/file_index"])
        table = self._data_table(path)
        table = table.filter(pc.equal(table["episode_index"], k)).sort_by("frame_index")
        done = (np.asarray(table[layout.SUCCESS_KEY], dtype=bool)
                if layout.SUCCESS_KEY in table.column_names else np.zeros(len(table), bool))
        return EpisodeData(
            index=k, task=meta["tasks"][0], state=_vectors(table["observation.state"]),
            action=_vectors(table["action"]),
            timestamp=np.asarray(table["timestamp"], dtype=np.float32), next_success=done,
            success=bool(meta.get("success", done[-1] if len(done) else False)),
            seed=int(meta.get("seed", -1)),
            expert_action=(_vectors(table[layout.EXPERT_ACTION_KEY])
                           if layout.EXPERT_ACTION_KEY in table.column_names else None),
            env_state=(_vectors(table[layout.ENV_STATE_KEY])
                       if layout.ENV_STATE_KEY in table.column_names else None),
            intervention=(np.asarray(table[layout.INTERVENTION_KEY], dtype=bool)
                          if layout.INTERVENTION_KEY in table.column_names else None),
            capture_time=(np.asarray(table[layout.CAPTURE_TIME_KEY], dtype=np.float32)
                          if layout.CAPTURE_TIME_KEY in table.column_names else None))

    def __len__(self) -> int:
        return self.num_episodes

    def __iter__(self) -> Iterator[EpisodeData]:
        return (self.episode(k) for k in range(self.num_episodes))

    def _data_table(self, path: Path) -> pa.Table:
        # Episodes are read in order mostly, and ~50 share a file: keep the last one read.
        if self._cached is None or self._cached[0] != path:
            self._cached = (path, pq.read_table(path))
        return self._cached[1]

    def frames(self, k: int, camera: str) -> np.ndarray:
        """Episode k's frames of `camera` (a video key or bare camera name), (T, H, W, 3) uint8."""
        key = camera if camera in self.features else f"observation.images.{camera}"
        if key not in self.camera_keys:
            raise KeyError(f"no camera {camera!r}; cameras: {self.camera_keys}")
        return video.decode(*self.video_segment(k, key), self.fps)

    def video_segment(self, k: int, key: str) -> tuple[Path, float, float]:
        """Where episode k's frames of video `key` are: (mp4 path, from_timestamp, to_timestamp)."""
        meta = self.episode_meta(k)
        path = self.root / self.info["video_path"].format(
            video_key=key, chunk_index=meta[f"videos/{key}/chunk_index"],
            file_index=meta[f"videos/{key}/file_index"])
        return path, meta[f"videos/{key}/from_timestamp"], meta[f"videos/{key}/to_timestamp"]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())


def committed_episodes(root: Path, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The episodes-table rows `info` counts as committed (stats columns left out), in order.

    Rows past `total_episodes` are the tail of a commit a crash cut short (see writer.py) and
    are left out; a table that lacks a counted episode, or whose counted episodes' lengths do
    not add up to `total_frames`, disagrees with info.json.

    Raises:
        DatasetCorruptError: info.json lacks a key, a table cannot be read, or they disagree.
    """
    where = root / layout.INFO_PATH
    missing = [k for k in INFO_KEYS if k not in info]
    if missing:
        raise DatasetCorruptError(f"{where} lacks {missing}: the file is damaged")
    n, frames = int(info["total_episodes"]), int(info["total_frames"])
    rows = sorted((r for r in _episode_rows(root) if r["episode_index"] < n),
                  key=lambda r: r["episode_index"])
    held = [r["episode_index"] for r in rows]
    if held != list(range(n)):
        lacking = sorted(set(range(n)) - set(held))
        what = (f"lacks episode(s) {lacking[:5]}{' ...' if len(lacking) > 5 else ''}"
                if lacking else "holds an episode twice")
        raise DatasetCorruptError(f"{where} counts {n} episodes (total_episodes) but the "
                                  f"episodes table (meta/episodes/) {what}; {_DISAGREE}")
    length = sum(int(r["length"]) for r in rows)
    if length != frames:
        raise DatasetCorruptError(f"{where} counts {frames} frames (total_frames) but the "
                                  f"episodes table's {n} episodes hold {length}; {_DISAGREE}")
    return rows


def _episode_rows(root: Path) -> list[dict[str, Any]]:
    """Every row of every episodes-table file, committed or not, without stats columns."""
    rows: list[dict[str, Any]] = []
    for path in sorted((root / "meta" / "episodes").glob("*/*.parquet")):
        try:
            cols = [c for c in pq.read_schema(path).names if not c.startswith("stats/")]
            rows.extend(pq.read_table(path, columns=cols).to_pylist())
        except (OSError, pa.ArrowException) as e:
            raise DatasetCorruptError(f"{path} cannot be read ({e}): the file is damaged "
                                      f"(truncated or overwritten)") from e
    return rows


def _vectors(col: pa.ChunkedArray) -> np.ndarray:
    flat = np.asarray(col.combine_chunks().flatten())
    return flat.reshape(len(col), -1)
