"""The client end of the Meta-World worker: a child process spoken to over its stdin/stdout.

Frames are a 4-byte big-endian length and a msgpack map in hw_bridge/wire.py's format (arrays as
typed buffers, pickle refused). Every read has a deadline, so a worker that hangs or dies is a
`WorkerError` naming its exit code and the tail of its stderr, never a hang. The worker ends
with the client: `close()` asks, then terminates, then kills; a client that dies without
closing leaves the worker reading end-of-file (and, on Linux, sent SIGTERM by the kernel).
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from envs.errors import EnvError
from hw_bridge.wire import STREAM_MAX_BYTES, decode, encode

# First reset of a task builds its env and its 50 goal variations (~1 s on a quiet machine,
# several on a busy 2-core one); a step takes milliseconds. Generous: these catch hangs.
START_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 60.0
STDERR_TAIL = 2000


class WorkerError(EnvError):
    """The Meta-World worker died, hung, or failed a request."""


class WorkerProcess:
    """A running worker.py under `python`; `request(op, **fields)` returns its reply."""

    def __init__(self, python: Path, script: Path, env: dict[str, str] | None = None,
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([str(python), "-u", str(script)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr,
                                     env={**os.environ, **(env or {})}, close_fds=True)
        # Not closed explicitly (a dropped env): kill the worker when this object goes.
        self._finalizer = weakref.finalize(self, _kill, self.proc)
        self.hello = self.request("hello", timeout_s=start_timeout_s)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def request(self, op: str, timeout_s: float = REQUEST_TIMEOUT_S, **fields: Any
                ) -> dict[str, Any]:
        """Send one request, wait for its reply.

        Raises:
            WorkerError: the worker is gone, timed out, or answered with an error.
        """
        if self.proc.poll() is not None:
            raise self._died(f"before {op!r}")
        body = encode({"op": op, **fields})
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(struct.pack(">I", len(body)) + body)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died(f"while sending {op!r}") from None
        reply = decode(self._read_frame(op, timeout_s), STREAM_MAX_BYTES)
        if not reply.get("ok"):
            raise WorkerError(f"Meta-World worker failed {op!r}: {reply.get('error')}\n"
                              f"{reply.get('traceback', '')}".rstrip())
        return reply

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to exit; terminate, then kill it if it does not."""
        if self.proc.poll() is None:
            try:
                self.request("close", timeout_s=timeout_s)
            except WorkerError:
                pass  # it is being ended below either way
        _kill(self.proc, timeout_s)
        self._finalizer.detach()
        self._stderr.close()

    def _read_frame(self, op: str, timeout_s: float) -> bytes:
        head = self._read_exact(4, op, timeout_s)
        (n,) = struct.unpack(">I", head)
        if n > STREAM_MAX_BYTES:
            raise WorkerError(f"Meta-World worker sent a {n}-byte frame for {op!r} (limit "
                              f"{STREAM_MAX_BYTES}); its output is not the protocol")
        return self._read_exact(n, op, timeout_s)

    def _read_exact(self, n: int, op: str, timeout_s: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0.0))
            if not ready:
                _kill(self.proc)
                raise WorkerError(f"Meta-World worker gave no reply to {op!r} within "
                                  f"{timeout_s:.0f} s; it was killed{self._stderr_tail()}")
            chunk = os.read(fd, n - len(out))
            if not chunk:
                raise self._died(f"during {op!r}")
            out += chunk
        return bytes(out)

    def _died(self, when: str) -> WorkerError:
        try:
            code = self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            _kill(self.proc)
            code = self.proc.returncode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        return WorkerError(f"Meta-World worker (pid {self.proc.pid}) died {when} ({how})"
                           f"{self._stderr_tail()}")

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - STDERR_TAIL))
            tail = self._stderr.read().decode(errors="replace").strip()
        except (ValueError, OSError):
            return ""
        return f"; its stderr ends:\n{tail}" if tail else ""


def _kill(proc: subprocess.Popen, timeout_s: float = 2.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass
