"""`--backend auto|torch|onnx`: which engine runs a TokenPolicy, chosen by name or by timing.

    torch  the PyTorch model: CPU (1 thread), or CUDA with bf16 and CUDA graphs
    onnx   ONNX Runtime on the exported graphs (providers TensorRT -> CUDA -> CPU, see
           policies.inference.onnx_engine); the export is found in --onnx-dir, `<checkpoint>/onnx`,
           or
           made once into a cache directory keyed by the weights
    auto   builds every backend that is available, times a few chunks on a blank observation
           and keeps the fastest, saying which and why
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.types import Observation
from policies.inference.torch_engine import DecodeEngine, TorchEngine
from policies.model.token_policy import TokenPolicy


class UnknownBackendError(ValueError):
    """A backend name that is not registered."""


@dataclass(frozen=True)
class BackendOptions:
    """What selects and configures an engine (the `agent run`/`export` flags)."""

    name: str = "auto"
    checkpoint: Path | None = None  # where the policy was loaded from (for <checkpoint>/onnx)
    onnx_dir: Path | None = None
    provider: str = "auto"
    device: str | None = None  # torch: None = cuda if available, else cpu


def cache_root() -> Path:
    return Path(os.environ.get("MOTOKEN_CACHE", Path.home() / ".cache" / "motoken"))


def find_or_export_onnx(policy: TokenPolicy, opts: BackendOptions,
                        log: Callable[[str], None] = print) -> tuple[Path, dict]:
    """The ONNX export for `policy`, checked against it; exported first if there is none."""
    from policies.inference.onnx_export import export_policy, read_export, weights_hash

    if opts.onnx_dir is not None:
        return opts.onnx_dir, read_export(opts.onnx_dir, policy)
    beside = opts.checkpoint / "onnx" if opts.checkpoint else None
    if beside is not None and (beside / "export.json").is_file():
        return beside, read_export(beside, policy)
    cached = cache_root() / "onnx" / weights_hash(policy.model)[:16]
    if not (cached / "export.json").is_file():
        log(f"exporting the policy to ONNX in {cached} (once per checkpoint)")
        export_policy(policy, cached)
    return cached, read_export(cached, policy)


def _torch(policy: TokenPolicy, opts: BackendOptions, log: Callable) -> DecodeEngine:
    return TorchEngine(policy.model, device=opts.device)


def _onnx(policy: TokenPolicy, opts: BackendOptions, log: Callable) -> DecodeEngine:
    from policies.inference.onnx_engine import OnnxEngine

    directory, meta = find_or_export_onnx(policy, opts, log)
    return OnnxEngine(directory, meta, provider=opts.provider)


def _onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


# name -> (is it usable here?, build the engine)
BACKENDS: dict[str, tuple[Callable[[], bool], Callable[..., DecodeEngine]]] = {
    "torch": (lambda: True, _torch),
    "onnx": (_onnx_available, _onnx),
}


def blank_observation(policy: TokenPolicy) -> Observation:
    size = policy.model.cfg.image_size
    images = {c: np.zeros((size, size, 3), np.uint8) for c in policy.config.cameras}
    robots = policy.config.robots
    if robots is None:
        return Observation(images, np.zeros(policy.config.state_dim, np.float32), "warm up")
    robot, layout = robots.layouts[0]  # a multi-robot policy: any robot it knows times alike
    return Observation(images, np.zeros(layout.dim, np.float32), "warm up", robot=robot)


def time_chunks(policy: TokenPolicy, n: int = 3) -> float:
    """Median seconds per chunk over n calls after one warm-up (which also captures graphs)."""
    obs = blank_observation(policy)
    policy.infer_chunk(obs)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        policy.infer_chunk(obs)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def make_engine(policy: TokenPolicy, opts: BackendOptions,
                log: Callable[[str], None] = print) -> DecodeEngine:
    """Build the engine `opts.name` names (or the fastest, for "auto") and install it."""
    if opts.name == "auto":
        return _auto(policy, opts, log)
    if opts.name not in BACKENDS:
        close = difflib.get_close_matches(opts.name, [*BACKENDS, "auto"], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownBackendError(f"unknown backend {opts.name!r}: choose from "
                                  f"{['auto', *BACKENDS]}{hint}")
    available, build = BACKENDS[opts.name]
    if not available():
        raise UnknownBackendError(f"backend {opts.name!r} is not available here (onnxruntime "
                                  f"is not installed); available: {available_backends()}")
    engine = build(policy, opts, log)
    policy.use_engine(engine)
    return engine


def available_backends() -> list[str]:
    return [name for name, (ok, _) in BACKENDS.items() if ok()]


def _auto(policy: TokenPolicy, opts: BackendOptions, log: Callable) -> DecodeEngine:
    timed: list[tuple[float, DecodeEngine]] = []
    for name in available_backends():
        try:
            engine = make_engine(policy, BackendOptions(**{**opts.__dict__, "name": name}), log)
        except Exception as e:  # one broken backend must not stop the others from running
            log(f"backend auto: {name} unusable ({type(e).__name__}: {e})")
            continue
        timed.append((time_chunks(policy), engine))
    if not timed:
        raise UnknownBackendError("backend auto: no backend could be built")
    timed.sort(key=lambda x: x[0])
    best_s, best = timed[0]
    ranking = ", ".join(f"{e.describe()} {s * 1e3:.1f} ms" for s, e in timed)
    log(f"backend auto: {best.describe()} is the fastest per chunk ({ranking})")
    policy.use_engine(best)
    return best
