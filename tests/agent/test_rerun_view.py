"""`agent run --rerun FILE.rrd`: what the recording holds, read back with rerun's own reader."""

import json
import sys
from collections import Counter

import numpy as np
import pytest
from rerun.chunk import RrdReader  # rerun-sdk: in motoken[dev] and [viz]

import envs
from agent.cli import main

ENV = "mujoco:pick_place"


def _read(path):
    """Rows per entity path, and the logged action vectors in order."""
    rows, actions = Counter(), []
    for chunk in RrdReader(str(path)).stream():
        rows[chunk.entity_path] += chunk.num_rows
        if chunk.entity_path == "/action":
            batch = chunk.to_record_batch()
            ticks = batch.column("tick").to_pylist()
            values = batch.column("Scalars:scalars").to_pylist()
            actions += list(zip(ticks, values, strict=True))
    return rows, [np.array(v) for _, v in sorted(actions, key=lambda tv: tv[0])]


def test_rerun_file_holds_every_camera_action_and_state_per_tick(tmp_path, capsys):
    path = tmp_path / "run.rrd"
    assert main(["run", "--env", ENV, "--policy", "scripted", "--episodes", "1", "--rate", "0",
                 "--json", "--rerun", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    steps = summary["mean_steps"]
    rows, actions = _read(path)
    for entity in ("/camera/front", "/camera/wrist", "/action", "/state"):
        assert rows[entity] == steps, entity
    assert rows["/instruction"] == 1
    assert len(actions) == steps and all(a.shape == (7,) for a in actions)
    space, sent = envs.make(ENV).action_space, np.stack(actions)
    assert (sent >= space.low - 1e-6).all() and (sent <= space.high + 1e-6).all()  # clamped


def test_rerun_with_lookahead_logs_the_predicted_frames(video_run, tmp_path, capsys):
    path = tmp_path / "look.rrd"
    assert main(["run", "--env", ENV, "--policy", str(video_run["run"]), "--episodes", "1",
                 "--rate", "0", "--json", "--backend", "torch", "--lookahead", "2",
                 "--rerun", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows, _ = _read(path)
    assert rows["/prediction/front"] == summary["lookahead"]["decisions"] > 0


def test_rerun_target_that_is_neither_file_nor_url_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="--rerun takes 'spawn', a FILE.rrd"):
        main(["run", "--env", ENV, "--policy", "scripted", "--episodes", "1",
              "--rerun", str(tmp_path / "run.mp4")])


def test_rerun_without_rerun_sdk_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "rerun", None)  # import rerun raises ImportError
    with pytest.raises(SystemExit, match=r"needs the rerun-sdk package: pip install 'motoken\["):
        main(["run", "--env", ENV, "--policy", "scripted", "--episodes", "1", "--rerun"])
