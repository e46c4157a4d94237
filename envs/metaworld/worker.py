"""The Meta-World worker: runs Meta-World unmodified, in its own venv, behind a pipe.

Run as a script by `envs.metaworld.client` with the Python of `.venv-metaworld` (Meta-World
3.1.1 pins MuJoCo 3.3.0; motoken runs MuJoCo 4, see envs/metaworld/__init__.py). It is
self-contained on purpose: it imports only the standard library, numpy, msgpack, mujoco and
metaworld, never a motoken package (those need MuJoCo 4 and torch), so tests/test_imports.py
sees no edges out of it.

Protocol: stdin/stdout carry frames of a 4-byte big-endian length and a msgpack map, arrays as
`{"__ndarray__": true, "dtype", "shape", "data"}` (hw_bridge/wire.py's format; pickle is never
used). One reply per request: `{"ok": true, ...}` or `{"ok": false, "error": ..., "traceback":
...}`. Requests: `hello`, `reset` (task, variation, cameras, size; with `seed`, the goal is
drawn from it instead), `step` (4-D Meta-World action), `close`. End of stdin (the client
died) ends the worker.
"""

from __future__ import annotations

import ctypes
import os
import signal
import struct
import sys
import time
import traceback
from typing import Any

import msgpack
import numpy as np

PROTOCOL = 1
ND_KEY = "__ndarray__"
DTYPES = frozenset({"|b1", "|u1", "<i4", "<i8", "<f4", "<f8"})
# Seed of the 50 goal variations per task that Meta-World's MT1 benchmark draws (`set_task`);
# LeRobot's Meta-World env uses MT1(task, seed=42) too (src/lerobot/envs/metaworld.py).
BENCHMARK_SEED = 42
# LeRobot's corner2 pose (after arXiv 2206.14244): the table and arm fill the frame.
CORNER2_POS = (0.75, 0.075, 0.7)
# Meta-World's corner cameras are rolled half a turn in its XML: their frames come out upside
# down and mirrored, so they are turned back by 180 degrees (as LeRobot does for corner2).
ROTATED_CAMERAS = frozenset({"corner", "corner2", "corner3", "corner4"})
ARM_JOINTS = tuple(f"right_j{i}" for i in range(7))


def _pack(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        if arr.dtype.str not in DTYPES:
            raise TypeError(f"cannot send arrays of dtype {arr.dtype}")
        return {ND_KEY: True, "dtype": arr.dtype.str, "shape": list(arr.shape),
                "data": arr.tobytes()}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot send {type(obj).__name__}")


def _unpack(obj: dict) -> Any:
    if ND_KEY not in obj:
        return obj
    if obj["dtype"] not in DTYPES:
        raise ValueError(f"array dtype {obj['dtype']!r} not allowed")
    return np.frombuffer(obj["data"], dtype=obj["dtype"]).reshape(obj["shape"])


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} not allowed")


def read_frame(stream: Any) -> dict | None:
    """The next request, or None at end of input."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack(">I", head)
    body = stream.read(n)
    if len(body) < n:
        return None
    return msgpack.unpackb(body, raw=False, object_hook=_unpack, ext_hook=_refuse_ext)


def write_frame(stream: Any, msg: dict) -> None:
    body = msgpack.packb(msg, default=_pack, use_bin_type=True)
    stream.write(struct.pack(">I", len(body)) + body)
    stream.flush()


class Worker:
    """One Meta-World env at a time (rebuilt when the task changes), its renderer and the
    task's scripted policy."""

    def __init__(self) -> None:
        import metaworld
        import mujoco
        from metaworld import policies

        self.mw, self.mujoco, self.policies = metaworld, mujoco, policies
        self.benchmarks: dict[str, Any] = {}  # task -> MT1 (its 50 goal variations)
        self.env: Any = None
        self.task: str | None = None
        self.expert: Any = None
        self.renderer: Any = None
        self.cameras: tuple[str, ...] = ()
        self.size = 0
        self.obs: np.ndarray | None = None

    def hello(self, msg: dict) -> dict:
        return {"protocol": PROTOCOL, "metaworld": _version("metaworld"),
                "mujoco": self.mujoco.__version__, "python": sys.version.split()[0],
                "tasks": sorted(n.removesuffix("-v3") for n in self.mw.MT1.ENV_NAMES)}

    def reset(self, msg: dict) -> dict:
        task, variation = str(msg["task"]), int(msg["variation"])
        cameras, size = tuple(msg["cameras"]), int(msg["size"])
        if task != self.task or cameras != self.cameras or size != self.size:
            self._build(task, cameras, size)
        tasks = self.benchmarks[task].train_tasks
        self.env.set_task(tasks[variation % len(tasks)])
        if msg.get("seed") is not None:
            # Goals drawn afresh from the task's random_reset_space, as LeRobot's env does
            # (it unfreezes the goal after set_task), but from Meta-World's own seeded
            # generator instead of numpy's global one, so a seed gives the same episode.
            self.env._freeze_rand_vec = False
            self.env.seeded_rand_vec = True
            self.env.seed(int(msg["seed"]))
        t0 = time.perf_counter()
        self.obs, _ = self.env.reset()
        t1 = time.perf_counter()
        out = self._observe(t1 - t0, time.perf_counter())
        m = self.env.model
        ids = [m.joint(j).id for j in ARM_JOINTS]
        out.update(joint_names=list(ARM_JOINTS), joint_range=m.jnt_range[ids].copy(),
                   control_hz=1.0 / (m.opt.timestep * self.env.frame_skip),
                   action_scale=float(self.env.action_scale),
                   max_path_length=int(self.env.max_path_length),
                   variations=len(tasks))
        return out

    def step(self, msg: dict) -> dict:
        if self.env is None:
            raise RuntimeError("step before reset")
        action = np.asarray(msg["action"], dtype=np.float64)
        t0 = time.perf_counter()
        self.obs, reward, _, truncated, info = self.env.step(action)
        out = self._observe(time.perf_counter() - t0, time.perf_counter())
        out.update(reward=float(reward), success=bool(info["success"]),
                   truncated=bool(truncated))
        return out

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
        if self.env is not None:
            self.env.close()
        self.renderer = self.env = None

    def _build(self, task: str, cameras: tuple[str, ...], size: int) -> None:
        name = f"{task}-v3"
        if name not in self.mw.MT1.ENV_NAMES:
            raise KeyError(f"Meta-World has no task {task!r}")
        self.close()
        if task not in self.benchmarks:
            self.benchmarks[task] = self.mw.MT1(name, seed=BENCHMARK_SEED)
        self.env = self.benchmarks[task].train_classes[name]()
        self.expert = self.policies.ENV_POLICY_MAP[name]()
        m = self.env.model
        if "corner2" in cameras:
            m.cam_pos[m.camera("corner2").id] = CORNER2_POS
        # Software GL (llvmpipe, what CPU machines have) spends ~180 of ~190 ms per 128 px
        # frame on the 4096 px shadow map and 4x multisampling; without them it takes ~10 ms.
        m.vis.quality.offsamples = 0
        self.renderer = self.mujoco.Renderer(m, size, size) if cameras else None
        if self.renderer is not None:
            flags = self.renderer.scene.flags
            flags[self.mujoco.mjtRndFlag.mjRND_SHADOW] = False
            flags[self.mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self.task, self.cameras, self.size = task, cameras, size

    def _observe(self, sim_s: float, t_render: float) -> dict:
        d = self.env.data
        images = {}
        for cam in self.cameras:
            self.renderer.update_scene(d, camera=cam)
            img = self.renderer.render()
            images[cam] = np.ascontiguousarray(img[::-1, ::-1] if cam in ROTATED_CAMERAS
                                               else img)
        render_s = time.perf_counter() - t_render
        m = self.env.model
        qpos = np.array([d.qpos[m.joint(j).qposadr[0]] for j in ARM_JOINTS])
        hand = d.body("hand")
        opening = np.linalg.norm(d.body("rightclaw").xpos - d.body("leftclaw").xpos)
        state = np.concatenate([qpos, hand.xpos, hand.xquat, [opening]])
        obs = np.asarray(self.obs, dtype=np.float64)
        expert = np.asarray(self.expert.get_action(obs), dtype=np.float64)
        return {"images": images, "state": state, "mw_obs": obs, "expert": expert,
                "sim_s": sim_s, "render_s": render_s}


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def _die_with_parent() -> None:
    """Linux: SIGTERM when the client process dies, even mid-request (stdin EOF covers the
    idle case everywhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        sys.exit(0)


def main() -> int:
    _die_with_parent()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print from a library must not corrupt the frames
    import warnings

    # Meta-World's scripted policies warn on every call that their gains may exceed [-1, 1].
    warnings.filterwarnings("ignore", module="metaworld.policies")
    worker = Worker()
    ops = {"hello": worker.hello, "reset": worker.reset, "step": worker.step}
    while (msg := read_frame(stdin)) is not None:
        op = msg.get("op")
        if op == "close":
            worker.close()
            write_frame(stdout, {"ok": True})
            return 0
        try:
            if op not in ops:
                raise KeyError(f"unknown op {op!r}; known: {sorted(ops)} and close")
            write_frame(stdout, {"ok": True, **ops[op](msg)})
        except Exception as e:  # reported to the client, which raises it there
            write_frame(stdout, {"ok": False, "error": f"{type(e).__name__}: {e}",
                                 "traceback": traceback.format_exc()})
    worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
