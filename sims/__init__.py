"""Simulator backends behind one interface (`sims.base.Sim`).

Backends are imported lazily so that `import sims` does not load every physics engine.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable

from sims.base import ObjectSpec, Sim

# MuJoCo picks its OpenGL backend when first imported. Without a display GLFW cannot open a
# context; EGL renders offscreen anywhere. Only a default: MUJOCO_GL set by the user wins.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"


def _mujoco(objects: list[ObjectSpec], control_dt: float, image_size: tuple[int, int],
            robot: str | None) -> Sim:
    from sims.mujoco_sim import MujocoSim

    return MujocoSim(objects, control_dt=control_dt, image_size=image_size,
                     robot=robot or "mk6")


def _pybullet(objects: list[ObjectSpec], control_dt: float, image_size: tuple[int, int],
              robot: str | None) -> Sim:
    from sims.pybullet_sim import PybulletSim

    if robot not in (None, "panda"):
        raise ValueError(f"the pybullet backend simulates the panda only, not {robot!r}; "
                         "other described arms run on mujoco")
    return PybulletSim(objects, control_dt=control_dt, image_size=image_size)


BACKENDS: dict[str, Callable[[list[ObjectSpec], float, tuple[int, int], str | None], Sim]] = {
    "mujoco": _mujoco,
    "pybullet": _pybullet,
}


def make_sim(backend: str, objects: list[ObjectSpec], control_dt: float = 0.05,
             image_size: tuple[int, int] = (128, 128), robot: str | None = None) -> Sim:
    """Build the simulator `backend` holding `objects` and the described arm `robot`
    (sims/robots/; None: the backend's own, mk6 on mujoco, the panda on pybullet)."""
    if backend not in BACKENDS:
        close = difflib.get_close_matches(backend, BACKENDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown simulator {backend!r}; known: {sorted(BACKENDS)}{hint}")
    return BACKENDS[backend](objects, control_dt, image_size, robot)
