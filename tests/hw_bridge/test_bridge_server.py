"""The server over real loopback sockets (in-process thread): handshake, command checks,
bad targets, garbage, floods, e-stop, driver faults, watchdog and reconnects."""

import os
import time

import msgpack
import numpy as np
import pytest
import zmq

from hw_bridge import wire
from hw_bridge.errors import Rejected
from tests.hw_bridge.conftest import Running, command_msg, raw_exchange, raw_socket, wait_for
from tests.hw_bridge.fakes import FlakyDriver

PERIOD = 0.05  # control period at the default 20 Hz


def test_handshake_states_everything_a_client_needs(running):
    c = running.client()
    w = c.info
    assert w["type"] == "welcome" and w["protocol"] == wire.PROTOCOL_VERSION
    assert len(w["session"]) == 16 and w["control_hz"] == 20.0 and w["arm_hz"] == 500.0
    assert w["robot"]["kinematics"] == "mk6" and len(w["robot"]["joint_names"]) == 6
    assert len(w["robot"]["joint_lower"]) == 6 and w["cameras"] == {"front": [32, 32],
                                                                    "wrist": [32, 32]}
    assert w["limits"]["watchdog_s"] == 0.1 and w["stream"]["endpoint"].startswith("tcp://")
    assert abs(c.offset) <= c._best_rtt / 2 + 1e-3  # same host, same clock: only RTT error
    assert c.status()["mode"] == "inactive"
    c.close()


def test_command_moves_and_ack_reports_the_applied_target(running):
    c = running.client()
    home = running.controller.arm.q.copy()
    ack = c.command(home + [2.5, 0, 0, 0, 0, 0], 0.5)
    assert "step" in ack["clamped"] and ack["q"][0] == pytest.approx(home[0] + 0.2, abs=1e-6)
    assert wait_for(lambda: abs(running.controller.arm.q[0] - ack["q"][0]) < 0.02)
    assert c.status()["mode"] == "active"
    c.close()


def test_bad_targets_clamped_or_rejected(running):
    c = running.client()
    q = running.controller.arm.q.copy()
    for bad in (np.full(6, np.nan), np.array([np.inf, 0, 0, 0, 0, 0])):
        with pytest.raises(Rejected, match="bad_target"):
            c.command(bad, 0.0)
    with pytest.raises(Rejected, match="bad_target"):
        c.command(q[:5], 0.0)
    ack = c.command(np.full(6, 50.0), 7.0)
    assert {"joint_limit", "step", "gripper"} <= set(ack["clamped"]) and ack["gripper"] == 1.0
    assert np.abs(ack["q"] - q).max() <= 0.2 + 1e-9
    assert running.controller.counts["executed"] == 1
    c.close()


def test_stale_duplicate_reordered_old_session_not_executed(running):
    c = running.client(heartbeat=False)
    sock = raw_socket(running.endpoint)
    q = running.controller.arm.q
    assert raw_exchange(sock, command_msg(c, q, seq=5))["type"] == "ack"
    cases = {
        "stale_seq": command_msg(c, q + 0.1, seq=5),  # duplicate
        "expired": command_msg(c, q + 0.1, seq=9, sent=c.server_now() - 1, lifetime=0.5),
        "bad_deadline": command_msg(c, q + 0.1, seq=10, lifetime=5.0),
        "bad_time": command_msg(c, q + 0.1, seq=11, sent=c.server_now() + 1.0),
    }
    for code, payload in cases.items():
        assert raw_exchange(sock, payload)["code"] == code
    assert raw_exchange(sock, command_msg(c, q + 0.1, seq=8))["code"] == "stale_seq"  # reordered
    old = c.session
    c.connect(subscribe=False)  # reconnect: new session
    c.session = old
    assert raw_exchange(sock, command_msg(c, q + 0.1, seq=100))["code"] == "unknown_session"
    assert running.controller.counts["executed"] == 1
    c.session = None
    sock.close()


def test_garbage_gets_error_replies_and_the_arm_does_not_move(running):
    c = running.client()
    goal = running.controller.governor.goal.copy()
    sock = raw_socket(running.endpoint)
    good = command_msg(c, goal, seq=1)
    payloads = [os.urandom(n) for n in (1, 7, 100, 1000)] + [good[:n] for n in (1, 10, 40)]
    payloads += [msgpack.packb({"v": 1, "type": "command", "id": 1}),
                 msgpack.packb({"v": 99, "type": "status", "id": 1}),
                 msgpack.packb({"v": 1, "type": "selfdestruct", "id": 1}), [b"a", b"b", b"c"]]
    for p in payloads:
        reply = raw_exchange(sock, p)
        assert reply is not None and reply["type"] == "error", p
    big = raw_socket(running.endpoint)
    big.send(b"\x00" * (wire.COMMAND_MAX_BYTES + 10))  # over MAXMSGSIZE: connection dropped
    assert not big.poll(300)
    np.testing.assert_array_equal(running.controller.governor.goal, goal)
    assert running.controller.counts["executed"] == 0
    assert c.status()["mode"] == "inactive"
    c.close()


def test_flood_newest_command_wins_and_queues_stay_bounded(running):
    c = running.client(heartbeat=False)
    sock = raw_socket(running.endpoint)
    sock.setsockopt(zmq.RCVHWM, 10)
    q = running.controller.arm.q.copy()
    n = 2000
    for seq in range(1, n + 1):
        sock.send(command_msg(c, q + 0.1 * seq / n, seq=seq, req_id=seq, lifetime=1.0))
    counts = running.controller.counts
    assert wait_for(lambda: counts["executed"] + counts["rejected.expired"] == n, timeout=3)
    executed = running.controller.counts["executed"]
    assert 0 < executed <= n
    np.testing.assert_allclose(running.controller.governor.goal, q + 0.1, atol=1e-9)
    sock.close()


def test_estop_latched_until_reset(running):
    c = running.client()
    q = running.controller.arm.q.copy()
    c.command(q + 0.1, 0.0)
    other = running.client()  # e-stop from anyone (here: a second connection)
    assert other.estop("test")["mode"] == "estop"
    other.close()
    c.connect(subscribe=False)
    for _ in range(3):
        with pytest.raises(Rejected, match="estop"):
            c.command(q, 0.0)
        time.sleep(0.05)
    assert c.status()["mode"] == "estop"
    c.reset(seed=1)
    assert c.status()["mode"] == "inactive"
    assert c.command(running.controller.arm.q, 0.0)["type"] == "ack"
    c.close()


@pytest.mark.parametrize("where", ["read", "write"])
def test_driver_fault_holds_and_never_resumes_by_itself(running, where):
    c = running.client()
    q = running.controller.arm.q.copy()
    c.command(q + 0.15, 0.0)
    setattr(running.driver, f"fail_{where}", True)
    assert wait_for(lambda: running.controller.mode.value == "fault")
    writes = running.driver.n_writes
    setattr(running.driver, f"fail_{where}", False)  # the fault clears; the server must not care
    time.sleep(0.2)
    with pytest.raises(Rejected, match="fault"):
        c.command(q, 0.0)
    assert running.controller.mode.value == "fault" and running.driver.n_writes == writes
    c.reset(seed=2)
    assert c.status()["mode"] == "inactive"
    c.close()


def test_watchdog_stops_a_silent_client():
    # The arm loop runs real-time here (if the machine allows), as `serve --rt-priority` would:
    # what is measured is the watchdog, not how late a loaded machine wakes the loop.
    running = Running(FlakyDriver("reach", image_size=(16, 16)), rt_priority=20)
    try:
        _watchdog_case(running)
    finally:
        running.close()


def _watchdog_case(running: Running) -> None:
    c = running.client(heartbeat=False)
    q = running.controller.arm.q.copy()
    c.command(q + 0.2, 0.0, lifetime_s=0.5)
    assert wait_for(lambda: running.controller.mode.value == "hold", timeout=1.0)
    ev = running.controller.events
    assert wait_for(lambda: ev["stopped"] >= ev["hold"] > 0)
    assert ev["stopped"] - ev["last_rx"] <= 0.1 + PERIOD
    assert "watchdog" in running.controller.reason
    with pytest.raises(Rejected, match="unknown_session"):
        c.command(q, 0.0)
    c.session = None


def test_heartbeats_keep_a_session_alive_and_hold_in_place(running):
    c = running.client()
    c.command(running.controller.arm.q + 0.05, 0.0)
    time.sleep(0.4)  # 4 watchdog periods of heartbeats only
    assert c.status()["mode"] == "active" and running.controller.governor.stopped
    c.close()


def test_reconnect_mid_motion_decelerates_without_a_jump(running):
    lim = running.driver.limits
    c = running.client()
    q = running.controller.arm.q.copy()
    running.driver.record.set()
    for i in range(6):
        c.command(q + 0.2 * (i + 1), 0.0)
        time.sleep(0.02)
    c2 = running.client()  # a new session takes over mid-motion
    assert c2.status()["mode"] == "hold"
    assert wait_for(lambda: running.controller.governor.stopped)
    time.sleep(0.05)
    running.driver.record.clear()
    steps = np.abs(np.diff(np.array(running.driver.writes), axis=0)).max(axis=1)
    # between two writes at most a few periods elapse (late wake-ups run them together)
    assert steps.max() <= lim.max_velocity * 0.002 * 5 + 1e-9
    c2.close()
    c.session = None


def test_gap_after_a_command_moves_at_most_one_step(running):
    lim = running.driver.limits
    c = running.client()
    sp = running.controller.governor.setpoint.copy()
    running.driver.record.set()
    c.command(sp + np.array([1.0, -1.0, 0.5, 0, 0, 0]), 0.0)  # clamped to 0.2 rad per joint
    time.sleep(0.4)  # a gap of 8 periods, heartbeats only
    running.driver.record.clear()
    moved = np.abs(np.array(running.driver.writes) - sp).max()
    assert lim.max_step - 0.01 < moved <= lim.max_step + 1e-9
    c.close()
