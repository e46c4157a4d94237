"""The franka driver against franka-sim: libfranka's own network protocol (robot server
version 10) served by a MuJoCo FR3, here on a loopback address. Slow (each test starts one).

Needs pylibfranka in this venv (`pip install -e '.[franka]'`) and franka-sim in a venv of its
own (it pins mujoco<3.3 and numpy==1.26.4): `make franka-sim` builds `.venv-franka-sim`;
`FRANKA_SIM_PYTHON` names another interpreter. Missing either, the tests skip and say so.
"""

from __future__ import annotations

import importlib.util
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hw_bridge.client import BridgeClient, ClientConfig
from hw_bridge.drivers import make_driver
from hw_bridge.errors import DriverFault, Rejected
from tests.hw_bridge.conftest import ROOT, Running, wait_for

pytestmark = pytest.mark.slow
SIM_PYTHON = Path(os.environ.get("FRANKA_SIM_PYTHON", ROOT / ".venv-franka-sim/bin/python"))
FCI_PORT = 1337  # libfranka always connects here (the hand: 1338), so each sim gets an address
INITIAL_Q = np.array([0.0, 0.0, 0.0, -1.57, 0.0, 1.57, 0.785])  # franka-sim's start pose

if importlib.util.find_spec("pylibfranka") is None:
    pytest.skip("pylibfranka not installed: pip install -e '.[franka]'", allow_module_level=True)
if not SIM_PYTHON.exists():
    pytest.skip(f"no franka-sim interpreter at {SIM_PYTHON}: run `make franka-sim` or set "
                "FRANKA_SIM_PYTHON", allow_module_level=True)


class FrankaSim:
    """franka-sim as a subprocess on 127.0.0.X, ready when its FCI port accepts."""

    def __init__(self) -> None:
        self.host = self._free_address()
        self.log = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
        self.proc = subprocess.Popen(
            [str(SIM_PYTHON), str(ROOT / "tests/hw_bridge/franka_sim_server.py"), self.host],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        first = self.proc.stdout.readline()
        if not first.startswith("STARTING"):
            self.kill()
            raise RuntimeError(f"franka-sim did not start: {first}{self.proc.stdout.read()}")
        if not wait_for(self._listening, timeout=60, step=0.2):
            self.kill()
            raise RuntimeError(f"franka-sim on {self.host} never listened on {FCI_PORT}")

    @staticmethod
    def _free_address() -> str:
        for _ in range(50):
            host = f"127.0.{random.randint(1, 254)}.{random.randint(2, 254)}"
            try:
                with socket.socket() as s:
                    s.bind((host, FCI_PORT))
                return host
            except OSError:
                continue
        raise RuntimeError("no free loopback address for franka-sim's fixed port 1337")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"franka-sim exited: {self.proc.stdout.read()[-2000:]}")
        with socket.socket() as s:
            return s.connect_ex((self.host, FCI_PORT)) == 0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def sim() -> Iterator[FrankaSim]:
    s = FrankaSim()
    yield s
    s.kill()


def test_the_driver_reads_follows_holds_and_drives_the_hand(sim):
    driver = make_driver(f"franka:{sim.host}")
    driver.connect()
    try:
        arm = driver.read()
        assert np.abs(arm.q - INITIAL_Q).max() < 0.01 and arm.gripper == pytest.approx(0.08)
        # Our kinematic model (fr3.xml, from the DH table) agrees with franka-sim's (its own
        # FR3 URDF): franka-sim's O_T_EE (F_T_EE = identity) is the pose of link7, which it
        # takes for the end effector (a real FCI reports the flange, 0.107 m further on).
        state = driver._robot.read_once()
        o_t_ee = np.array(state.O_T_EE).reshape(4, 4).T  # libfranka: column-major
        fk = driver._fk
        fk.pose(np.array(state.q))
        link7 = fk.data.body("fr3_link7")
        assert np.abs(o_t_ee[:3, 3] - link7.xpos).max() < 1e-6
        assert np.abs(o_t_ee[:3, :3] - link7.xmat.reshape(3, 3)).max() < 1e-6
        driver.activate()
        start = driver.hold_target(arm)
        t = np.linspace(0.0, 1.5, 1500)  # 1.5 s at 1 kHz, one setpoint per robot state
        shape = (1 - np.cos(np.pi * t / 1.5)) / 2
        errors = []
        for s in shape:
            q = start + s * np.array([0.3, -0.2, 0.0, 0.25, 0.0, -0.2, 0.3])
            driver.write(q, 0.5)
            errors.append(np.abs(driver.read().q - q).max())
        assert np.allclose(driver.sent_q, q)
        print(f"tracking error max {max(errors):.4f} rad")
        assert max(errors) < 0.02, f"tracking error up to {max(errors):.3f} rad"
        time.sleep(0.3)
        settled = driver.read().q
        assert np.abs(settled - q).max() < 0.002
        assert wait_for(lambda: abs(driver.read().gripper - 0.04) < 1e-3, timeout=3)
        driver.hold()
        time.sleep(0.3)
        assert np.abs(driver.read().q - settled).max() < 0.01  # held where it stopped
    finally:
        driver.disconnect()


def test_a_killed_sim_is_a_fault_and_the_server_latches_it(sim):
    driver = make_driver(f"franka:{sim.host}")
    driver.limits = replace(driver.limits, watchdog_s=1.0)  # client and 1 kHz loop share a GIL
    r = Running(driver)
    try:
        # libfranka waits 1 s for a state before it gives up on the link, holding the GIL
        # (so this whole process) meanwhile: allow replies that long
        c = r.client(timeout_s=3.0)
        q0 = r.controller.arm.q.copy()
        c.command(q0 + [0.05, 0, 0, 0, 0, 0, 0], 0.0)
        assert wait_for(lambda: c.status()["mode"] == "active")
        sim.kill()  # the link dies mid-session
        assert wait_for(lambda: c.status()["mode"] == "fault", timeout=5)
        assert "NetworkException" in c.status()["reason"]
        # The 1 s freeze also starved the session's watchdog: a new hello gets a session, and
        # the fault stays latched through it (a new session does not clear a fault)
        c.connect(subscribe=False)
        assert c.status()["mode"] == "fault"
        with pytest.raises(Rejected, match="fault"):
            c.command(q0, 0.0)
        with pytest.raises(Rejected, match="fault"):
            c.reset()  # recovery needs the robot: the fault stays latched
        assert c.status()["mode"] == "fault"
        c.close()
    finally:
        r.close()


def test_agent_bridge_serve_drives_franka_sim(sim):
    """`python -m hw_bridge serve --robot franka:HOST` and a client moving the arm."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "hw_bridge", "serve", "--robot",
                             f"franka:{sim.host}", "--bind", "tcp://127.0.0.1:*",
                             "--watchdog-ms", "300"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY"), proc.stderr.read()[-3000:]
        c = BridgeClient(line.split()[1], ClientConfig())
        c.connect(subscribe=False)
        assert c.info["robot"]["name"] == "fr3" and c.info["arm_hz"] == 1000.0
        q = np.array(c.status()["q"])
        goal = q + [0.15, -0.1, 0, 0.1, 0, 0, 0.1]
        for _ in range(40):  # 2 s of 20 Hz commands towards one goal (max_step 0.1 rad)
            ack = c.command(goal, 0.0)
            time.sleep(0.05)
        assert np.allclose(ack["q"], goal) and ack["clamped"] == []
        assert wait_for(lambda: np.abs(np.array(c.status()["q"]) - goal).max() < 0.002,
                        timeout=3)
        status = c.status()
        print("period_ms", status["period_ms"], "counts", status["counts"])
        c.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_connecting_to_no_robot_is_a_driver_fault():
    with pytest.raises(DriverFault, match="cannot connect to the Franka robot"):
        make_driver("franka:127.0.0.1", hand=False).connect()  # nothing listens on 1337 here
