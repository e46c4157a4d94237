"""Optional ZeroMQ CURVE with an allow-list of client keys, and a log of every refusal.

Layout of a server's `--keys DIR`:
    DIR/server.key_secret   the server's key pair (`agent bridge keygen --out DIR --name server`)
    DIR/clients/*.key       public keys of the clients allowed in (the allow-list)
A client's keys dir holds its own `NAME.key_secret` and the server's public `server.key`.
With keys on, ZAP (zmq.auth's ThreadAuthenticator) refuses any client whose key is not in the
allow-list and any client without CURVE, before a single message reaches the server; a socket
monitor turns each refused handshake into a log line and a count in the server's status.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import parse_monitor_message

from hw_bridge.errors import BridgeError

log = logging.getLogger(__name__)
REFUSAL_EVENTS = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                  | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


@dataclass(frozen=True)
class ServerKeys:
    public: bytes
    secret: bytes
    allow_dir: Path


@dataclass(frozen=True)
class ClientKeys:
    public: bytes
    secret: bytes
    server_public: bytes


def keygen(out: str | Path, name: str) -> tuple[Path, Path]:
    """Write NAME.key (public) and NAME.key_secret under `out`; return both paths."""
    if not zmq.has("curve"):
        raise BridgeError("this libzmq was built without CURVE support")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(out), name)
    return Path(public), Path(secret)


def _load_secret(path: Path) -> tuple[bytes, bytes]:
    if not path.is_file():
        raise BridgeError(f"no key file {path}; create one with `agent bridge keygen`")
    public, secret = zmq.auth.load_certificate(str(path))
    if secret is None:
        raise BridgeError(f"{path} holds no secret key")
    return public, secret


def load_server_keys(keys_dir: str | Path) -> ServerKeys:
    d = Path(keys_dir)
    public, secret = _load_secret(d / "server.key_secret")
    allow = d / "clients"
    if not allow.is_dir() or not any(allow.glob("*.key")):
        raise BridgeError(f"{allow} must hold the allowed clients' public *.key files")
    return ServerKeys(public, secret, allow)


def load_client_keys(keys_dir: str | Path, name: str = "client") -> ClientKeys:
    d = Path(keys_dir)
    public, secret = _load_secret(d / f"{name}.key_secret")
    server_public, _ = zmq.auth.load_certificate(str(d / "server.key"))
    return ClientKeys(public, secret, server_public)


def start_authenticator(ctx: zmq.Context, keys: ServerKeys) -> ThreadAuthenticator:
    """ZAP handler for every CURVE server socket of `ctx`, allowing only listed client keys."""
    auth = ThreadAuthenticator(ctx, log=log.getChild("zap"))
    auth.start()
    auth.configure_curve(domain="*", location=str(keys.allow_dir))
    return auth


def make_curve_server(sock: zmq.Socket, keys: ServerKeys) -> None:
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_server = True


def make_curve_client(sock: zmq.Socket, keys: ClientKeys) -> None:
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_serverkey = keys.server_public


class RefusalLog:
    """Counts and logs refused handshakes on a socket (read from its monitor socket)."""

    def __init__(self, sock: zmq.Socket, name: str) -> None:
        self.name = name
        self.monitor = sock.get_monitor_socket(REFUSAL_EVENTS)
        self.count = 0

    def drain(self) -> None:
        while self.monitor.poll(0):
            event = parse_monitor_message(self.monitor.recv_multipart())
            self.count += 1
            log.warning("refused a client on the %s socket: %s (code %s) from %s", self.name,
                        zmq.Event(event["event"]).name, event["value"],
                        event["endpoint"].decode(errors="replace"))

    def close(self) -> None:
        self.monitor.close(linger=0)
