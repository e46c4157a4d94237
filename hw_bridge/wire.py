"""The wire format of PROTOCOL.md: msgpack maps, numpy arrays as typed buffers, pickle refused.

An array travels as `{"__ndarray__": true, "dtype": "<f8", "shape": [6], "data": <bin>}` with the
dtype from a short allow-list; anything else (object arrays, ext types, a byte count that does not
match dtype x shape) is a `ProtocolError`, never a zero-filled guess. Request schemas live here
too, so the server checks every field's presence and type before it acts on a message.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

from hw_bridge.errors import ProtocolError

PROTOCOL_VERSION = 1
ND_KEY = "__ndarray__"
# Little-endian numeric types only: a client in any language can produce them, none can smuggle
# Python objects. Byte order is explicit so big-endian peers fail loudly, not silently.
DTYPES = frozenset({"|b1", "|u1", "<i4", "<i8", "<f4", "<f8"})
# Per-container limits for the command socket; the stream socket's images are bigger.
COMMAND_MAX_BYTES = 64 * 1024
STREAM_MAX_BYTES = 16 * 1024 * 1024


def _pack_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        dtype = obj.dtype.newbyteorder("<") if obj.dtype.byteorder == ">" else obj.dtype
        if dtype.str not in DTYPES:
            raise ProtocolError(f"cannot send arrays of dtype {obj.dtype}; "
                                f"allowed: {sorted(DTYPES)}")
        arr = np.require(obj, dtype=dtype, requirements="C")  # keeps 0-d arrays 0-d
        return {ND_KEY: True, "dtype": dtype.str, "shape": list(arr.shape), "data": arr.tobytes()}
    if isinstance(obj, np.generic):
        return obj.item()
    raise ProtocolError(f"cannot send {type(obj).__name__}; allowed: msgpack types and ndarrays")


def _unpack_array(obj: dict) -> Any:
    if ND_KEY not in obj:
        return obj
    dtype, shape, data = obj.get("dtype"), obj.get("shape"), obj.get("data")
    if dtype not in DTYPES:
        raise ProtocolError(f"array dtype {dtype!r} not allowed; allowed: {sorted(DTYPES)}",
                            "bad_array")
    if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)
            and isinstance(data, bytes)):
        raise ProtocolError("array needs shape (list of ints >= 0) and data (bin)", "bad_array")
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if expected != len(data):
        raise ProtocolError(f"array data has {len(data)} bytes, dtype {dtype} x shape {shape} "
                            f"needs {expected}", "bad_array")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(f"msgpack extension type {code} not allowed", "malformed")


def encode(msg: dict[str, Any]) -> bytes:
    """Serialise one message (a map with string keys) to bytes."""
    return msgpack.packb(msg, default=_pack_default, use_bin_type=True)


def decode(buf: bytes, max_bytes: int = COMMAND_MAX_BYTES) -> dict[str, Any]:
    """Parse one message; raise ProtocolError (with a code) for anything not a valid map."""
    if len(buf) > max_bytes:
        raise ProtocolError(f"message of {len(buf)} bytes exceeds {max_bytes}", "oversized")
    try:
        msg = msgpack.unpackb(buf, raw=False, strict_map_key=True, object_hook=_unpack_array,
                              ext_hook=_refuse_ext)
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several types for truncated/garbled input
        raise ProtocolError(f"not a msgpack message: {type(exc).__name__}: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"a message must be a map, got {type(msg).__name__}")
    return msg


# -- request schemas ------------------------------------------------------------------------
# type -> {field: allowed python types}. `v`, `type` and `id` are checked for every request.
_NUM = (int, float)
REQUESTS: dict[str, dict[str, tuple[type, ...]]] = {
    "hello": {"client": (str,)},
    "command": {"session": (str,), "seq": (int,), "sent": _NUM, "deadline": _NUM,
                "q": (np.ndarray,), "gripper": _NUM},
    "heartbeat": {"session": (str,), "sent": _NUM},
    "reset": {"session": (str,), "seq": (int,)},
    "estop": {"reason": (str,)},
    "status": {},
    "describe": {},
    "bye": {"session": (str,)},
}


def check_request(msg: dict[str, Any]) -> dict[str, Any]:
    """Validate version, type and fields of a client request; return it unchanged."""
    v = msg.get("v")
    if v != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {v!r} not supported; this server speaks "
                            f"{PROTOCOL_VERSION}", "bad_version")
    kind = msg.get("type")
    if kind not in REQUESTS:
        raise ProtocolError(f"unknown message type {kind!r}; known: {sorted(REQUESTS)}",
                            "unknown_type")
    if not isinstance(msg.get("id"), int) or isinstance(msg.get("id"), bool):
        raise ProtocolError("every request needs an integer `id` (echoed as `ref`)", "bad_field")
    for name, types in REQUESTS[kind].items():
        value = msg.get(name)
        if not isinstance(value, types) or isinstance(value, bool):
            got = type(value).__name__ if name in msg else "nothing"
            want = "/".join(t.__name__ for t in types)
            if np.ndarray in types:  # a list is not an array: say how one travels
                want += " (the __ndarray__ map of PROTOCOL.md section 2)"
            raise ProtocolError(f"{kind}.{name} must be {want}, got {got}", "bad_field")
    return msg


def error_reply(code: str, message: str, ref: Any = None) -> dict[str, Any]:
    """An `error` reply (see PROTOCOL.md for the codes)."""
    return {"v": PROTOCOL_VERSION, "type": "error", "code": code, "message": message,
            "ref": ref if isinstance(ref, int) else None}


def reply(kind: str, ref: int | None, **fields: Any) -> dict[str, Any]:
    """A server reply of `kind`, echoing the request id as `ref`."""
    return {"v": PROTOCOL_VERSION, "type": kind, "ref": ref, **fields}


def request(kind: str, req_id: int, **fields: Any) -> dict[str, Any]:
    """A client request of `kind` with request id `req_id`."""
    return {"v": PROTOCOL_VERSION, "type": kind, "id": req_id, **fields}
