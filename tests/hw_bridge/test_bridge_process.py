"""Real subprocesses: the CLI server, a client SIGKILLed mid-motion, the e-stop command and a
full `agent run --env bridge:...` episode with the scripted expert."""

import json
import os
import signal
import subprocess
import sys
import time

from hw_bridge.client import BridgeClient
from tests.hw_bridge.conftest import ROOT, wait_for

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": "egl"}


def status_of(endpoint: str) -> dict:
    client = BridgeClient(endpoint)
    client.open()  # status needs no session
    try:
        return client.status()
    finally:
        client.ctx.destroy(linger=0)


def test_client_sigkilled_mid_motion_is_held_within_watchdog_plus_one_period(server_process):
    _, endpoint = server_process
    mover = subprocess.Popen([sys.executable, str(ROOT / "tests/hw_bridge/mover.py"), endpoint],
                             env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert mover.stdout.readline().strip() == "MOVING"
        time.sleep(0.2)
        assert status_of(endpoint)["mode"] == "active"
        mover.send_signal(signal.SIGKILL)
    finally:
        mover.kill()
        mover.wait()
    def held() -> bool:
        ev = status_of(endpoint)["events"]
        return ev["stopped"] >= ev["hold"] > 0

    assert wait_for(held, timeout=2.0)
    st = status_of(endpoint)
    ev = st["events"]
    assert st["mode"] == "hold" and "watchdog" in st["reason"]
    assert 0 < ev["stopped"] - ev["last_rx"] <= 0.1 + 0.05, ev


def test_cli_estop_latches_and_status_reports_it(server_process):
    _, endpoint = server_process
    run = [sys.executable, "-m", "agent", "bridge"]
    out = subprocess.run([*run, "estop", "--connect", endpoint], env=ENV, capture_output=True,
                         text=True, timeout=60, check=True)
    assert "e-stop latched" in out.stdout
    out = subprocess.run([*run, "status", "--connect", endpoint], env=ENV, capture_output=True,
                         text=True, timeout=60, check=True)
    assert json.loads(out.stdout)["mode"] == "estop"


def test_agent_run_scripted_episode_through_the_bridge(server_process):
    _, endpoint = server_process
    out = subprocess.run([sys.executable, "-m", "agent", "run", "--env", f"bridge:{endpoint}",
                          "--policy", "scripted", "--episodes", "1", "--seed", "3", "--json"],
                         env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["success_rate"] == 1.0 and summary["failures"] == []
