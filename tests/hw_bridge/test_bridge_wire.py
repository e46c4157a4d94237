"""The wire codec: typed arrays round-trip, anything else is a ProtocolError with a code."""

import pickle

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hw_bridge import wire
from hw_bridge.errors import ProtocolError

DTYPES = st.sampled_from([np.uint8, np.bool_, np.int32, np.int64, np.float32, np.float64])


@given(arrays(DTYPES, st.lists(st.integers(0, 5), max_size=3).map(tuple)))
def test_arrays_round_trip(a):
    out = wire.decode(wire.encode({"a": a, "n": 1, "s": "x"}))["a"]
    assert out.dtype == a.dtype and out.shape == a.shape
    np.testing.assert_array_equal(out, a)


def test_big_endian_sent_as_little_endian():
    a = np.arange(3, dtype=">f8")
    np.testing.assert_array_equal(wire.decode(wire.encode({"a": a}))["a"], a)


@pytest.mark.parametrize("obj", [np.array([object()]), np.array([1j]), {1, 2}, object()])
def test_unsendable_objects_refused(obj):
    with pytest.raises(ProtocolError):
        wire.encode({"x": obj})


@pytest.mark.parametrize("payload,code", [
    (pickle.dumps({"type": "command"}), "malformed"),
    (b"\x81\xa1", "malformed"),  # truncated map
    (msgpack.packb([1, 2, 3]), "malformed"),
    (msgpack.packb({"x": msgpack.ExtType(5, b"abc")}), "malformed"),
    (msgpack.packb({1: 2}), "malformed"),
    (msgpack.packb({"a": {wire.ND_KEY: True, "dtype": "|O", "shape": [1], "data": b"x"}}),
     "bad_array"),
    (msgpack.packb({"a": {wire.ND_KEY: True, "dtype": "<f8", "shape": [2], "data": b"x"}}),
     "bad_array"),
    (b"\x00" * (wire.COMMAND_MAX_BYTES + 1), "oversized"),
])
def test_bad_payloads_raise_with_code(payload, code):
    with pytest.raises(ProtocolError) as e:
        wire.decode(payload)
    assert e.value.code == code


@pytest.mark.parametrize("msg,code", [
    ({"v": 2, "type": "status", "id": 1}, "bad_version"),
    ({"v": 1, "type": "launch", "id": 1}, "unknown_type"),
    ({"v": 1, "type": "status"}, "bad_field"),
    ({"v": 1, "type": "command", "id": 1, "session": "s", "seq": 1, "sent": 0.0,
      "deadline": 1.0, "q": [0.0] * 6, "gripper": 0.0}, "bad_field"),  # q not an array
    ({"v": 1, "type": "command", "id": 1, "session": "s", "seq": True, "sent": 0.0,
      "deadline": 1.0, "q": np.zeros(6), "gripper": 0.0}, "bad_field"),  # bool is no seq
])
def test_request_schema(msg, code):
    with pytest.raises(ProtocolError) as e:
        wire.check_request(wire.decode(wire.encode(msg)))
    assert e.value.code == code
