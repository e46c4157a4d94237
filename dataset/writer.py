"""`DatasetWriter`: appends complete episodes to a LeRobotDataset v3.0, one atomic commit each.

Durability design
-----------------
v3.0 packs many episodes into each parquet/mp4 file, which no single `os.replace` can extend.
So an episode is committed as: (1) write a new version of every file it touches under a temp
name (`<file>.tmp`: the current mp4 of each camera with the episode's packets appended by a
remux, the current data parquet with its rows appended, the current episodes-table parquet with
its row, tasks, stats.json, info.json), fsync each; (2) `os.replace` them into place in that
order, `meta/info.json` last; (3) fsync the directories. `info.json` is the commit record:
`total_episodes`/`total_frames` say how much of the files is real.

- A crash (kill -9, power loss) before step 2 leaves only `*.tmp` files and staged videos:
  the dataset is the one before the episode. A crash inside step 2 leaves files that hold an
  extra episode *past* what info.json counts: rows after `total_frames`, an extra episodes row,
  mp4 frames after the last `to_timestamp`. Readers (ours, and LeRobot's, whose length and
  episode list come from info.json and whose video lookups go by timestamp) never reach them.
  Either way the dataset stays loadable and loses at most the episode in progress.
- Opening for `--resume` (`DatasetWriter.resume`) trims any such tail and deletes temp files
  and staged videos, then appends after the last committed episode.
- Any OSError in step 1 (ENOSPC) deletes the temp files and raises `DatasetWriteError`; nothing
  committed is touched.

Cost: each commit rewrites the current file of each kind, so files roll every
`episodes_per_file` episodes (default 50): a commit copies at most 49 episodes of mp4 packets and
rows (a few MB at 128x128) and a dataset of E episodes has E/50 files per kind instead of E.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataset import layout, stats, tables, video
from dataset.errors import (
    DatasetCorruptError,
    DatasetExistsError,
    DatasetLockedError,
    DatasetWriteError,
    FeatureMismatchError,
    NotADatasetError,
)
from dataset.layout import DatasetSpec, FileLocation
from dataset.reader import committed_episodes

LOCK_NAME = ".lock"  # see _lock(); LeRobot ignores it


@dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode, ready to commit.

    Attributes:
        seed: the env seed that reproduces it.
        task: the instruction (LeRobot's `task`).
        success: whether the episode ended in success.
        state: (T, S) float32 observations the actions were computed from.
        action: (T, A) float32 actions actually applied (after noise and clipping).
        next_success: (T,) bool, success after each frame's action.
        videos: video key -> this episode's mp4 (in the writer's staging dir).
        image_stats: video key -> per-channel stats of the raw frames (see stats.py).
        failure: why the env gave up (physics divergence), if it did.
        expert_action: (T, A) float32 clean policy actions when noise was added to the
            executed ones (the dataset's spec must then have `expert_action`), else None.
        env_state: (T, E) float32 simulator ground truth per frame when the dataset's spec
            has `env_state_names`, else None.
        intervention: (T,) bool, True where a human acted, when the dataset's spec has
            `intervention` (a takeover run), else None.
        capture_time: (T,) float seconds from the first frame at which each frame's observation
            was captured, when the dataset's spec has `capture_time`, else None.
    """

    seed: int
    task: str
    success: bool
    state: np.ndarray
    action: np.ndarray
    next_success: np.ndarray
    videos: dict[str, Path]
    image_stats: dict[str, stats.Stats] = field(default_factory=dict)
    failure: str | None = None
    expert_action: np.ndarray | None = None
    env_state: np.ndarray | None = None
    intervention: np.ndarray | None = None
    capture_time: np.ndarray | None = None

    @property
    def length(self) -> int:
        return len(self.state)


class DatasetWriter:
    """Appends `EpisodeRecord`s to a dataset directory. Build with `create` or `resume`."""

    def __init__(self, root: Path, spec: DatasetSpec, info: dict[str, Any], lock: int) -> None:
        self.root, self.spec, self.info, self._lock = root, spec, info, lock
        self.per_file = int(info["episodes_per_file"])
        self.tasks = tables.read_tasks(root / layout.TASKS_PATH)
        stats_path = root / layout.STATS_PATH
        self.stats = stats.from_json(layout.load_json(stats_path)) if stats_path.exists() else None
        self._last = _episode_row(root, info, self.num_episodes - 1)
        self.staging.mkdir(parents=True, exist_ok=True)

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, spec: DatasetSpec,
               episodes_per_file: int = layout.EPISODES_PER_FILE,
               recording: dict[str, Any] | None = None) -> DatasetWriter:
        """A new, empty dataset at `root` (which must not exist or be empty)."""
        if root.exists() and any(p.name != LOCK_NAME for p in root.iterdir()):
            if (root / layout.INFO_PATH).exists():
                raise DatasetExistsError(f"{root} already holds a dataset; pass --resume to add "
                                         f"episodes to it, or choose another --out")
            raise NotADatasetError(f"{root} exists and is not an empty folder or a LeRobot "
                                   f"dataset (no {layout.INFO_PATH}); refusing to write into it")
        if episodes_per_file < 1:
            raise ValueError(f"episodes_per_file must be >= 1, got {episodes_per_file}")
        try:
            (root / "meta").mkdir(parents=True, exist_ok=True)
            lock = _lock(root)
            layout.atomic_write_json(recording or {}, root / layout.MOTOKEN_PATH)
            info = spec.empty_info(episodes_per_file)
            layout.atomic_write_json(info, root / layout.INFO_PATH)
        except OSError as e:
            raise DatasetWriteError(f"cannot create a dataset at {root}: {e}") from e
        return cls(root, spec, info, lock)

    @classmethod
    def resume(cls, root: Path, spec: DatasetSpec) -> DatasetWriter:
        """Reopen `root` to append: checks features, then drops any uncommitted tail."""
        info_path = root / layout.INFO_PATH
        if not info_path.exists():
            raise NotADatasetError(f"{root} is not a LeRobot dataset (no {layout.INFO_PATH})")
        try:
            info = layout.load_json(info_path)
            committed_episodes(root, info)  # refuse damage before recover() rewrites files
        except DatasetCorruptError as e:
            raise DatasetCorruptError(f"cannot resume {root}: {e}; nothing was changed") from e
        if "episodes_per_file" not in info:
            raise NotADatasetError(f"{root} was not recorded by `agent collect` (no "
                                   f"episodes_per_file in {layout.INFO_PATH}); not appending")
        problems = layout.feature_differences(info["features"], spec.features())
        if info["fps"] != spec.fps:
            problems.insert(0, f"fps: dataset has {info['fps']}, this recording has {spec.fps}")
        if problems:
            raise FeatureMismatchError(f"cannot resume {root}: it was recorded with different "
                                       f"features:\n  " + "\n  ".join(problems))
        lock = _lock(root)  # before recover(): it rewrites files another writer may own
        recover(root, info)
        return cls(root, spec, info, lock)

    # -- state -------------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return int(self.info["total_episodes"])

    @property
    def num_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def staging(self) -> Path:
        """Where recorders put an episode's videos before `commit` (same filesystem)."""
        return self.root / layout.STAGING_DIR

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        os.close(self._lock)  # releases the flock

    # -- commit ------------------------------------------------------------------------------
    def commit(self, ep: EpisodeRecord) -> int:
        """Append `ep` atomically (see the module docstring); returns its episode index."""
        k = self.num_episodes
        if (ep.expert_action is not None) != self.spec.expert_action:
            got = "has" if ep.expert_action is not None else "has no"
            want = "one" if self.spec.expert_action else "none"
            raise ValueError(f"episode (seed {ep.seed}) {got} expert_action, but the dataset "
                             f"{self.root} expects {want}: noisy and noise-free episodes "
                             f"cannot be mixed")
        want_env = len(self.spec.env_state_names)
        got_env = 0 if ep.env_state is None else ep.env_state.shape[1]
        if got_env != want_env:
            raise ValueError(f"episode (seed {ep.seed}) has {got_env} environment-state dims, "
                             f"but the dataset {self.root} records {want_env}")
        if (ep.intervention is not None) != self.spec.intervention:
            got = "has" if ep.intervention is not None else "has no"
            want = "one" if self.spec.intervention else "none"
            raise ValueError(f"episode (seed {ep.seed}) {got} intervention column, but the "
                             f"dataset {self.root} expects {want}")
        if ep.intervention is not None and ep.intervention.shape != (ep.length,):
            raise ValueError(f"episode (seed {ep.seed}) has {ep.length} frames but intervention "
                             f"labels of shape {ep.intervention.shape}")
        if (ep.capture_time is not None) != self.spec.capture_time:
            got = "has" if ep.capture_time is not None else "has no"
            raise ValueError(f"episode (seed {ep.seed}) {got} capture times, but the dataset "
                             f"{self.root} records them only if its spec says capture_time")
        task_index = self.tasks.get(ep.task, len(self.tasks))
        tasks = {**self.tasks, ep.task: task_index}
        staged: list[tuple[Path, Path]] = []
        try:
            row, ep_stats = self._stage_episode(ep, k, task_index, staged)
            new_stats = stats.aggregate([self.stats, ep_stats]) if self.stats else ep_stats
            info = {**self.info, "total_episodes": k + 1,
                    "total_frames": self.num_frames + ep.length, "total_tasks": len(tasks),
                    "splits": {"train": f"0:{k + 1}"}}
            if len(tasks) != len(self.tasks):
                self._stage_table(tables.tasks_table(tasks), layout.TASKS_PATH, staged)
            for data, rel in ((stats.to_json(new_stats), layout.STATS_PATH),
                              (info, layout.INFO_PATH)):
                final = self.root / rel
                staged.append((layout.tmp_path(final), final))  # listed first: cleaned on error
                layout.write_json_tmp(data, final)
            for tmp, _ in staged:
                layout.fsync_file(tmp)
        except OSError as e:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise _write_error(e, k, self.root) from e
        self._publish(staged, info)
        self.tasks, self.stats, self._last = tasks, new_stats, row
        for path in ep.videos.values():
            path.unlink(missing_ok=True)
        return k

    def _publish(self, staged: list[tuple[Path, Path]], info: dict[str, Any]) -> None:
        try:
            for tmp, final in staged:  # info.json is last: the commit point
                os.replace(tmp, final)
            for parent in {final.parent for _, final in staged}:
                layout.fsync_dir(parent)
        except OSError as e:
            try:
                recover(self.root, self.info)  # back to the last commit
            except OSError:
                pass  # still readable (info.json is the old one); --resume trims the tail
            raise _write_error(e, self.num_episodes, self.root) from e
        self.info = info

    def _stage_episode(self, ep: EpisodeRecord, k: int, task_index: int,
                       staged: list[tuple[Path, Path]]) -> tuple[dict[str, Any], dict]:
        loc = FileLocation.of_episode(k, self.per_file)
        continues = self._last is not None and k % self.per_file != 0  # same files as k - 1
        row: dict[str, Any] = {"episode_index": k, "tasks": [ep.task], "length": ep.length}
        frames = tables.frames_table(ep.state, ep.action, ep.next_success, k, self.num_frames,
                                     task_index, self.spec.fps, ep.expert_action,
                                     ep.env_state, intervention=ep.intervention,
                                     capture_time=ep.capture_time)
        data_rel = layout.DATA_PATH.format(**loc.fmt())
        base = tables.read_rows_before(self.root / data_rel, k) if continues else None
        self._stage_table(tables.concat(base, frames), data_rel, staged)
        row.update({"data/chunk_index": loc.chunk_index, "data/file_index": loc.file_index,
                    "dataset_from_index": self.num_frames,
                    "dataset_to_index": self.num_frames + ep.length})
        for key in self.spec.video_keys():
            final = self.root / layout.VIDEO_PATH.format(video_key=key, **loc.fmt())
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = layout.tmp_path(final)
            staged.insert(0, (tmp, final))  # videos go in first (harmless if alone)
            keep = self._last[f"videos/{key}/to_timestamp"] if continues else 0.0
            start = video.append(final if continues else None, keep, ep.videos[key], tmp)
            row.update({f"videos/{key}/chunk_index": loc.chunk_index,
                        f"videos/{key}/file_index": loc.file_index,
                        f"videos/{key}/from_timestamp": start,
                        f"videos/{key}/to_timestamp": start + ep.length / self.spec.fps})
        ep_stats = {**_vector_stats(frames), **ep.image_stats}
        row.update({"meta/episodes/chunk_index": loc.chunk_index,
                    "meta/episodes/file_index": loc.file_index, **stats.flatten(ep_stats),
                    "success": ep.success, "seed": ep.seed, "failure": ep.failure or ""})
        meta_rel = layout.EPISODES_PATH.format(**loc.fmt())
        base = tables.read_rows_before(self.root / meta_rel, k) if continues else None
        self._stage_table(tables.concat(base, tables.episodes_table([row])), meta_rel, staged)
        return row, ep_stats

    def _stage_table(self, table: pa.Table, rel: str, staged: list[tuple[Path, Path]]) -> None:
        final = self.root / rel
        tmp = layout.tmp_path(final)
        staged.append((tmp, final))  # listed before writing: a failed write is cleaned up too
        tables.write_table(table, tmp)


def _lock(root: Path) -> int:
    """An exclusive advisory lock on `root/.lock`: one writer per dataset.

    flock dies with its process, so a kill -9 never leaves the dataset locked.
    """
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatasetLockedError(f"another `agent collect` is writing to {root}; wait for it "
                                 f"to finish (or stop it) first") from None
    return fd


def _vector_stats(frames: pa.Table) -> dict[str, stats.Stats]:
    out = {}
    for name in frames.column_names:
        col = frames[name]
        if pa.types.is_fixed_size_list(col.type):
            values = np.asarray(col.combine_chunks().flatten()).reshape(len(col), -1)
        else:
            values = np.asarray(col).astype(np.float64)
        out[name] = stats.vector_stats(values)
    return out


def _write_error(e: OSError, k: int, root: Path) -> DatasetWriteError:
    why = "the disk is full" if e.errno == 28 else str(e)
    return DatasetWriteError(f"could not write episode {k} to {root}: {why}. The {k} episodes "
                             f"already committed are intact; free space and rerun with --resume")


def _episode_row(root: Path, info: dict[str, Any], k: int) -> dict[str, Any] | None:
    """Episode k's row of the episodes table (without stats), or None for k < 0."""
    if k < 0:
        return None
    loc = FileLocation.of_episode(k, int(info["episodes_per_file"]))
    table = pq.read_table(root / layout.EPISODES_PATH.format(**loc.fmt()))
    table = table.filter(pc.equal(table["episode_index"], k))
    keep = [c for c in table.column_names if not c.startswith("stats/")]
    return table.select(keep).to_pylist()[0]


def _location(path: Path) -> tuple[int, int]:
    """(chunk, file) from `.../chunk-CCC/file-FFF.ext`."""
    return int(path.parent.name.split("-")[1]), int(path.name.split(".")[0].split("-")[1])


def recover(root: Path, info: dict[str, Any]) -> None:
    """Make the files match info.json: drop temp files, staged videos and uncommitted tails."""
    shutil.rmtree(root / layout.STAGING_DIR, ignore_errors=True)
    for tmp in root.rglob("*" + layout.TMP_SUFFIX):
        tmp.unlink()
    n = int(info["total_episodes"])
    per = int(info["episodes_per_file"])
    last = FileLocation.of_episode(n - 1, per) if n else None
    last_key = (last.chunk_index, last.file_index) if last else (-1, -1)
    for pattern in ("data/*/*.parquet", "meta/episodes/*/*.parquet"):
        for path in root.glob(pattern):
            if _location(path) > last_key:
                path.unlink()
            elif _location(path) == last_key:
                _trim_table(path, n)
    row = _episode_row(root, info, n - 1)
    for path in root.glob("videos/*/*/*.mp4"):
        if _location(path) > last_key:
            path.unlink()
        elif _location(path) == last_key and row is not None:
            end = row[f"videos/{path.parent.parent.name}/to_timestamp"]
            if video.duration_s(path) > end + 1e-6:
                tmp = layout.tmp_path(path)
                video.append(path, end, None, tmp)
                os.replace(tmp, path)
    tasks = tables.read_tasks(root / layout.TASKS_PATH)
    if len(tasks) > int(info["total_tasks"]):
        kept = {t: i for t, i in tasks.items() if i < int(info["total_tasks"])}
        _replace_table(tables.tasks_table(kept), root / layout.TASKS_PATH)
    # stats.json is replaced just before info.json, so it may count the torn episode: rebuild
    # it from the per-episode stats of the committed rows.
    per_episode = _episode_stats(root)
    if per_episode:
        layout.atomic_write_json(stats.to_json(stats.aggregate(per_episode)),
                                 root / layout.STATS_PATH)
    else:
        (root / layout.STATS_PATH).unlink(missing_ok=True)


def _episode_stats(root: Path) -> list[dict[str, stats.Stats]]:
    """Per-episode stats from the `stats/<feature>/<stat>` columns of the episodes tables."""
    out = []
    for path in sorted(root.glob("meta/episodes/*/*.parquet")):
        table = pq.read_table(path)
        cols = [c for c in table.column_names if c.startswith("stats/")]
        for row in table.select(cols).to_pylist():
            ep: dict[str, stats.Stats] = {}
            for col, value in row.items():
                _, feature, name = col.split("/")
                ep.setdefault(feature, {})[name] = np.asarray(value)
            out.append(ep)
    return out


def _trim_table(path: Path, n: int) -> None:
    table = pq.read_table(path)
    if pc.any(pc.greater_equal(table["episode_index"], n)).as_py():
        _replace_table(table.filter(pc.less(table["episode_index"], n)), path)


def _replace_table(table: pa.Table, path: Path) -> None:
    tmp = layout.tmp_path(path)
    tables.write_table(table, tmp)
    layout.fsync_file(tmp)
    os.replace(tmp, path)
