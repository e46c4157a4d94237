"""Test-wide setup: render offscreen (EGL) whatever the machine has."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
