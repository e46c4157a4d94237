"""A damaged --policy checkpoint: `agent run`, `eval`, `collect`, `export` and `train --init`
print one line naming the file and exit 2 (real CLI, real copies of checkpoints/default)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ENV, collect, fails_with_one_line

from policies.model.token_policy import is_checkpoint
from policies.registry import DEFAULT_CHECKPOINT

pytestmark = pytest.mark.skipif(not is_checkpoint(DEFAULT_CHECKPOINT),
                                reason="no default checkpoint in this checkout")
ROOT = Path(__file__).resolve().parents[2]


def _copy(tmp_path: Path, name: str = "ckpt") -> Path:
    ckpt = tmp_path / name
    shutil.copytree(DEFAULT_CHECKPOINT, ckpt)
    return ckpt


@pytest.fixture
def empty_weights(tmp_path: Path) -> Path:
    ckpt = _copy(tmp_path, "empty_weights")
    (ckpt / "model.safetensors").write_bytes(b"")
    return ckpt


@pytest.fixture
def wrong_d_model(tmp_path: Path) -> Path:
    ckpt = _copy(tmp_path, "wrong_d_model")
    meta = json.loads((ckpt / "config.json").read_text())
    meta["model"]["d_model"] = 64
    (ckpt / "config.json").write_text(json.dumps(meta))
    return ckpt


def test_run_and_eval(empty_weights: Path, wrong_d_model: Path, capsys):
    for ckpt in (empty_weights, wrong_d_model):
        for cmd in ("run", "eval"):
            line = fails_with_one_line([cmd, "--env", ENV, "--policy", str(ckpt),
                                        "--episodes", "1"], capsys)
            assert str(ckpt / "model.safetensors") in line and "re-train" in line


def test_config_that_is_not_json(tmp_path: Path, capsys):
    ckpt = _copy(tmp_path)
    (ckpt / "config.json").write_text('{"format": "motoken.token_pol')
    line = fails_with_one_line(["run", "--env", ENV, "--policy", str(ckpt)], capsys)
    assert f"{ckpt / 'config.json'} cannot be read as JSON" in line
    assert "is damaged" in line and "loaders registered" not in line


def test_collect_writes_nothing(wrong_d_model: Path, tmp_path: Path, capsys):
    out = tmp_path / "ds"
    line = fails_with_one_line(["collect", "--env", ENV, "--policy", str(wrong_d_model),
                                "--episodes", "1", "--out", str(out)], capsys)
    assert "does not fit" in line and str(wrong_d_model / "config.json") in line
    assert not out.exists()


def test_export_and_train_init(empty_weights: Path, tmp_path: Path, capsys):
    line = fails_with_one_line(["export", "--policy", str(empty_weights), "--out",
                                str(tmp_path / "onnx")], capsys)
    assert str(empty_weights / "model.safetensors") in line
    assert not (tmp_path / "onnx").exists()
    data = tmp_path / "reach"  # train reads its --data before the --init checkpoint
    assert collect(data, "--vcodec", "h264", env="mujoco:reach", episodes=1) == 0
    line = fails_with_one_line(["train", "--data", str(data), "--init", str(empty_weights),
                                "--out", str(tmp_path / "run")], capsys)
    assert line.startswith(f"error: --init {empty_weights}: {empty_weights}/model.safetensors "
                           f"cannot be read")
    assert not (tmp_path / "run").exists()


def test_exit_code_and_output_of_the_real_process(empty_weights: Path):
    """In a real process: the interpreter exits 2 and prints nothing after our line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": "egl"}
    proc = subprocess.run([sys.executable, "-m", "agent", "run", "--env", ENV, "--policy",
                           str(empty_weights)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"error: {empty_weights / 'model.safetensors'} cannot be read")
