"""Fixtures shared by the collect/dataset/replay tests: one small real dataset per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main

ENV = "mujoco:pick_place"


def collect(out: Path, *extra: str, episodes: int = 3) -> int:
    """`agent collect` in-process; returns its exit code."""
    return main(["collect", "--env", ENV, "--policy", "scripted", "--episodes", str(episodes),
                 "--out", str(out), *extra])


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 scripted pick-place episodes, 2 per file (so episodes span two files of each kind)."""
    out = tmp_path_factory.mktemp("ds") / "pp3"
    assert collect(out, "--episodes-per-file", "2") == 0
    return out


@pytest.fixture(scope="session")
def video_run(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tokenizer and a nano run trained through `agent train --tokenizer` (a few steps), with
    the trained policy and video head as they were in memory (to compare with what loads)."""
    import policies.train

    root = tmp_path_factory.mktemp("video")
    tok, run = root / "tok", root / "run"
    assert main(["train-tokenizer", "--data", str(small_dataset), "--out", str(tok), "--config",
                 "tiny", "--steps", "3", "--batch-size", "2", "--frame-stride", "20",
                 "--cameras", "front"]) == 0
    seen: dict = {}
    real_train = policies.train.train

    def capture(policy, demos, out, cfg, **kw):
        seen.update(policy=policy, video=kw.get("video"), demos=demos)
        return real_train(policy, demos, out, cfg, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(policies.train, "train", capture)
        assert main(["train", "--data", str(small_dataset), "--out", str(run), "--config",
                     "nano", "--batch-size", "4", "--steps", "4", "--tokenizer", str(tok),
                     "--video-horizon", "4"]) == 0
    return {"tok": tok, "run": run, **seen}
