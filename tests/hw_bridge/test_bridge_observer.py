"""Observers (`describe` + the stream, no `hello`): they watch an arm another client drives and
can never move it or end that client's session."""

from __future__ import annotations

import numpy as np
import pytest

from hw_bridge import wire
from hw_bridge.client import BridgeClient
from hw_bridge.errors import NotConnected
from tests.hw_bridge.conftest import raw_exchange, raw_socket, wait_for


def test_an_observer_reads_the_arm_without_touching_the_driving_session(running):
    driver = running.client()
    session = driver.session
    home = np.array(driver.info["robot"]["home"])
    driver.command(home + 0.1, 0.0)
    observer = BridgeClient(running.endpoint)
    info = observer.observe()
    try:
        assert info["type"] == "describe" and "session" not in info
        assert info["robot"] == driver.info["robot"] and info["stream"] == driver.info["stream"]
        frame = observer.observation(timeout_s=2.0)
        assert frame["state"].shape == (len(home) + 8,)
        # Still the driver's session, still active, and the driver's commands still run.
        assert running.controller.session.id == session
        assert driver.command(home + 0.15, 0.0)["seq"] > 0
        assert running.controller.mode.value == "active"
        with pytest.raises(NotConnected):
            observer.command(home, 0.0)
        with pytest.raises(NotConnected):
            observer.reset()
        # The observer sees the motion the driver makes.
        assert wait_for(lambda: np.abs(observer.observation(timeout_s=1.0)["state"][0]
                                       - frame["state"][0]) > 0.01, timeout=3.0)
    finally:
        observer.close()  # no session: sends no bye
    assert running.controller.session is not None
    assert running.controller.session.id == session
    assert driver.session_error is None
    driver.close()


def test_describe_needs_no_session_and_refuses_nothing_else(running):
    sock = raw_socket(running.endpoint)
    reply = raw_exchange(sock, wire.encode(wire.request("describe", 7)))
    assert reply["type"] == "describe" and reply["ref"] == 7
    assert reply["robot"]["max_gripper_opening"] > 0 and reply["control_hz"] > 0
    assert running.controller.session is None  # describing opened nothing
    sock.close()
