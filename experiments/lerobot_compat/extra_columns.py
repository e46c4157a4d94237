"""Copies of a motoken dataset with extra per-frame columns added by hand (pyarrow + info.json),
to learn which spellings of a bool and a float32 feature LeRobot's loader accepts.

The columns stand for the ones other branches add: `intervention` (bool: a human acted this
frame) and `observation.capture_time` (float32 seconds). Their values are a function of the
frame's global `index` (`values`), so check.py can compare what LeRobot returns per frame.

`PROBES` are spellings tried to learn the answer, not formats motoken writes: one failing is a
finding, not a failed check. `scalar` is the spelling LeRobot itself writes (its `next.done`,
motoken's `next.success`): feature {"dtype": "bool", "shape": [1]} over a plain bool column.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BOOL, FLOAT = "intervention", "observation.capture_time"
PROBES = ("extra/bool_as_list1", "extra/bool_shape_empty", "extra/bool_dtype_boolean")


def values(index: np.ndarray) -> dict[str, np.ndarray]:
    """The extra columns' values for frames with global `index`."""
    return {BOOL: index % 3 == 0, FLOAT: (1000.0 + 0.05 * index).astype(np.float32)}


def _scalar(arr: np.ndarray) -> pa.Array:
    return pa.array(arr)


def _list1(arr: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(arr), 1)


# name -> (how the bool column is stored, its info.json feature)
_BOOL_SPELLINGS: dict[str, tuple[Callable[[np.ndarray], pa.Array], dict]] = {
    "extra/scalar": (_scalar, {"dtype": "bool", "shape": [1], "names": None}),
    "extra/bool_as_list1": (_list1, {"dtype": "bool", "shape": [1], "names": None}),
    "extra/bool_shape_empty": (_scalar, {"dtype": "bool", "shape": [], "names": None}),
    "extra/bool_dtype_boolean": (_scalar, {"dtype": "boolean", "shape": [1], "names": None}),
}
_FLOAT_FEATURE = {"dtype": "float32", "shape": [1], "names": None}


def add_columns(src: Path, out: Path, store_bool: Callable[[np.ndarray], pa.Array],
                bool_feature: dict) -> Path:
    """A copy of `src` at `out` whose frames also have BOOL and FLOAT (float32, plain column)."""
    shutil.copytree(src, out, ignore=shutil.ignore_patterns(".lock"))
    for path in sorted((out / "data").glob("*/*.parquet")):
        table = pq.read_table(path)
        v = values(table["index"].to_numpy())
        # New columns go before LeRobot's default ones, where its writer puts features.
        at = table.column_names.index("timestamp")
        table = table.add_column(at, BOOL, store_bool(v[BOOL]))
        table = table.add_column(at + 1, FLOAT, _scalar(v[FLOAT]))
        pq.write_table(table, path, compression="snappy")
    info_path = out / "meta/info.json"
    info = json.loads(info_path.read_text())
    info["features"] = {**{k: f for k, f in info["features"].items() if k != "timestamp"
                           and k not in ("frame_index", "episode_index", "index", "task_index")},
                        BOOL: bool_feature, FLOAT: _FLOAT_FEATURE,
                        **{k: info["features"][k] for k in ("timestamp", "frame_index",
                                                            "episode_index", "index",
                                                            "task_index")}}
    info_path.write_text(json.dumps(info, indent=4))
    return out


def variants(src: Path, work: Path) -> dict[str, Path]:
    """One copy of `src` per bool spelling, under `work`."""
    work.mkdir(parents=True, exist_ok=True)
    return {name: add_columns(src, work / name.split("/")[1], store, feature)
            for name, (store, feature) in _BOOL_SPELLINGS.items()}
