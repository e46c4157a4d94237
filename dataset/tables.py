"""Parquet I/O for the three tables of a v3.0 dataset: frames, episodes, tasks (pyarrow only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataset.layout import (
    CAPTURE_TIME_KEY,
    ENV_STATE_KEY,
    EXPERT_ACTION_KEY,
    INTERVENTION_KEY,
    SUCCESS_KEY,
)

# pandas reads `task` back as the index (LeRobot looks tasks up with `tasks.loc[task]`).
_TASKS_PANDAS_META = {
    "index_columns": ["task"], "column_indexes": [],
    "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                 "numpy_type": "int64", "metadata": None},
                {"name": "task", "field_name": "task", "pandas_type": "unicode",
                 "numpy_type": "object", "metadata": None}],
}


def frames_table(state: np.ndarray, action: np.ndarray, next_success: np.ndarray,
                 episode_index: int, first_index: int, task_index: int, fps: int,
                 expert_action: np.ndarray | None = None,
                 env_state: np.ndarray | None = None,
                 intervention: np.ndarray | None = None,
                 capture_time: np.ndarray | None = None) -> pa.Table:
    """One episode's rows; vectors as fixed-size lists (HF `Sequence(length=D)`).

    `expert_action` (T, A) becomes a column right after `action` when given (noisy collection),
    `env_state` (T, E) the `observation.environment_state` column (simulator ground truth),
    `intervention` (T,) bool the INTERVENTION_KEY column (who acted), `capture_time` (T,) the
    `complementary_info.capture_time` column (s from the first frame).
    """
    n = len(state)
    frame_index = np.arange(n, dtype=np.int64)
    cols = {"observation.state": _fixed_list(state.astype(np.float32))}
    if env_state is not None:
        cols[ENV_STATE_KEY] = _fixed_list(env_state.astype(np.float32))
    cols["action"] = _fixed_list(action.astype(np.float32))
    if expert_action is not None:
        cols[EXPERT_ACTION_KEY] = _fixed_list(expert_action.astype(np.float32))
    if capture_time is not None:
        cols[CAPTURE_TIME_KEY] = pa.array(capture_time.astype(np.float32))
    cols[SUCCESS_KEY] = pa.array(next_success.astype(bool))
    if intervention is not None:
        cols[INTERVENTION_KEY] = pa.array(intervention.astype(bool))
    cols |= {
        "timestamp": pa.array((frame_index / fps).astype(np.float32)),
        "frame_index": pa.array(frame_index),
        "episode_index": pa.array(np.full(n, episode_index, dtype=np.int64)),
        "index": pa.array(np.arange(first_index, first_index + n, dtype=np.int64)),
        "task_index": pa.array(np.full(n, task_index, dtype=np.int64)),
    }
    return pa.table(cols)


def _fixed_list(x: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])


def read_rows_before(path: Path, episode_index: int) -> pa.Table | None:
    """The rows of `path` that belong to episodes < episode_index (None if no file)."""
    if not path.exists():
        return None
    table = pq.read_table(path)
    return table.filter(pc.less(table["episode_index"], episode_index))


def write_table(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def concat(base: pa.Table | None, new: pa.Table) -> pa.Table:
    if base is None or base.num_rows == 0:
        return new
    return pa.concat_tables([base, new], promote_options="permissive")


def episodes_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows)


def tasks_table(tasks: dict[str, int]) -> pa.Table:
    items = sorted(tasks.items(), key=lambda kv: kv[1])
    table = pa.table({"task_index": pa.array([i for _, i in items], pa.int64()),
                      "task": pa.array([t for t, _ in items], pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(_TASKS_PANDAS_META).encode()})


def read_tasks(path: Path) -> dict[str, int]:
    """task string -> task_index, whatever the index column is called."""
    if not path.exists():
        return {}
    table = pq.read_table(path)
    names = [c for c in table.column_names if c != "task_index"]
    return dict(zip(table[names[0]].to_pylist(), table["task_index"].to_pylist(), strict=True))
