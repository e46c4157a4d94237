"""Trace the CURVE row of bench/bridge_faults.py: every message the good client sends and
receives, every message the server decodes, and every session end, on one clock.

Both processes use CLOCK_MONOTONIC, so client send times and server receive times compare
directly. Run from the repository root:

    python experiments/bridge_liveness/trace_curve.py [--runs 3] [--burn 2] [--out DIR]

For each run it prints the row's counts and, for every session the watchdog ended, the
timeline of the good client's messages around the silence the server saw.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import bench.bridge_faults as bf  # noqa: E402
from hw_bridge import wire  # noqa: E402

SERVER = """
import atexit, json, sys, threading, time
from hw_bridge import wire
from hw_bridge.controller import ArmController
out, events, decode, end = sys.argv.pop(1), [], wire.decode, ArmController._end_session
def traced_decode(payload, *a, **kw):
    msg = decode(payload, *a, **kw)
    events.append((time.monotonic(), "rx", msg.get("type"), msg.get("id"),
                   str(msg.get("session"))[:6], threading.current_thread().name))
    return msg
def traced_end(self, why):
    if self.session is not None:
        events.append((time.monotonic(), "end", why, None, self.session.id[:6], ""))
    return end(self, why)
wire.decode, ArmController._end_session = traced_decode, traced_end
atexit.register(lambda: open(out, "w").write(json.dumps(events)))
from hw_bridge.cli import main
sys.argv = ["hw_bridge", *sys.argv[1:]]
raise SystemExit(main())
"""


def install_client_trace(events: list) -> None:
    """Record every encode (= a send) and decode (= a receive) of this process."""
    encode, decode = wire.encode, wire.decode

    def traced_encode(msg, *a, **kw):
        events.append((time.monotonic(), "tx", msg.get("type"), msg.get("id"),
                       str(msg.get("session"))[:6], threading.current_thread().name))
        return encode(msg, *a, **kw)

    def traced_decode(payload, *a, **kw):
        msg = decode(payload, *a, **kw)
        events.append((time.monotonic(), "rx", msg.get("type"), msg.get("ref"),
                       "", threading.current_thread().name))
        return msg

    wire.encode, wire.decode = traced_encode, traced_decode


def traced_start_server(out: Path):
    def start(*args: str, rt: bool = True):
        rt_args = ("--rt-priority", bf.RT_PRIORITY) if rt else ()
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(out), "serve", "--bind", "tcp://127.0.0.1:*",
             *rt_args, *args], cwd=ROOT, env=bf.ENV, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            proc.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        return proc, line.split()[1]
    return start


def report(client: list, server: list) -> list[dict]:
    """For each watchdog end: the good client's sends and the server's receipts nearby."""
    found = []
    for t, kind, why, _, sid, _ in server:
        if kind != "end" or not why.startswith("watchdog"):
            continue
        window = [e for e in client + server if t - 0.2 <= e[0] <= t + 0.05 and e[1] != "end"
                  and (e[4] in (sid, "") or e[1] == "rx")]
        found.append({"t": t, "why": why, "session": sid, "timeline": [
            (round(1e3 * (e[0] - t), 2), "client" if e in client else "server", *e[1:])
            for e in sorted(window)]})
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--burn", type=int, default=0, help="busy-loop processes beside the row")
    p.add_argument("--n", type=int, default=100, help="intruders per run")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="trace_curve_"))
    out.mkdir(parents=True, exist_ok=True)
    client: list = []
    install_client_trace(client)
    for run in range(args.runs):
        server_file = out / f"server_{run}.json"
        bf.start_server = traced_start_server(server_file)
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                   for _ in range(args.burn)]
        client.clear()
        try:
            r = bf.curve(args.n)
        finally:
            for b in burners:
                b.kill()
        time.sleep(0.2)
        server = [tuple(e) for e in json.loads(server_file.read_text())]
        ends = report(list(client), server)
        g = r["measured"]["good_client"]
        print(json.dumps({"run": run, "holds": r["holds"], "acks": g["acks"],
                          "failures": g["failures"], "session_ends": g["session_ends"],
                          "watchdog_ends": len(ends)}), flush=True)
        (out / f"client_{run}.json").write_text(json.dumps(client))
        for e in ends:
            print(json.dumps(e, indent=None), flush=True)
    print(f"traces in {out}")


if __name__ == "__main__":
    main()
