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

    from policies.data import rollout_demos
    from policies.train import TrainConfig, build_policy, train

    demos = rollout_demos("mujoco:pick_place", range(1))
    torch.manual_seed(0)
    cfg = TrainConfig(model="nano", steps=40, batch_size=8, lr=3e-3, warmup=5, shift_px=0,
                      checkpoint_every=10_000)
    out = tmp_path_factory.mktemp("nano_run")
    train(build_policy(demos, cfg), demos, out, cfg)
    return out, demos
