"""Crash safety: kill -9 mid-recording, a crash mid-commit, a full disk; then --resume."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import ENV, collect

from dataset import LeRobotDatasetReader, tables, writer
from dataset.video import duration_s

REPO = Path(__file__).resolve().parents[2]


def _committed(out: Path) -> int:
    try:
        return json.loads((out / "meta/info.json").read_text())["total_episodes"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def _check_consistent(out: Path) -> LeRobotDatasetReader:
    """Every committed episode complete: rows, frames, metadata agree; nothing else on disk."""
    ds = LeRobotDatasetReader(out)
    total = 0
    for k in range(ds.num_episodes):
        ep = ds.episode(k)
        meta = ds.episode_meta(k)
        assert ep.length == meta["length"] == meta["dataset_to_index"] - meta["dataset_from_index"]
        assert meta["dataset_from_index"] == total
        assert ds.frames(k, "front").shape[0] == ep.length
        total += ep.length
    assert total == ds.num_frames
    if ds.num_episodes:
        assert ds.stats["action"]["count"].tolist() == [ds.num_frames]
    return ds


def test_kill_9_loses_at_most_the_episode_in_progress_then_resume_completes(tmp_path: Path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "agent", "collect", "--env", ENV, "--policy", "scripted",
           "--episodes", "5", "--episodes-per-file", "2", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": "egl"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _committed(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # land somewhere inside the next episode (or its commit)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "collect finished before it could be killed"
    survived = _check_consistent(out).num_episodes
    assert 2 <= survived < 5
    assert collect(out, "--resume", "--episodes-per-file", "2", episodes=5) == 0
    ds = _check_consistent(out)
    assert ds.num_episodes == 5 and [ds.episode(k).seed for k in range(5)] == list(range(5))
    assert not list(out.rglob("*.tmp")) and not (out / ".staging").exists()


def test_crash_inside_commit_leaves_a_readable_dataset_and_resume_trims(tmp_path: Path,
                                                                        monkeypatch):
    out = tmp_path / "torn"
    assert collect(out, "--episodes-per-file", "3", episodes=1) == 0
    real_replace = os.replace

    def replace_then_die(src, dst):  # videos and data renamed, episodes table and info not
        real_replace(src, dst)
        if str(dst).endswith("data/chunk-000/file-000.parquet"):
            raise KeyboardInterrupt  # stands in for the process dying right here

    monkeypatch.setattr(writer.os, "replace", replace_then_die)
    assert collect(out, "--resume", "--episodes-per-file", "3", episodes=2) == 130
    monkeypatch.undo()
    data = out / "data/chunk-000/file-000.parquet"
    assert pq.read_metadata(data).num_rows > _check_consistent(out).num_frames  # torn tail
    assert _check_consistent(out).num_episodes == 1
    assert collect(out, "--resume", "--episodes-per-file", "3", episodes=3) == 0
    ds = _check_consistent(out)
    assert ds.num_episodes == 3 and pq.read_metadata(data).num_rows == ds.num_frames
    end = ds.episode_meta(2)["videos/observation.images.wrist/to_timestamp"]
    assert abs(duration_s(out / "videos/observation.images.wrist/chunk-000/file-000.mp4")
               - end) < 1e-6


def test_disk_full_is_a_clear_error_and_committed_episodes_stay(tmp_path: Path, monkeypatch,
                                                                capsys):
    out = tmp_path / "full"
    assert collect(out, episodes=2) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real_write = tables.write_table

    def full_disk(table, path):
        real_write(table, path)  # part of the file made it, then the disk filled up
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(tables, "write_table", full_disk)
    assert collect(out, "--resume", episodes=3) == 1
    err = capsys.readouterr().err
    assert "disk is full" in err and "2 episodes already committed are intact" in err
    monkeypatch.undo()
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # not a byte changed, no temp file left
    assert collect(out, "--resume", episodes=3) == 0
    assert _check_consistent(out).num_episodes == 3


def test_failed_episodes_are_dropped_or_kept_and_marked(tmp_path: Path, monkeypatch):
    from agent import recorder

    real_record = recorder.EpisodeRecorder.record

    def odd_seeds_fail(self, seed):
        ep = real_record(self, seed)
        if seed % 2:
            object.__setattr__(ep, "success", False)
            ep.next_success[:] = False
        return ep

    monkeypatch.setattr(recorder.EpisodeRecorder, "record", odd_seeds_fail)
    dropped, kept = tmp_path / "dropped", tmp_path / "kept"
    assert collect(dropped, episodes=2) == 0
    assert collect(kept, "--keep-failed", episodes=2) == 0
    d, k = LeRobotDatasetReader(dropped), LeRobotDatasetReader(kept)
    assert [d.episode(i).seed for i in range(2)] == [0, 2]
    assert [(k.episode(i).seed, k.episode(i).success) for i in range(2)] == [(0, True),
                                                                            (1, False)]
    assert not np.any(k.episode(1).next_success)


@pytest.mark.parametrize("episodes_per_file", ["1"])
def test_resume_appends_after_last_episode_in_a_new_file(tmp_path: Path, episodes_per_file):
    out = tmp_path / "r"
    assert collect(out, "--episodes-per-file", episodes_per_file, episodes=1) == 0
    assert collect(out, "--resume", "--episodes-per-file", episodes_per_file, episodes=2) == 0
    ds = _check_consistent(out)
    assert [ds.episode(k).seed for k in range(2)] == [0, 1]
    assert (out / "data/chunk-000/file-001.parquet").exists()


def test_error_while_renaming_rolls_back_to_the_last_commit(tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "rename"
    assert collect(out, episodes=1) == 0
    real_replace = os.replace

    def fail_on_episodes_table(src, dst):  # videos and data already renamed by then
        if "meta/episodes/" in str(dst) and str(src).endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(writer.os, "replace", fail_on_episodes_table)
    assert collect(out, "--resume", episodes=2) == 1
    assert "disk is full" in capsys.readouterr().err
    monkeypatch.undo()
    ds = _check_consistent(out)
    data = out / "data/chunk-000/file-000.parquet"
    assert ds.num_episodes == 1 and pq.read_metadata(data).num_rows == ds.num_frames
    assert not list(out.rglob("*.tmp"))
