"""Shared test setup: headless rendering for every test."""

import os

# MuJoCo reads MUJOCO_GL when it is first imported; EGL renders without a display.
os.environ.setdefault("MUJOCO_GL", "egl")

# One torch thread per test process: the suite runs on 2-core machines next to simulators and
# subprocesses, where extra intra-op threads only oversubscribe the cores.
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # torch-free parts of the suite still run
    pass


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def nano_checkpoint(tmp_path_factory):
    """A briefly trained nano token policy on one scripted episode: (policy dir, demos)."""
    import torch

    from agent.rollout import rollout_demos
    from policies.training.train import TrainConfig, build_policy, train

    demos = rollout_demos("mujoco:pick_place", range(1))
    torch.manual_seed(0)
    cfg = TrainConfig(model="nano", steps=40, batch_size=8, lr=3e-3, warmup=5, shift_px=0,
                      checkpoint_every=10_000)
    out = tmp_path_factory.mktemp("nano_run")
    train(build_policy(demos, cfg), demos, out, cfg)
    return out, demos


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> object:
    """3 scripted pick-place episodes, 2 per file (so episodes span two files of each kind)."""
    from agent.cli import main

    out = tmp_path_factory.mktemp("ds") / "pp3"
    assert main(["collect", "--env", "mujoco:pick_place", "--policy", "scripted", "--episodes",
                 "3", "--out", str(out), "--episodes-per-file", "2"]) == 0
    return out


@pytest.fixture(scope="session")
def video_run(small_dataset, tmp_path_factory) -> dict:
    """A tokenizer and a nano run trained through `agent train --tokenizer` (a few steps), with
    the trained policy and video head as they were in memory (to compare with what loads)."""
    import policies.training.train
    from agent.cli import main

    root = tmp_path_factory.mktemp("video")
    tok, run = root / "tok", root / "run"
    assert main(["train-tokenizer", "--data", str(small_dataset), "--out", str(tok), "--config",
                 "tiny", "--steps", "3", "--batch-size", "2", "--frame-stride", "20",
                 "--cameras", "front"]) == 0
    seen: dict = {}
    real_train = policies.training.train.train

    def capture(policy, demos, out, cfg, **kw):
        seen.update(policy=policy, video=kw.get("video"), demos=demos)
        return real_train(policy, demos, out, cfg, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(policies.training.train, "train", capture)
        assert main(["train", "--data", str(small_dataset), "--out", str(run), "--config",
                     "nano", "--batch-size", "4", "--steps", "4", "--tokenizer", str(tok),
                     "--video-horizon", "4"]) == 0
    return {"tok": tok, "run": run, **seen}
