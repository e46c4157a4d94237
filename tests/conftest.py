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
