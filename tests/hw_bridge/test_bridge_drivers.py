"""Driver registry and the UR driver's lazy import (ur_rtde is an optional extra)."""

import importlib.util

import pytest

from hw_bridge.drivers import make_driver
from hw_bridge.errors import DriverFault, UnknownRobotError


def test_unknown_robot_lists_known_kinds_and_suggests():
    with pytest.raises(UnknownRobotError, match=r"sim:ARG, ur:ARG, franka:ARG; did you mean 'sim'"):
        make_driver("simm:pick_place")


def test_unknown_task_is_refused_before_anything_starts():
    with pytest.raises(KeyError, match="pick_place"):
        make_driver("sim:pick_plac")


@pytest.mark.skipif(importlib.util.find_spec("rtde_control") is not None,
                    reason="ur_rtde installed: connect() would try the network")
def test_ur_driver_builds_without_ur_rtde_and_says_how_to_get_it():
    driver = make_driver("ur:192.0.2.1")  # TEST-NET address: never reachable
    assert driver.robot.name == "ur5e" and driver.cameras == {}
    with pytest.raises(DriverFault, match=r"pip install 'motoken\[ur\]'"):
        driver.connect()
