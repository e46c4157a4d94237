"""Dataset edits, as LeRobot's `lerobot-edit-dataset`: delete episodes, split, merge, rename a task.

Every edit reads its source(s) with `LeRobotDatasetReader` and writes a NEW dataset through
`DatasetWriter` (never in place): episodes, frame `index`es and task indices are renumbered from
0, per-episode vector stats are recomputed from the rows and `stats.json` is re-aggregated over
the episodes kept. The output is built in a hidden sibling folder and renamed into place at the
end, so a failed edit leaves no half-written dataset at `out`.

Video: each kept episode's packets are copied out of its concatenated mp4 (`video.extract`) and
appended to the new file (`video.append`, as `agent collect` does): a remux, no re-encode, so
every decoded frame equals the source's bit for bit. LeRobot's own tool re-encodes any file it
drops an episode from, which loses quality a second time and is slower. Measured on 232 frames of
128x128 AV1 (2 cameras, a shared 2-core machine): cutting the segments out costs 0.04 ms a frame,
decoding + re-encoding them with LeRobot's settings 1.9 + 1.1 ms, and the re-encoded frames are
only 37 dB PSNR from the source's. (The writer's commit rewrites the current file, so a file of
E episodes is copied ~E/2 times; at 50 episodes per file that is still far below re-encoding.)
Pointing the new episodes table at the source's files as they are would save the copy only for
files whose episodes are all kept, in order; the writer rolls files by episode count, so after a
deletion the episode-to-file map changes anyway, and a dataset that shares files with another
breaks when either is edited by hand.
Per-episode image stats are
carried over from the source row: they were computed from the raw frames before encoding, which
decoded frames cannot give back.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataset import layout, video
from dataset.errors import (
    DatasetCorruptError,
    DatasetExistsError,
    EditError,
    EpisodeNotFoundError,
    FeatureMismatchError,
)
from dataset.layout import DatasetSpec
from dataset.reader import LeRobotDatasetReader
from dataset.video import VideoConfig
from dataset.writer import DatasetWriter, EpisodeRecord

SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a folder name, never hidden


@dataclass(frozen=True)
class Pick:
    """One episode of the output: episode `index` of `source`, recorded under `task`."""

    source: LeRobotDatasetReader
    index: int
    task: str


def delete_episodes(src: Path, out: Path, episodes: Iterable[int]) -> LeRobotDatasetReader:
    """A copy of `src` at `out` without `episodes`; the rest keep their order."""
    ds = LeRobotDatasetReader(src)
    drop = set(episodes)
    if not drop:
        raise EditError("no episodes to delete were given")
    _check_indices(ds, drop)
    keep = [k for k in range(ds.num_episodes) if k not in drop]
    if not keep:
        raise EditError(f"deleting {sorted(drop)} would leave {src} with no episode; an empty "
                        f"dataset is not written")
    picks = [Pick(ds, k, _task(ds, k)) for k in keep]
    edit = {"op": "delete", "source": str(src), "deleted": sorted(drop)}
    _build(out, [ds], lambda tmp: _write(tmp, picks, ds, _recording(ds, edit)))
    return LeRobotDatasetReader(out)


def split(src: Path, out: Path,
          splits: Mapping[str, Sequence[int]]) -> dict[str, LeRobotDatasetReader]:
    """`out/<name>/` for each split: a dataset of the listed episodes of `src`, in order."""
    ds = LeRobotDatasetReader(src)
    _check_splits(ds, splits)

    def make(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        for name, episodes in splits.items():
            picks = [Pick(ds, k, _task(ds, k)) for k in sorted(episodes)]
            edit = {"op": "split", "source": str(src), "split": name,
                    "episodes": sorted(episodes)}
            _write(tmp / name, picks, ds, _recording(ds, edit))

    _build(out, [ds], make)
    return {name: LeRobotDatasetReader(out / name) for name in splits}


def fraction_splits(num_episodes: int, fractions: Mapping[str, float]) -> dict[str, list[int]]:
    """Consecutive episode ranges from fractions, e.g. {"train": 0.8, "val": 0.2}.

    Split i holds episodes [round(n * f_1..i-1), round(n * f_1..i)): rounding never loses or
    repeats an episode, fractions summing to 1 cover them all, and a sum under 1 leaves the last
    episodes out. Raises EditError for a fraction outside (0, 1], a sum over 1, or a split that
    gets no episode.
    """
    bad = {k: f for k, f in fractions.items() if not 0.0 < f <= 1.0}
    if bad:
        raise EditError(f"split fractions must be in (0, 1], got {bad}")
    total = sum(fractions.values())
    if total > 1.0 + 1e-9:
        raise EditError(f"split fractions add up to {total:g}, more than 1: {dict(fractions)}")
    out, done, start = {}, 0.0, 0
    for name, f in fractions.items():
        done += f
        end = min(round(num_episodes * done), num_episodes)
        if end == start:
            raise EditError(f"split {name!r} ({f:g} of {num_episodes} episodes) gets no "
                            f"episode; use larger fractions or fewer splits")
        out[name], start = list(range(start, end)), end
    return out


def merge(sources: Sequence[Path], out: Path) -> LeRobotDatasetReader:
    """The episodes of every source, in the order given, as one dataset at `out`.

    Raises FeatureMismatchError when the sources differ in fps, robot type or features (names,
    shapes, cameras, video codec); the message names each difference.
    """
    if len(sources) < 2:
        raise EditError(f"merge needs two datasets or more, got {len(sources)}")
    readers = [LeRobotDatasetReader(s) for s in sources]
    first = readers[0]
    for other in readers[1:]:
        problems = _differences(first, other)
        if problems:
            raise FeatureMismatchError(f"cannot merge {other.root} with {first.root}: they were "
                                       f"recorded differently: " + "; ".join(problems))
    picks = [Pick(ds, k, _task(ds, k)) for ds in readers for k in range(ds.num_episodes)]
    common = {k: v for k, v in first.recording.items()
              if all(ds.recording.get(k) == v for ds in readers)}
    recording = {**common, "edit": {"op": "merge", "sources": [
        {"path": str(ds.root), "recording": ds.recording} for ds in readers]}}
    _build(out, readers, lambda tmp: _write(tmp, picks, first, recording))
    return LeRobotDatasetReader(out)


def rename_task(src: Path, out: Path, to: str, task: str | None = None,
                episodes: Iterable[int] | None = None) -> LeRobotDatasetReader:
    """A copy of `src` where the episodes whose task is `task` (all, if None) and whose index is
    in `episodes` (all, if None) have the task `to`. Tasks left unused are dropped."""
    ds = LeRobotDatasetReader(src)
    if not to.strip():
        raise EditError("the new task must not be empty")
    if task is not None and task not in ds.tasks:
        close = difflib.get_close_matches(task, ds.tasks, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise EditError(f"no task {task!r} in {src} (tasks: {ds.tasks}){hint}")
    chosen = set(range(ds.num_episodes)) if episodes is None else set(episodes)
    _check_indices(ds, chosen)
    hit = {k for k in chosen if task is None or _task(ds, k) == task}
    if not hit:
        raise EditError(f"none of episodes {sorted(chosen)} of {src} has the task {task!r}")
    picks = [Pick(ds, k, to if k in hit else _task(ds, k)) for k in range(ds.num_episodes)]
    edit = {"op": "rename-task", "source": str(src), "from": task, "to": to,
            "episodes": sorted(hit)}
    _build(out, [ds], lambda tmp: _write(tmp, picks, ds, _recording(ds, edit)))
    return LeRobotDatasetReader(out)


def spec_of(ds: LeRobotDatasetReader) -> DatasetSpec:
    """The `DatasetSpec` that `ds` was written with; EditError if no spec writes its features
    (a dataset not written by `agent collect`)."""
    f = ds.features
    cams = tuple(k.removeprefix("observation.images.") for k in ds.camera_keys)
    first = f[ds.camera_keys[0]] if cams else {"shape": [0, 0, 3], "info": {}}
    info = first.get("info", {})
    try:
        cfg = VideoConfig(codec=info.get("video.codec", "av1"),
                          pix_fmt=info.get("video.pix_fmt", "yuv420p"))
        env_state = f.get(layout.ENV_STATE_KEY, {}).get("names") or ()
        spec = DatasetSpec(fps=ds.fps, robot_type=ds.info.get("robot_type"), cameras=cams,
                           image_shape=tuple(first["shape"]),
                           state_names=tuple(f["observation.state"]["names"]),
                           action_names=tuple(f["action"]["names"]), video=cfg,
                           expert_action=layout.EXPERT_ACTION_KEY in f,
                           env_state_names=tuple(env_state),
                           intervention=layout.INTERVENTION_KEY in f,
                           capture_time=layout.CAPTURE_TIME_KEY in f)
    except (KeyError, TypeError, ValueError) as e:
        raise EditError(f"{ds.root} has features `agent dataset edit` cannot rewrite ({e}); "
                        f"it edits datasets written by `agent collect`") from None
    problems = layout.feature_differences(f, spec.features(), (str(ds.root), "what we write"))
    if problems:
        raise EditError(f"{ds.root} has features `agent dataset edit` cannot rewrite: "
                        + "; ".join(problems))
    return spec


# -- building the output ---------------------------------------------------------------------
def _build(out: Path, sources: Sequence[LeRobotDatasetReader],
           make: Callable[[Path], None]) -> None:
    """Run `make(tmp)` on a hidden sibling of `out`, then rename it to `out`."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetExistsError(f"--out {out} exists and is not an empty folder; an edit "
                                 f"writes a new dataset, never into an existing one")
    for ds in sources:
        src = ds.root.resolve()
        if out.resolve() == src or src in out.resolve().parents:
            raise EditError(f"--out {out} is inside the source dataset {ds.root}")
    tmp = out.with_name(f".{out.name}.editing")
    shutil.rmtree(tmp, ignore_errors=True)  # our own leftover from an edit that was killed
    try:
        make(tmp)
        if out.exists():
            out.rmdir()  # empty (checked above): rename replaces it
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write(root: Path, picks: Sequence[Pick], model: LeRobotDatasetReader,
           recording: dict[str, Any]) -> None:
    """Commit `picks`, in order, to a new dataset at `root` with `model`'s spec."""
    spec = spec_of(model)
    per_file = int(model.info.get("episodes_per_file", layout.EPISODES_PER_FILE))
    writer = DatasetWriter.create(root, spec, per_file, recording)
    try:
        for pick in picks:
            writer.commit(_record(pick, writer.staging))
    finally:
        writer.close()


def _record(pick: Pick, staging: Path) -> EpisodeRecord:
    """Episode `pick.index` of its source as a record for the writer, videos remuxed out."""
    ds, k = pick.source, pick.index
    ep = ds.episode(k)
    videos = {}
    for key in ds.camera_keys:
        path, start, end = ds.video_segment(k, key)
        videos[key] = staging / f"{key}.mp4"
        try:
            n = video.extract(path, start, end, videos[key])
        except ValueError as e:
            raise DatasetCorruptError(f"episode {k} of {ds.root}: {e}") from None
        if n != ep.length:
            raise DatasetCorruptError(f"episode {k} of {ds.root} has {ep.length} frames but "
                                      f"{n} in {path} between {start} and {end} s")
    stats = ds.episode_stats(k)
    return EpisodeRecord(
        seed=ep.seed, task=pick.task, success=ep.success, state=ep.state, action=ep.action,
        next_success=ep.next_success, videos=videos,
        image_stats={key: stats[key] for key in ds.camera_keys if key in stats},
        failure=ds.episode_meta(k).get("failure") or None, expert_action=ep.expert_action,
        env_state=ep.env_state, intervention=ep.intervention, capture_time=ep.capture_time)


# -- checks ----------------------------------------------------------------------------------
def _task(ds: LeRobotDatasetReader, k: int) -> str:
    return ds.episode_meta(k)["tasks"][0]


def _recording(ds: LeRobotDatasetReader, edit: dict[str, Any]) -> dict[str, Any]:
    return {**ds.recording, "edit": edit}


def _check_indices(ds: LeRobotDatasetReader, episodes: Iterable[int]) -> None:
    bad = sorted(k for k in set(episodes) if not 0 <= k < ds.num_episodes)
    if bad:
        raise EpisodeNotFoundError(f"episode(s) {bad} not in {ds.root} ({ds.num_episodes} "
                                   f"episodes: 0..{ds.num_episodes - 1})")


def _check_splits(ds: LeRobotDatasetReader, splits: Mapping[str, Sequence[int]]) -> None:
    if not splits:
        raise EditError("no splits were given")
    seen: dict[int, str] = {}
    for name, episodes in splits.items():
        if not SPLIT_NAME.fullmatch(name):
            raise EditError(f"split name {name!r} is not a plain folder name (letters, digits, "
                            f"'_', '-', '.', not starting with '.')")
        if not episodes:
            raise EditError(f"split {name!r} has no episodes")
        _check_indices(ds, episodes)
        for k in episodes:
            if k in seen and seen[k] != name:
                raise EditError(f"episode {k} is in both split {seen[k]!r} and {name!r}")
            seen[k] = name


def _differences(a: LeRobotDatasetReader, b: LeRobotDatasetReader) -> list[str]:
    spec_of(a), spec_of(b)  # both must be datasets we can rewrite
    problems = []
    if a.fps != b.fps:
        problems.append(f"fps: {a.root} has {a.fps}, {b.root} has {b.fps}")
    ra, rb = a.info.get("robot_type"), b.info.get("robot_type")
    if ra != rb:
        problems.append(f"robot_type: {a.root} has {ra!r}, {b.root} has {rb!r}")
    return problems + layout.feature_differences(a.features, b.features,
                                                 (str(a.root), str(b.root)))
