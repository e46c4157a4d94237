"""CURVE on: only allow-listed client keys get through; NULL and unknown keys get nothing."""

import shutil

import numpy as np
import pytest
import zmq

from hw_bridge import wire
from hw_bridge.client import BridgeClient, ClientConfig
from hw_bridge.errors import Timeout
from hw_bridge.security import keygen
from tests.hw_bridge.conftest import Running, wait_for
from tests.hw_bridge.fakes import FlakyDriver


@pytest.fixture
def keyed(tmp_path):
    server_dir, good, bogus = tmp_path / "server", tmp_path / "good", tmp_path / "bogus"
    keygen(server_dir, "server")
    for d in (good, bogus):
        keygen(d, "client")
        shutil.copy(server_dir / "server.key", d / "server.key")
    (server_dir / "clients").mkdir()
    shutil.copy(good / "client.key", server_dir / "clients" / "client.key")
    r = Running(FlakyDriver("reach", image_size=(16, 16)), keys=str(server_dir))
    yield r, good, bogus
    r.close()


def test_only_allow_listed_keys_get_in(keyed):
    running, good, bogus = keyed
    ok = BridgeClient(running.endpoint, ClientConfig(keys=str(good)))
    ok.connect()
    assert ok.observation(timeout_s=2.0)["type"] == "obs"
    ok.command(running.controller.arm.q, 0.0)
    for keys in (None, str(bogus)):
        intruder = BridgeClient(running.endpoint, ClientConfig(keys=keys, timeout_s=0.3))
        with pytest.raises(Timeout):
            intruder.connect()
        intruder.ctx.destroy(linger=0)
    # a NULL subscriber gets no frames either
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(ok.info["stream"]["endpoint"])
    assert not sub.poll(300)
    sub.close(linger=0)
    assert wait_for(lambda: running.server.auth_refusals >= 3)
    assert running.controller.counts["executed"] == 1
    np.testing.assert_array_equal(ok.status()["counts"]["executed"], 1)
    ok.close()
    assert wire.PROTOCOL_VERSION == 1
