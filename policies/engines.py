"""Decode engines: what runs the transformer for a TokenPolicy (torch eager/CUDA, ONNX Runtime).

An engine answers three questions about one batch of prefixes (text ids, uint8 frames, state
ids, optionally followed by forced action ids):
    prefill(...)      -> logits of the last position (B, V), an opaque KV cache
    step(ids, cache)  -> logits (B, V) after appending one token per row, the grown cache
    generate(..., n)  -> the next n ids constrained to [lo, hi) (B, n) int64, each picked
                         deterministically by a decode rule (median or argmax, see below)
    sample(..., n)    -> the same, sampled (temperature, top-k): candidates for lookahead
`generate` has a generic implementation on top of prefill/step; engines override it where
they can do better (torch keeps the whole loop on the device, and captures it as a CUDA graph).
The policy, not the engine, decides which tokens are forced (real-time chunking).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from policies.transformer import TokenTransformer

# How a token is picked from the constrained logits. "median": the bin where the cumulative
# probability crosses 1/2, the point estimate with the least expected |error| for ordered bins.
# "argmax": the most likely bin. Median is the default because the action codec's quantile bins
# put each step limit (+-0.05 m, +-0.3 rad), where the expert's actions pile up, into ONE bin
# while the continuous rest spreads over hundreds: argmax then picks a limit even when most of
# the mass lies on the other side of zero (issue 5: every first move was full speed).
DECODE_RULES = ("median", "argmax")


def check_rule(rule: str) -> str:
    if rule not in DECODE_RULES:
        raise ValueError(f"unknown decode rule {rule!r}; known: {list(DECODE_RULES)}")
    return rule


def pick_np(z: np.ndarray, rule: str) -> np.ndarray:
    """(B, A) logits of one segment -> (B,) local ids by `rule`."""
    if rule == "argmax":
        return z.argmax(-1)
    p = np.exp(z - z.max(-1, keepdims=True))
    cdf = p.cumsum(-1) / p.sum(-1, keepdims=True)
    return np.minimum((cdf < 0.5).sum(-1), z.shape[-1] - 1)


def pick_torch(z: torch.Tensor, rule: str) -> torch.Tensor:
    """pick_np on the device (no host sync: CUDA graphs capture it)."""
    if rule == "argmax":
        return z.argmax(-1)
    cdf = z.float().softmax(-1).cumsum(-1)
    return (cdf < 0.5).sum(-1).clamp_max(z.shape[-1] - 1)


class DecodeEngine:
    """Base class: greedy generation from `prefill` and `step` (see module doc)."""

    name = "engine"

    def describe(self) -> str:
        return self.name

    def prefill(self, text: np.ndarray, frames: np.ndarray, state: np.ndarray
                ) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def step(self, ids: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def generate(self, text: np.ndarray, frames: np.ndarray, state: np.ndarray, n: int,
                 lo: int, hi: int, rule: str = "argmax") -> np.ndarray:
        check_rule(rule)
        logits, cache = self.prefill(text, frames, state)
        out = np.empty((len(text), n), np.int64)
        for i in range(n):
            out[:, i] = pick_np(logits[:, lo:hi], rule) + lo
            if i + 1 < n:
                logits, cache = self.step(out[:, i:i + 1], cache)
        return out

    def sample(self, text: np.ndarray, frames: np.ndarray, state: np.ndarray, n: int,
               lo: int, hi: int, rng: np.random.Generator, temperature: float = 1.0,
               top_k: int | None = None) -> np.ndarray:
        """(B, n) ids in [lo, hi), each drawn from softmax(logits / temperature) over the
        top_k most likely (all when None). On prefill/step, so every engine can sample."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (greedy is generate()), got {temperature}")
        if top_k is not None and not 1 <= top_k <= hi - lo:
            raise ValueError(f"top_k must be in 1..{hi - lo} (the segment's size), got {top_k}")
        logits, cache = self.prefill(text, frames, state)
        out = np.empty((len(text), n), np.int64)
        for i in range(n):
            z = logits[:, lo:hi].astype(np.float64) / temperature  # (B, A)
            if top_k is not None:
                kth = np.partition(z, -top_k, axis=1)[:, -top_k][:, None]
                z = np.where(z >= kth, z, -np.inf)
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            u = rng.random((len(z), 1))  # inverse-CDF draw, one per row
            out[:, i] = np.minimum((p.cumsum(1) < u).sum(1), hi - lo - 1) + lo
            if i + 1 < n:
                logits, cache = self.step(out[:, i:i + 1], cache)
        return out


def greedy_ids(model: TokenTransformer, text: torch.Tensor, frames: torch.Tensor,
               state: torch.Tensor, n: int, lo: int, hi: int, rule: str = "argmax"
               ) -> torch.Tensor:
    """(B, n) ids in [lo, hi) picked by `rule`, computed without leaving the device (no host
    syncs), which is what lets a CUDA graph capture the whole chunk."""
    x = model.prefix_embeddings(text, frames, state)  # (B, P, D)
    logits, caches = model(x, last_only=True)
    pos, out = x.shape[1], []
    for i in range(n):
        nxt = pick_torch(logits[:, -1, lo:hi], rule) + lo  # (B,)
        out.append(nxt)
        if i + 1 < n:
            logits, caches = model(model.embed(nxt[:, None]), pos, caches, last_only=True)
            pos += 1
    return torch.stack(out, dim=1)  # (B, n)


class TorchEngine(DecodeEngine):
    """The PyTorch model itself: CPU eager, or CUDA with bf16 autocast and CUDA graphs.

    On CUDA a chunk is a fixed sequence of kernels for a given (batch, prefix length, n): the
    prefix length is fixed by the policy config (plus the forced tokens), so one graph per
    shape is captured on first use and replayed after; this removes the per-kernel launch cost
    that dominates batch-1 decoding.
    """

    name = "torch"

    def __init__(self, model: TokenTransformer, device: str | None = None,
                 cuda_graphs: bool = True) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # A copy on another device: other engines (and the export) keep using the original.
        same = next(model.parameters()).device.type == self.device.type
        self.model = (model if same else copy.deepcopy(model).to(self.device)).eval()
        self.cuda = self.device.type == "cuda"
        self.cuda_graphs = cuda_graphs and self.cuda
        self._graphs: dict[tuple, _CapturedChunk] = {}

    def describe(self) -> str:
        if not self.cuda:
            return f"torch[cpu, {torch.get_num_threads()} thread(s)]"
        return f"torch[{self.device}, bf16{', cuda graphs' if self.cuda_graphs else ''}]"

    def _autocast(self) -> Any:
        # cache_enabled=False: autocast's weight-cast cache is not safe across graph capture.
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda,
                              cache_enabled=False)

    def _tensors(self, *arrays: np.ndarray) -> list[torch.Tensor]:
        return [torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in arrays]

    @torch.inference_mode()
    def prefill(self, text, frames, state):
        with self._autocast():
            x = self.model.prefix_embeddings(*self._tensors(text, frames, state))
            logits, caches = self.model(x, last_only=True)
        return logits[:, -1].float().cpu().numpy(), (caches, x.shape[1])

    @torch.inference_mode()
    def step(self, ids, cache):
        caches, pos = cache
        with self._autocast():
            (t,) = self._tensors(ids)
            logits, caches = self.model(self.model.embed(t), pos, caches)
        return logits[:, -1].float().cpu().numpy(), (caches, pos + ids.shape[1])

    @torch.inference_mode()
    def generate(self, text, frames, state, n, lo, hi, rule="argmax"):
        check_rule(rule)
        inputs = self._tensors(text, frames, state)
        if self.cuda_graphs:
            key = (*[tuple(t.shape) for t in inputs], n, lo, hi, rule)
            if key not in self._graphs:
                self._graphs[key] = _CapturedChunk(self, inputs, n, lo, hi, rule)
            return self._graphs[key].run(inputs).cpu().numpy()
        with self._autocast():
            return greedy_ids(self.model, *inputs, n, lo, hi, rule).cpu().numpy()


class _CapturedChunk:
    """One CUDA graph of `greedy_ids` for fixed shapes, with static input/output buffers."""

    def __init__(self, engine: TorchEngine, inputs: list[torch.Tensor], n: int, lo: int,
                 hi: int, rule: str = "argmax") -> None:
        self.static_in = [t.clone() for t in inputs]
        args = (engine.model, *self.static_in, n, lo, hi, rule)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), engine._autocast():  # warm-up: cuBLAS handles, allocator
            for _ in range(2):
                greedy_ids(*args)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), engine._autocast():
            self.static_out = greedy_ids(*args)

    def run(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        for buf, t in zip(self.static_in, inputs, strict=True):
            buf.copy_(t)
        self.graph.replay()
        return self.static_out.clone()
