"""A slow reply must not silence the client's heartbeats (issue 34, the CURVE row).

The peer here is a real ROUTER socket that answers by script and holds chosen replies back, so
the server's side of the timeline (when each message of the session arrived) is recorded
exactly; the client under test is the real `BridgeClient`.
"""

from __future__ import annotations

import heapq
import threading
import time

import numpy as np
import pytest
import zmq

from hw_bridge import wire
from hw_bridge.client import BridgeClient, ClientConfig
from tests.hw_bridge.conftest import ANY_PORT

WATCHDOG_S = 0.1  # the server's limit: no gap between a session's messages may reach it
HELD_S = 0.3  # three watchdog periods


class ScriptedPeer(threading.Thread):
    """Answers hello/status/heartbeat/command; holds back the reply to each kind in `slow`."""

    def __init__(self, slow: set[str]) -> None:
        super().__init__(daemon=True)
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ANY_PORT)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.slow, self.held = set(slow), []
        self.arrivals: list[tuple[float, str]] = []  # (t, type) of the session's messages
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            while self.held and self.held[0][0] <= time.monotonic():
                _, _, frames = heapq.heappop(self.held)
                self.sock.send_multipart(frames)
            if self.sock.poll(2):
                self._answer(self.sock.recv_multipart())
        self.ctx.destroy(linger=0)

    def _answer(self, frames: list[bytes]) -> None:
        now, msg = time.monotonic(), wire.decode(frames[-1])
        kind = msg["type"]
        if kind == "hello" or "session" in msg:
            self.arrivals.append((now, kind))
        fields = {"hello": {"session": "s1", "control_hz": 20.0},
                  "command": {"seq": msg.get("seq"), "q": msg.get("q"), "t": now}}
        reply_type = {"hello": "welcome", "command": "ack"}.get(kind, kind)
        reply = wire.reply(reply_type, msg["id"], server_time=now, **fields.get(kind, {}))
        out = [*frames[:-1], wire.encode(reply)]
        if kind in self.slow:
            self.slow.discard(kind)  # only the first one: the client must get going again
            heapq.heappush(self.held, (now + HELD_S, id(out), out))
        else:
            self.sock.send_multipart(out)

    def longest_silence(self) -> float:
        """The longest gap between two messages of the session, from the hello on."""
        times = [t for t, _ in self.arrivals]
        return max(np.diff(times), default=float("inf"))


@pytest.fixture
def peer(request) -> ScriptedPeer:
    p = ScriptedPeer(request.param)
    p.start()
    yield p
    p.stop.set()
    p.join(timeout=2)


@pytest.mark.parametrize("peer", [{"status"}], indirect=True)
def test_heartbeats_start_at_the_welcome_not_after_the_clock_pings(peer):
    # The pings after the hello are `status` requests, which do not feed the watchdog; one
    # slow ping on a loaded machine used to end the session before the first heartbeat.
    c = BridgeClient(peer.endpoint, ClientConfig(timeout_s=1.0))
    c.connect(subscribe=False)
    beats = [t for t, kind in peer.arrivals if kind == "heartbeat"]
    c.close()
    assert len(beats) >= HELD_S / 0.04, f"{len(beats)} heartbeats while a ping was held back"
    assert peer.longest_silence() < WATCHDOG_S, peer.arrivals


@pytest.mark.parametrize("peer", [{"command"}], indirect=True)
def test_a_reply_held_back_does_not_stop_the_heartbeats(peer):
    c = BridgeClient(peer.endpoint, ClientConfig(timeout_s=1.0))
    c.connect(subscribe=False)
    t0 = time.monotonic()
    ack = c.command(np.zeros(6), 0.0)  # its reply comes HELD_S late; heartbeats meanwhile
    waited = time.monotonic() - t0
    c.close()
    assert ack["type"] == "ack" and waited >= HELD_S * 0.9
    during = [t for t, kind in peer.arrivals if kind == "heartbeat" and t > t0]
    assert len(during) >= HELD_S / 0.04, f"{len(during)} heartbeats while the ack was held"
    assert peer.longest_silence() < WATCHDOG_S, peer.arrivals
