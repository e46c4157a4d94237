"""agent/takes.py: takes encode while recorded, the saver commits them in order in the
background, a discarded take leaves no file, a failed save stops saving and keeps what was
committed (real encoder, real files)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from agent.takes import RecordError, Saver, Take, _Thinned
from dataset import LeRobotDatasetReader
from dataset.layout import DatasetSpec
from dataset.writer import DatasetWriter
from envs.types import Observation

SPEC = DatasetSpec(fps=10, robot_type="test", cameras=("front",), image_shape=(64, 64, 3),
                   state_names=("a", "b"), action_names=tuple("1234567"), capture_time=True)


def _take(writer: DatasetWriter, name: str, frames: int, level: int,
          spec: DatasetSpec = SPEC) -> Take:
    take = Take.start(spec, writer.staging, name)
    t0 = time.monotonic()
    for i in range(frames):
        image = np.full((64, 64, 3), level + i, np.uint8)
        obs = Observation({"front": image}, np.array([i, level], np.float32), "x")
        take.add(obs, np.full(7, i / 100, np.float32), i == frames - 1, t0 + 0.1 * i)
    return take


def test_takes_commit_in_order_and_a_discarded_take_leaves_nothing(tmp_path):
    writer = DatasetWriter.create(tmp_path / "ds", SPEC)
    saver = Saver(writer)
    saver.submit(_take(writer, "a", 12, 10).finish(7, "first task"))
    dropped = _take(writer, "b", 5, 50)
    dropped.discard()
    saver.submit(_take(writer, "c", 8, 90).finish(8, "second task"))
    saved = saver.close()
    assert [(s.index, s.seed, s.frames) for s in saved] == [(0, 7, 12), (1, 8, 8)]
    assert not list(writer.staging.glob("b-*")) and saver.pending == 0
    writer.close()
    ds = LeRobotDatasetReader(tmp_path / "ds")
    assert ds.tasks == ["first task", "second task"]
    first, second = ds.episode(0), ds.episode(1)
    assert first.success and first.state[:, 1].tolist() == [10] * 12
    np.testing.assert_allclose(first.action[:, 0], np.arange(12) / 100, atol=1e-7)
    np.testing.assert_allclose(second.capture_time, 0.1 * np.arange(8), atol=1e-5)
    assert ds.frames(1, "front").shape == (8, 64, 64, 3)
    assert abs(int(ds.frames(1, "front")[3].mean()) - 93) <= 2  # lossy codec


def test_a_failed_save_stops_saving_and_keeps_what_was_committed(tmp_path):
    writer = DatasetWriter.create(tmp_path / "ds", SPEC)
    saver = Saver(writer)
    saver.submit(_take(writer, "a", 6, 10).finish(0, "t"))
    wrong = dataclasses.replace(SPEC, capture_time=False)  # the writer refuses its record
    saver.submit(_take(writer, "b", 6, 20, wrong).finish(1, "t"))
    deadline = time.monotonic() + 30
    while saver.error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(RecordError, match="saving stopped after an error: .*capture times"):
        saver.submit(_take(writer, "c", 6, 30).finish(2, "t"))
    with pytest.raises(RecordError, match="capture times"):
        saver.close()
    assert [s.index for s in saver.saved] == [0]
    writer.close()
    assert LeRobotDatasetReader(tmp_path / "ds").num_episodes == 1


def test_thinned_keeps_evenly_spaced_frames_within_its_cap():
    thin = _Thinned()
    frames = [np.full((1,), i) for i in range(1000)]
    for f in frames:
        thin.add(f)
    kept = [int(f[0]) for f in thin.kept]
    assert 128 <= len(kept) <= 256 and kept[0] == 0
    assert len(set(np.diff(kept))) == 1  # one stride
