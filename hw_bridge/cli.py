"""`agent bridge serve | estop | status | keygen | cameras`: the robot-side server and its tools.

    agent bridge serve --robot sim:panda --bind tcp://127.0.0.1:5555 [--keys DIR]
                       [--rate HZ] [--watchdog-ms 100] [--camera NAME=KIND:ARG[@WxH][:FPS]]...
    agent bridge cameras [--try opencv:clip.mp4]...
    agent bridge estop --connect tcp://127.0.0.1:5555 [--keys DIR --name NAME]
    agent bridge status --connect tcp://127.0.0.1:5555
    agent bridge keygen --out DIR [--name NAME]
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from dataclasses import replace
from typing import Any


def register(subparsers: Any) -> None:
    """Add `bridge` and its sub-subcommands to the agent CLI."""
    p = subparsers.add_parser("bridge", help="hardware bridge: serve a robot over ZeroMQ")
    sub = p.add_subparsers(dest="bridge_command", required=True)
    s = sub.add_parser("serve", help="run the robot-side server")
    s.add_argument("--robot", default="sim:pick_place",
                   help="sim:ROBOT[/TASK] (a described arm: mk6, panda, iiwa14; task pick_place "
                        "by default), sim:TASK (mk6), ur:HOST or franka:HOST")
    s.add_argument("--bind", default="tcp://127.0.0.1:5555",
                   help="command endpoint (loopback by default; port * picks a free one)")
    s.add_argument("--stream-bind", default=None, help="observation endpoint (default port+1)")
    s.add_argument("--keys", default=None, help="dir with server.key_secret and clients/*.key")
    s.add_argument("--rate", type=float, default=20.0, help="client command rate, Hz")
    s.add_argument("--stream-rate", type=float, default=30.0, help="observation rate, Hz")
    s.add_argument("--watchdog-ms", type=float, default=100.0)
    s.add_argument("--image-size", type=int, default=None,
                   help="sim camera size (square; default: the robot description's)")
    s.add_argument("--rt-priority", type=int, default=0,
                   help="SCHED_FIFO priority 1..99 for the arm loop (0: off; needs CAP_SYS_NICE)")
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    s.add_argument("--camera", action="append", default=[], metavar="NAME=KIND:ARG[@WxH][:FPS]",
                   help="stream a camera beside the robot's own (same NAME: replaces it); "
                   "repeatable. KIND: opencv (INDEX, /dev/videoN, video file, URL) or realsense "
                   "(SERIAL); e.g. wrist=opencv:/dev/video2@640x480:30")
    s.add_argument("--camera-timeout-ms", type=float, default=1000.0,
                   help="a camera with no new frame for this long is dead (an error)")
    s.set_defaults(func=serve)
    c = sub.add_parser("cameras", help="list the cameras attached to this PC")
    c.add_argument("--max-index", type=int, default=8, help="OpenCV indices 0..N-1 to probe")
    c.add_argument("--try", dest="sources", action="append", default=[], metavar="KIND:ARG",
                   help="also open this source (e.g. opencv:clip.mp4) and report its mode")
    c.set_defaults(func=cameras)
    for name, func, helptext in (("estop", estop, "latch the server's e-stop"),
                                 ("status", status, "print the server's status (health check)")):
        e = sub.add_parser(name, help=helptext)
        e.add_argument("--connect", default="tcp://127.0.0.1:5555")
        e.add_argument("--keys", default=None, help="client keys dir (NAME.key_secret, server.key)")
        e.add_argument("--name", default="client", help="client key pair name in --keys")
        e.add_argument("--reason", default="operator e-stop (agent bridge estop)")
        e.set_defaults(func=func)
    k = sub.add_parser("keygen", help="create a CURVE key pair")
    k.add_argument("--out", required=True)
    k.add_argument("--name", default="client")
    k.set_defaults(func=keygen)


def serve(args: argparse.Namespace) -> int:
    from hw_bridge.cameras import CameraRig, Freshness, make_camera, parse_cameras
    from hw_bridge.drivers import make_driver
    from hw_bridge.errors import CameraError
    from hw_bridge.server import BridgeServer, ServerConfig
    from sims.robots import CameraSpec

    # The arm loop shares the GIL with the stream thread: ask for it back within 0.5 ms
    # instead of the default 5 ms, or one render call can delay two arm periods.
    sys.setswitchinterval(0.0005)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    kwargs = ({"image_size": (args.image_size, args.image_size)}
              if args.robot.startswith("sim") and args.image_size else {})
    driver = make_driver(args.robot, **kwargs)
    driver.limits = replace(driver.limits, watchdog_s=args.watchdog_ms / 1e3)
    config = ServerConfig(bind=args.bind, stream_bind=args.stream_bind, control_hz=args.rate,
                          stream_hz=args.stream_rate, keys=args.keys,
                          rt_priority=args.rt_priority)
    own = {n: CameraSpec(n, h, w, args.stream_rate) for n, (h, w) in driver.cameras.items()}
    try:
        rig = CameraRig([make_camera(s) for s in parse_cameras(args.camera, own)],
                        Freshness(timeout_s=args.camera_timeout_ms / 1e3))
        server = BridgeServer(driver, config, rig).start()
    except CameraError as exc:
        print(f"agent bridge serve: {exc}", file=sys.stderr)
        return 2
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: server.stop())
        if args.duration:
            timer = threading.Timer(args.duration, server.stop)
            timer.daemon = True
            timer.start()
        print(f"READY {server.endpoint} {server.stream_endpoint}", flush=True)
        server.run()
    finally:
        server.close()
    return 0


def _client(args: argparse.Namespace) -> Any:
    from hw_bridge.client import BridgeClient, ClientConfig

    client = BridgeClient(args.connect, ClientConfig(keys=args.keys, key_name=args.name,
                                                     heartbeat=False))
    client.open()  # no session: estop and status need none
    return client


def estop(args: argparse.Namespace) -> int:
    from hw_bridge.errors import BridgeError

    client = _client(args)
    try:
        reply = client.estop(args.reason)
    except BridgeError as exc:
        print(f"e-stop NOT confirmed by {args.connect}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.ctx.destroy(linger=0)
    print(f"e-stop latched: mode={reply['mode']} ({reply['reason']})")
    return 0


def status(args: argparse.Namespace) -> int:
    from hw_bridge.errors import BridgeError

    client = _client(args)
    try:
        reply = client.status()
    except BridgeError as exc:
        print(f"no status from {args.connect}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.ctx.destroy(linger=0)
    keep = ("mode", "reason", "session_open", "stopped", "counts", "period_ms", "cameras")
    print(json.dumps({k: reply[k] for k in keep if k in reply}))
    return 0


def cameras(args: argparse.Namespace) -> int:
    from hw_bridge.cameras.listing import list_cameras

    print(list_cameras(args.max_index, args.sources))
    return 0


def keygen(args: argparse.Namespace) -> int:
    from hw_bridge.security import keygen as make_keys

    public, secret = make_keys(args.out, args.name)
    print(f"public key {public}\nsecret key {secret} (keep it private)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m hw_bridge ...`) until the agent CLI is merged."""
    parser = argparse.ArgumentParser(prog="python -m hw_bridge")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    args = parser.parse_args(["bridge", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)
