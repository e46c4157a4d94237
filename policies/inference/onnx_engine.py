"""ONNX Runtime decode engine, and the choice of its execution providers.

Providers are tried in the order TensorRT -> CUDA -> CPU among those this onnxruntime build
has; naming one (`--onnx-provider cuda`) starts the chain there, and naming one that is not
installed is an error that lists the installed ones. TensorRT engines are built once per
graph and shape profile and cached on disk (`<export dir>/trt_cache`), because building takes
minutes and the loop must not pay it at start-up twice.

On a GPU the KV cache stays in ONNX Runtime's memory between steps (IO binding): it never
crosses to the host; only the logits (B, V) do, for the constrained pick. On the CPU there is
no device to stay on, and binding costs more than it saves: the cache (at most ~0.6 MB for the
shipped policy) goes in and out as numpy arrays through a plain `session.run`, which made a
decode step 0.44-0.48 ms instead of 0.58-0.68 ms and a chunk 0.86-0.88x as long, with the same
logits (experiments/onnx_speed/NOTE.md).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import numpy as np

from policies.inference.onnx_export import cache_names
from policies.inference.torch_engine import DecodeEngine

# Our short names -> ONNX Runtime's, in preference order.
PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


class ProviderError(ValueError):
    """An execution provider that is unknown, or not installed in this onnxruntime."""


def installed_providers() -> list[str]:
    import onnxruntime as ort

    return ort.get_available_providers()


def select_providers(requested: str = "auto", available: list[str] | None = None) -> list[str]:
    """ORT provider names to create a session with, best first (see module doc).

    Raises:
        ProviderError: `requested` is not a known short name, or is not installed.
    """
    available = installed_providers() if available is None else available
    order = list(PROVIDERS)
    if requested != "auto":
        if requested not in PROVIDERS:
            close = difflib.get_close_matches(requested, [*PROVIDERS, "auto"], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ProviderError(f"unknown ONNX Runtime provider {requested!r}: choose from "
                                f"{['auto', *PROVIDERS]}{hint}")
        if PROVIDERS[requested] not in available:
            have = [k for k, v in PROVIDERS.items() if v in available]
            raise ProviderError(
                f"ONNX Runtime provider {requested!r} ({PROVIDERS[requested]}) is not "
                f"installed; this onnxruntime has {have} ({', '.join(available)}). "
                f"CUDA/TensorRT need the onnxruntime-gpu package (and TensorRT libraries)")
        order = order[order.index(requested):]  # later ones take the nodes it cannot run
    return [PROVIDERS[k] for k in order if PROVIDERS[k] in available]


def provider_options(provider: str, graph: str, export_dir: Path, meta: dict) -> dict[str, Any]:
    if provider != PROVIDERS["tensorrt"]:
        return {}
    # Shape profiles cover every length a chunk can reach (forced prefixes included), so
    # TensorRT builds one engine per graph instead of one per decode step.
    m, p = meta["model"], meta["policy"]
    hd, nh = m["d_model"] // m["n_heads"], m["n_heads"]
    lo = meta["prefix_len"]["min"]
    hi = meta.get("max_seq", meta["prefix_len"]["max"] + p["chunk"] * p["action_dim"])
    if graph == "prefill":
        state = p["state_dim"] + 3
        fixed = (f"text_ids:1x{p['text_len']},"
                 f"frames:1x{m['n_cameras']}x{m['image_size']}x{m['image_size']}x3")

        def profile(extra: int) -> str:
            return f"{fixed},state_ids:1x{state + extra}"

        shapes = (profile(0), profile(0), profile((p["chunk"] - 1) * p["action_dim"]))
    else:
        past = cache_names("past", m["n_layers"])

        ids = meta["graphs"][graph].get("length", 1)

        def profile(seq: int) -> str:
            return ",".join([f"input_ids:1x{ids}"] + [f"{x}:1x{nh}x{seq}x{hd}" for x in past])

        shapes = (profile(lo), profile((lo + hi) // 2), profile(hi))
    return {"trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(export_dir / "trt_cache"),
            "trt_fp16_enable": True, "trt_profile_min_shapes": shapes[0],
            "trt_profile_opt_shapes": shapes[1], "trt_profile_max_shapes": shapes[2]}


def session_options(threads: int = 1) -> Any:
    """The engine's ort.SessionOptions (a study may change them before passing them in)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Batch-1 decoding is a chain of small ops: one thread avoids waking (and, on a busy
    # 2-core machine, fighting) a thread pool for each of them.
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


class OnnxEngine(DecodeEngine):
    """prefill.onnx + decode.onnx in ONNX Runtime sessions (see policies.inference.onnx_export).

    Args:
        io_binding: keep the cache in ORT's memory between steps; None (the default) binds on
            GPU providers only (see module doc). Either way gives the same numbers.
        options: ort.SessionOptions for both sessions; None: `session_options(threads)`.
    """

    name = "onnx"

    def __init__(self, export_dir: Path, meta: dict, provider: str = "auto",
                 threads: int = 1, io_binding: bool | None = None, options: Any = None) -> None:
        import onnxruntime as ort

        self.providers = select_providers(provider)
        opts = session_options(threads) if options is None else options
        sessions = {}
        for graph in meta["graphs"]:
            chain = [(p, provider_options(p, graph, export_dir, meta)) for p in self.providers]
            sessions[graph] = ort.InferenceSession(
                str(export_dir / meta["graphs"][graph]["file"]), opts, providers=chain)
        self.prefill_session, self.decode_session = sessions["prefill"], sessions["decode"]
        # Block passes (onnx_export._Decode with block=True), one per fixed length; an export
        # made before block_K.onnx has at most one, "block" (parallel_actions).
        self.block_sessions = {g["length"]: sessions[name] for name, g in meta["graphs"].items()
                               if "length" in g}
        self.device = "cpu" if self.providers[0] == PROVIDERS["cpu"] else "cuda"
        n = meta["model"]["n_layers"]
        self._present, self._past = cache_names("present", n), cache_names("past", n)
        self.io_binding = self.device != "cpu" if io_binding is None else io_binding
        self._run = self._run_bound if self.io_binding else self._run_host

    def describe(self) -> str:
        used = self.decode_session.get_providers()
        return f"onnx[{', '.join(p.removesuffix('ExecutionProvider') for p in used)}]"

    def _run_host(self, session: Any, inputs: dict[str, Any]) -> tuple[np.ndarray, list]:
        out = session.run(None, inputs)
        return out[0], out[1:]

    def _run_bound(self, session: Any, inputs: dict[str, Any]) -> tuple[np.ndarray, list]:
        binding = session.io_binding()
        for name, value in inputs.items():
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
            else:  # an OrtValue already where the session wants it (the cache)
                binding.bind_ortvalue_input(name, value)
        binding.bind_output("logits", "cpu")
        for name in self._present:
            binding.bind_output(name, self.device)
        session.run_with_iobinding(binding)
        out = binding.get_outputs()
        return out[0].numpy(), out[1:]

    def prefill(self, text, frames, state):
        return self._run(self.prefill_session, {"text_ids": text.astype(np.int64),
                                                "frames": frames.astype(np.uint8),
                                                "state_ids": state.astype(np.int64)})

    def step_block(self, ids, cache):
        """A length with no graph of its own (a committed prefix lengthens the first call) runs
        in pieces: the longest graphs that fit, then single steps; the cache makes the pieces
        the same causal computation."""
        out, i = [], 0
        while i < ids.shape[1]:
            k = max((m for m in self.block_sessions if m <= ids.shape[1] - i), default=1)
            session = self.block_sessions[k] if k > 1 else self.decode_session
            logits, cache = self._run(session, {"input_ids": ids[:, i:i + k].astype(np.int64),
                                                **dict(zip(self._past, cache, strict=True))})
            out.append(logits if k > 1 else logits[:, None])
            i += k
        return np.concatenate(out, axis=1), cache

    def step(self, ids, cache):
        return self._run(self.decode_session,
                         {"input_ids": ids.astype(np.int64), **dict(zip(self._past, cache,
                                                                        strict=True))})
