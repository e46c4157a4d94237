"""What LeRobot's own loader (lerobot 0.4.4, `LeRobotDataset`) needs of a v3.0 dataset on disk,
checked with pyarrow, pandas and PyAV only (LeRobot is no motoken dependency).

Each property comes from reading LeRobot's loader; experiments/lerobot_compat/check.py runs the
loader itself. `lerobot_problems(root)` lists what a dataset gets wrong ([] when nothing):

- info.json has every key `LeRobotDatasetMetadata` reads.
- data/: one schema across files, one column per non-video feature and no other (HF `datasets`
  casts the files to the features), each column typed as `get_hf_features_from_features` maps
  its feature: shape [1] -> a plain column of `dtype` (a one-element list is refused: "Couldn't
  cast array of type fixed_size_list<element: bool>[1] to bool"), shape [n] -> a list of n;
  `dtype` must be a name HF's `Value` knows ("bool", not "boolean"); `index` runs 0..N-1.
- meta/episodes/: one schema across files, the columns LeRobot indexes, and row i is episode i
  (LeRobot looks episodes up by position: `meta.episodes[ep_idx]`).
- meta/tasks.parquet: pandas reads the task string as the index and row i has task_index i
  (`meta.tasks.iloc[task_index].name` is the task LeRobot returns).
- videos: frame t of an episode is at `from_timestamp + t / fps` (within LeRobot's default
  tolerance_s, 1e-4 s) in the file its row names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TOLERANCE_S = 1e-4  # LeRobotDataset's default tolerance_s
INFO_KEYS = ("codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks",
             "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits",
             "data_path", "video_path", "features")
EPISODE_KEYS = ("episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index",
                "data/chunk_index", "data/file_index", "meta/episodes/chunk_index",
                "meta/episodes/file_index")
VIDEO_EPISODE_KEYS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")


def lerobot_problems(root: Path) -> list[str]:
    info = json.loads((root / "meta/info.json").read_text())
    problems = [f"info.json has no {k!r}" for k in INFO_KEYS if k not in info]
    if info.get("codebase_version") != "v3.0":
        problems.append(f"codebase_version {info.get('codebase_version')!r}, not 'v3.0'")
    episodes = _table(root / "meta/episodes", problems)
    problems += _data_problems(root, info)
    problems += _episode_problems(episodes, info)
    problems += _task_problems(root)
    if not problems:  # the video check trusts the episodes table
        problems += _video_problems(root, info, episodes)
    return problems


def _table(folder: Path, problems: list[str]) -> pa.Table:
    """All `*/*.parquet` under `folder` in path order (LeRobot's glob); schemas must agree."""
    paths = sorted(folder.glob("*/*.parquet"))
    tables = [pq.read_table(p) for p in paths]
    for p, t in zip(paths[1:], tables[1:], strict=True):
        if t.schema != tables[0].schema:
            problems.append(f"{p} has schema {t.schema}, {paths[0]} has {tables[0].schema}")
            return tables[0]
    return pa.concat_tables(tables)


def arrow_type(feature: dict[str, Any]) -> pa.DataType | None:
    """The column type LeRobot's loader casts a feature to (None: no column, or no such
    dtype). HF `datasets` spells `Value` dtypes as pyarrow factories: bool -> pa.bool_()."""
    if feature["dtype"] in ("video", "image"):
        return None
    factory = getattr(pa, feature["dtype"], None) or getattr(pa, feature["dtype"] + "_", None)
    if not callable(factory) or not isinstance(value := factory(), pa.DataType):
        return None
    shape = list(feature["shape"])
    return value if shape == [1] else pa.list_(value, shape[0]) if len(shape) == 1 else None


def _data_problems(root: Path, info: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    data = _table(root / "data", problems)
    columns = {f.name: f.type for f in data.schema}
    for key, feature in info["features"].items():
        if feature["dtype"] == "video":
            continue
        want = arrow_type(feature)
        if want is None:
            problems.append(f"feature {key}: dtype {feature['dtype']!r} shape "
                            f"{feature['shape']} is not one LeRobot's loader can read")
        elif key not in columns:
            problems.append(f"feature {key} has no column in data/")
        elif not _castable(columns[key], want):
            problems.append(f"column {key} is {columns[key]}; its feature (dtype "
                            f"{feature['dtype']!r}, shape {feature['shape']}) needs {want}")
    extra = set(columns) - set(info["features"])
    if extra:
        problems.append(f"data/ columns {sorted(extra)} are not in info.json features")
    if data.column("index").to_pylist() != list(range(info["total_frames"])):
        problems.append("data/ `index` does not run 0..total_frames-1 in file order")
    return problems


def _castable(have: pa.DataType, want: pa.DataType) -> bool:
    """A variable list of the right element type casts to a fixed one; nothing else differs."""
    if pa.types.is_fixed_size_list(want) and pa.types.is_list(have):
        return have.value_type == want.value_type
    return have == want


def _episode_problems(episodes: pa.Table, info: dict[str, Any]) -> list[str]:
    videos = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    needed = [*EPISODE_KEYS, *(f"videos/{v}/{k}" for v in videos for k in VIDEO_EPISODE_KEYS)]
    problems = [f"meta/episodes has no column {k!r}" for k in needed
                if k not in episodes.column_names]
    if problems:
        return problems
    rows = episodes.select(["episode_index", "length", "dataset_from_index",
                            "dataset_to_index"]).to_pylist()
    if [r["episode_index"] for r in rows] != list(range(info["total_episodes"])):
        problems.append("meta/episodes rows are not episodes 0..total_episodes-1 in order")
    start = 0
    for r in rows:
        if (r["dataset_from_index"], r["dataset_to_index"]) != (start, start + r["length"]):
            problems.append(f"episode {r['episode_index']}: index range "
                            f"{r['dataset_from_index']}..{r['dataset_to_index']} with length "
                            f"{r['length']}, expected {start}..{start + r['length']}")
        start += r["length"]
    return problems


def _task_problems(root: Path) -> list[str]:
    tasks = pd.read_parquet(root / "meta/tasks.parquet")  # as LeRobot's load_tasks
    if tasks.index.name != "task" or list(tasks.task_index) != list(range(len(tasks))):
        return [f"meta/tasks.parquet: index {tasks.index.name!r}, task_index "
                f"{list(tasks.task_index)}; LeRobot needs the task as index and row i = task i"]
    return []


def _video_problems(root: Path, info: dict[str, Any], episodes: pa.Table) -> list[str]:
    problems: list[str] = []
    fps = info["fps"]
    times: dict[Path, list[float]] = {}  # each file demuxed once
    for row in episodes.to_pylist():
        for key, f in info["features"].items():
            if f["dtype"] != "video":
                continue
            v = {k: row[f"videos/{key}/{k}"] for k in VIDEO_EPISODE_KEYS}
            path = root / info["video_path"].format(video_key=key, chunk_index=v["chunk_index"],
                                                    file_index=v["file_index"])
            if path not in times:
                times[path] = _frame_times(path)
            for t in range(row["length"]):
                want = v["from_timestamp"] + t / fps
                if min(abs(s - want) for s in times[path]) > TOLERANCE_S:
                    problems.append(f"episode {row['episode_index']} {key}: no frame within "
                                    f"{TOLERANCE_S} s of {want:.4f} s (frame {t}) in {path}")
                    break
    return problems


def _frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(p.pts * s.time_base) for p in c.demux(s) if p.pts is not None]
