"""The UR driver with its Robotiq 2F-85: fakes at ur_rtde's boundary and a fake URCap socket
server on loopback (real TCP, the URCap's ASCII protocol), behind a real bridge server."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pytest

from hw_bridge.drivers import make_driver
from hw_bridge.errors import DriverFault, Rejected
from tests.hw_bridge.conftest import Running, wait_for
from tests.hw_bridge.fake_ur import FakeUR, FakeURCap


@pytest.fixture
def ur(monkeypatch) -> FakeUR:
    fake = FakeUR()
    for name, module in fake.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    return fake


@pytest.fixture
def urcap() -> Iterator[FakeURCap]:
    cap = FakeURCap()
    yield cap
    cap.drop()


@pytest.fixture
def served(ur, urcap) -> Iterator[Running]:
    r = Running(make_driver("ur:127.0.0.1", gripper_port=urcap.port))
    yield r
    r.close()


def test_the_gripper_command_is_clamped_sent_and_its_width_reported(served, urcap, ur):
    c = served.client()
    assert c.info["robot"]["max_gripper_opening"] == 0.085
    q = served.controller.arm.q
    ack = c.command(q, 0.5)
    assert ack["gripper"] == 0.5
    assert wait_for(lambda: "SET POS 128" in urcap.sets)  # round(255 * 0.5)
    assert served.driver.sent_width == pytest.approx(0.085 * (1 - 128 / 255))
    assert wait_for(lambda: abs(served.controller.arm.gripper - 0.085 * (1 - 128 / 255)) < 1e-9)
    ack = c.command(q, 7.0)  # beyond closed: the server clips to 1, the driver to 0 mm
    assert ack["gripper"] == 1.0 and "gripper" in ack["clamped"]
    assert wait_for(lambda: "SET POS 255" in urcap.sets)
    assert wait_for(lambda: served.controller.arm.gripper == 0.0)
    assert served.driver.sent_width == 0.0
    assert all(s.startswith("SET") for s in urcap.sets) and "SET POS 256" not in urcap.sets
    assert np.allclose(ur.servo[-1], served.controller.governor.setpoint, atol=1e-3)
    c.close()


def test_an_inactive_gripper_is_activated_on_connect(ur):
    cap = FakeURCap(active=False)
    try:
        driver = make_driver("ur:127.0.0.1", gripper_port=cap.port)
        driver.connect()
        assert cap.sets[0] == "SET ACT 1" and cap.regs["STA"] == 3
        assert "SET SPE 255 FOR 100 GTO 1" in cap.sets
        assert driver.read().gripper == pytest.approx(0.085)  # POS 0: open
        driver.disconnect()
    finally:
        cap.drop()


def test_a_lost_gripper_socket_or_a_gripper_fault_latches_fault(served, urcap):
    c = served.client()
    c.command(served.controller.arm.q, 0.2)
    assert wait_for(lambda: any(s.startswith("SET POS") for s in urcap.sets))
    urcap.set_fault(0x08)  # e.g. "minimum operating voltage not reached"
    assert wait_for(lambda: c.status()["mode"] == "fault")
    assert "Robotiq gripper" in c.status()["reason"] and "fault 8" in c.status()["reason"]
    with pytest.raises(Rejected, match="fault"):
        c.command(served.controller.arm.q, 0.0)
    c.close()


def test_a_dropped_urcap_connection_is_a_fault(served, urcap):
    c = served.client()
    urcap.drop()
    assert wait_for(lambda: c.status()["mode"] == "fault")
    assert "Robotiq gripper at 127.0.0.1" in c.status()["reason"]
    c.close()


def test_no_urcap_is_a_driver_fault_and_the_arm_can_go_without_a_gripper(ur):
    with pytest.raises(DriverFault, match=r"no Robotiq URCap at 127.0.0.1:1\b"):
        make_driver("ur:127.0.0.1", gripper_port=1).connect()  # nothing listens on port 1
    driver = make_driver("ur:127.0.0.1", gripper=None)
    driver.connect()
    assert driver.robot.max_gripper_opening == 0.0 and driver.read().gripper == 0.0
    driver.write(driver.read().q, 1.0)
    assert driver.sent_width is None
    driver.disconnect()
