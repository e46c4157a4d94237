"""Decode engines: what runs the transformer for a TokenPolicy (torch eager/CUDA, ONNX Runtime).

An engine answers three questions about one batch of prefixes (text ids, uint8 frames, state
ids, optionally followed by forced action ids):
    prefill(...)      -> logits of the last position (B, V), an opaque KV cache
    step(ids, cache)  -> logits (B, V) after appending one token per row, the grown cache
    generate(..., n)  -> the next n ids constrained to [lo, hi) (B, n) int64, each picked
                         deterministically by a decode rule (median or argmax, see below)
    sample(..., n)    -> the same, sampled (temperature, top-k): candidates for lookahead
`lo`/`hi` may also be one bound per generated position (a policy with plan tokens writes plan
ids, then action ids), and `forced` (B, n) ids, -1 where the engine picks, are fed in place of a
pick (the begin_actions marker after a plan; real-time chunking's committed actions).
`generate` has a generic implementation on top of prefill/step; engines override it where
they can do better (torch keeps the whole loop on the device, and captures it as a CUDA graph).
The policy, not the engine, decides which tokens are forced (real-time chunking).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from policies.model.transformer import TokenTransformer

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


Span = tuple[int, int]


def slots(n: int, lo: int | Sequence[int], hi: int | Sequence[int],
          forced: np.ndarray | None = None) -> tuple[Span | None, ...]:
    """Per generated position: the [lo, hi) id range to pick in, or None where `forced` gives
    the id (the same positions in every row)."""
    los = [lo] * n if isinstance(lo, (int, np.integer)) else list(lo)
    his = [hi] * n if isinstance(hi, (int, np.integer)) else list(hi)
    if len(los) != n or len(his) != n:
        raise ValueError(f"need one lo/hi per generated position ({n}), got {len(los)}/{len(his)}")
    given = np.zeros(n, bool)
    if forced is not None:
        if forced.ndim != 2 or forced.shape[1] != n:
            raise ValueError(f"forced ids must be (B, {n}), got {forced.shape}")
        given = forced >= 0
        if not (given == given[0]).all():
            raise ValueError("forced positions must be the same in every row")
        given = given[0]
    out = []
    for i in range(n):
        if given[i]:
            out.append(None)
        elif not 0 <= los[i] < his[i]:
            raise ValueError(f"position {i}: empty id range [{los[i]}, {his[i]})")
        else:
            out.append((int(los[i]), int(his[i])))
    return tuple(out)


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
                 lo: int | Sequence[int], hi: int | Sequence[int], rule: str = "argmax",
                 forced: np.ndarray | None = None) -> np.ndarray:
        check_rule(rule)
        plan = slots(n, lo, hi, forced)
        logits, cache = self.prefill(text, frames, state)
        out = np.empty((len(text), n), np.int64)
        for i, span in enumerate(plan):
            out[:, i] = forced[:, i] if span is None else \
                pick_np(logits[:, span[0]:span[1]], rule) + span[0]
            if i + 1 < n:
                logits, cache = self.step(out[:, i:i + 1], cache)
        return out

    def sample(self, text: np.ndarray, frames: np.ndarray, state: np.ndarray, n: int,
               lo: int | Sequence[int], hi: int | Sequence[int], rng: np.random.Generator,
               temperature: float = 1.0, top_k: int | None = None,
               forced: np.ndarray | None = None) -> np.ndarray:
        """(B, n) ids in [lo, hi), each drawn from softmax(logits / temperature) over the
        top_k most likely (all when None). On prefill/step, so every engine can sample."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (greedy is generate()), got {temperature}")
        plan = slots(n, lo, hi, forced)
        smallest = min((b - a for a, b in filter(None, plan)), default=0)
        if top_k is not None and not 1 <= top_k <= smallest:
            raise ValueError(f"top_k must be in 1..{smallest} (the segment's size), got {top_k}")
        logits, cache = self.prefill(text, frames, state)
        out = np.empty((len(text), n), np.int64)
        for i, span in enumerate(plan):
            if span is None:
                out[:, i] = forced[:, i]
            else:
                a, b = span
                z = logits[:, a:b].astype(np.float64) / temperature  # (B, A)
                if top_k is not None:
                    kth = np.partition(z, -top_k, axis=1)[:, -top_k][:, None]
                    z = np.where(z >= kth, z, -np.inf)
                p = np.exp(z - z.max(1, keepdims=True))
                p /= p.sum(1, keepdims=True)
                u = rng.random((len(z), 1))  # inverse-CDF draw, one per row
                out[:, i] = np.minimum((p.cumsum(1) < u).sum(1), b - a - 1) + a
            if i + 1 < n:
                logits, cache = self.step(out[:, i:i + 1], cache)
        return out


def greedy_ids(model: TokenTransformer, text: torch.Tensor, frames: torch.Tensor,
               state: torch.Tensor, plan: tuple[Span | None, ...], rule: str = "argmax",
               forced: torch.Tensor | None = None) -> torch.Tensor:
    """(B, len(plan)) ids, each picked by `rule` in its span (or taken from `forced` where the
    span is None), computed without leaving the device (no host syncs), which is what lets a
    CUDA graph capture the whole chunk."""
    x = model.prefix_embeddings(text, frames, state)  # (B, P, D)
    logits, caches = model(x, last_only=True)
    pos, out = x.shape[1], []
    for i, span in enumerate(plan):
        if span is None:
            nxt = forced[:, i]  # (B,)
        else:
            nxt = pick_torch(logits[:, -1, span[0]:span[1]], rule) + span[0]  # (B,)
        out.append(nxt)
        if i + 1 < len(plan):
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
    def generate(self, text, frames, state, n, lo, hi, rule="argmax", forced=None):
        check_rule(rule)
        plan = slots(n, lo, hi, forced)
        inputs = self._tensors(text, frames, state,
                               np.zeros((len(text), n), np.int64) if forced is None else forced)
        if self.cuda_graphs:
            key = (*[tuple(t.shape) for t in inputs], plan, rule)
            if key not in self._graphs:
                self._graphs[key] = _CapturedChunk(self, inputs, plan, rule)
            return self._graphs[key].run(inputs).cpu().numpy()
        with self._autocast():
            *prefix, forced_t = inputs
            return greedy_ids(self.model, *prefix, plan, rule, forced_t).cpu().numpy()


class _CapturedChunk:
    """One CUDA graph of `greedy_ids` for fixed shapes, with static input/output buffers
    (the forced ids are an input: real-time chunking changes them every chunk)."""

    def __init__(self, engine: TorchEngine, inputs: list[torch.Tensor],
                 plan: tuple[Span | None, ...], rule: str = "argmax") -> None:
        self.static_in = [t.clone() for t in inputs]
        text, frames, state, forced = self.static_in
        args = (engine.model, text, frames, state, plan, rule, forced)
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
