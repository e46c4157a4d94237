"""Shared test setup: headless rendering for every test."""

import os

# MuJoCo reads MUJOCO_GL when it is first imported; EGL renders without a display.
os.environ.setdefault("MUJOCO_GL", "egl")
