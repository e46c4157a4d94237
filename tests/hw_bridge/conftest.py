"""Bridge fixtures: servers on loopback with ports picked at runtime, in-process or real
subprocesses, and raw sockets for speaking (or garbling) the protocol by hand."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from hw_bridge import wire
from hw_bridge.cameras import CameraRig
from hw_bridge.client import BridgeClient, ClientConfig
from hw_bridge.server import BridgeServer, ServerConfig
from tests.hw_bridge.fakes import FlakyDriver

ROOT = Path(__file__).resolve().parents[2]
# In-process servers share the GIL with the test's clients; hand it over more often than the
# default 5 ms so a client's heartbeat thread is not starved past the 100 ms watchdog on a
# loaded machine. (Deployed, server and client are separate processes.)
sys.setswitchinterval(0.0005)
ANY_PORT = "tcp://127.0.0.1:*"


class Running:
    """An in-process server on its own thread."""

    def __init__(self, driver: FlakyDriver, rig: CameraRig | None = None, **config) -> None:
        self.driver = driver
        config = {"stream_hz": 10.0, **config}
        self.server = BridgeServer(driver, ServerConfig(bind=ANY_PORT, **config), rig).start()
        self.endpoint = self.server.endpoint
        self.controller = self.server.controller
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def client(self, **config) -> BridgeClient:
        c = BridgeClient(self.endpoint, ClientConfig(**config))
        c.connect(subscribe=False)
        return c

    def close(self) -> None:
        self.server.stop()
        self.thread.join(timeout=5)
        self.server.close()


@pytest.fixture
def running() -> Iterator[Running]:
    r = Running(FlakyDriver("pick_place", image_size=(32, 32)))
    yield r
    r.close()


def wait_for(predicate, timeout: float = 2.0, step: float = 0.005) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def raw_socket(endpoint: str, kind: int = zmq.DEALER) -> zmq.Socket:
    sock = zmq.Context.instance().socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def raw_exchange(sock: zmq.Socket, payload: bytes | list[bytes], timeout_ms: int = 1000):
    """Send raw frame(s); return the decoded reply or None if nothing came back in time."""
    if isinstance(payload, list):
        sock.send_multipart(payload)
    else:
        sock.send(payload)
    if not sock.poll(timeout_ms):
        return None
    return wire.decode(sock.recv(), wire.COMMAND_MAX_BYTES * 4)


def command_msg(client: BridgeClient, q, seq: int, sent: float | None = None,
                lifetime: float = 0.2, req_id: int = 10_000) -> bytes:
    sent = client.server_now() if sent is None else sent
    return wire.encode(wire.request("command", req_id, session=client.session, seq=seq,
                                    sent=sent, deadline=sent + lifetime,
                                    q=np.asarray(q, float), gripper=0.0))


def start_server_process(*args: str) -> tuple[subprocess.Popen, str]:
    """`python -m hw_bridge serve ...` as a real subprocess; returns it and its endpoint."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": "egl"}
    proc = subprocess.Popen([sys.executable, "-m", "hw_bridge", "serve", "--bind", ANY_PORT,
                             "--image-size", "32", "--stream-rate", "10",
                             "--rt-priority", "20", *args],  # as on a robot host, if allowed
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc, line.split()[1]


@pytest.fixture
def server_process() -> Iterator[tuple[subprocess.Popen, str]]:
    proc, endpoint = start_server_process()
    yield proc, endpoint
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
