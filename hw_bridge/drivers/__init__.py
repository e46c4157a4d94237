"""Robot drivers behind the bridge, chosen by a `--robot KIND:ARG` spec through one registry.

    sim:pick_place        the MuJoCo mk6 arm with the pick_place scene (any task in sims.tasks)
    sim:panda             a described arm (sims/robots/NAME.toml) with the pick_place scene
    sim:panda/push        a described arm with another task's scene
    ur:192.168.1.10       a UR e-series arm (+ Robotiq 2F gripper) through ur_rtde (extra `ur`;
                          not yet tried on hardware)
    franka:172.16.0.2     a Franka Research 3 + Franka Hand through pylibfranka (extra `franka`;
                          tested against franka-sim, not yet tried on hardware)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from hw_bridge.drivers.base import ArmState, Driver, DriverState, Snapshot
from hw_bridge.errors import UnknownRobotError
from sims.errors import UnknownTaskError

__all__ = ["ArmState", "Driver", "DriverState", "Snapshot", "make_driver", "DRIVERS"]


DEFAULT_SIM_ROBOT, DEFAULT_SIM_TASK = "mk6", "pick_place"


def parse_sim(arg: str) -> tuple[str, str]:
    """(robot, task) of a `sim:` spec's argument: TASK (mk6), ROBOT, or ROBOT/TASK."""
    from sims.mujoco_sim import can_simulate
    from sims.robots import known_robots, load_robot
    from sims.tasks import TASKS

    described, tasks = known_robots(), sorted(TASKS)
    robots = [r for r in described if can_simulate(load_robot(r))]
    first, slash, second = arg.partition("/")
    if slash:
        robot, task = first, second or DEFAULT_SIM_TASK
    elif not arg or arg in TASKS:  # sim:TASK, as it always meant: mk6 with that task
        robot, task = DEFAULT_SIM_ROBOT, arg or DEFAULT_SIM_TASK
    elif arg in described:
        robot, task = arg, DEFAULT_SIM_TASK
    else:
        close = difflib.get_close_matches(arg, robots + tasks, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownRobotError(f"unknown robot or task {arg!r} in sim:{arg}; robots: {robots}, "
                                f"tasks: {tasks} (sim:ROBOT, sim:TASK or sim:ROBOT/TASK){hint}")
    if robot in described and robot not in robots:
        raise UnknownRobotError(f"robot {robot!r} is described for real hardware only (its "
                                f"model has no servos to simulate); simulated robots: {robots}")
    if robot not in robots:
        close = difflib.get_close_matches(robot, robots, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownRobotError(f"unknown robot {robot!r} in sim:{arg}; robots: {robots}{hint}")
    return robot, task


def _sim(arg: str, **kwargs: Any) -> Driver:
    from hw_bridge.drivers.sim import SimDriver

    robot, task = parse_sim(arg)
    return SimDriver(task, robot=robot, **kwargs)


def _ur(arg: str, **kwargs: Any) -> Driver:
    from hw_bridge.drivers.ur import URDriver  # ur_rtde itself is imported on connect()

    if not arg:
        raise UnknownRobotError("the ur driver needs the controller's address: ur:HOST")
    kwargs.pop("image_size", None)  # a UR arm brings no cameras
    return URDriver(arg, **kwargs)


def _franka(arg: str, **kwargs: Any) -> Driver:
    from hw_bridge.drivers.franka import FrankaDriver  # pylibfranka is imported on connect()

    if not arg:
        raise UnknownRobotError("the franka driver needs the robot's FCI address: franka:HOST")
    kwargs.pop("image_size", None)  # no cameras on the arm itself
    return FrankaDriver(arg, **kwargs)


DRIVERS: dict[str, Callable[..., Driver]] = {"sim": _sim, "ur": _ur, "franka": _franka}


def make_driver(spec: str, **kwargs: Any) -> Driver:
    """Build (not connect) the driver for `spec`, e.g. "sim:panda" or "ur:10.0.0.2"."""
    kind, _, arg = spec.partition(":")
    if kind not in DRIVERS:
        close = difflib.get_close_matches(kind, DRIVERS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownRobotError(f"unknown robot {spec!r}; known kinds: "
                                f"{', '.join(f'{k}:ARG' for k in DRIVERS)}{hint}")
    try:
        return DRIVERS[kind](arg, **kwargs)
    except UnknownTaskError as e:  # sim:TASK with a task the simulator does not have
        raise UnknownRobotError(f"robot {spec!r}: {e}") from None
