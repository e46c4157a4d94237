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
pick (the begin_actions marker after a plan; real-time chunking's committed actions). `feed`
(B, n) ids, -1 where the pick itself is fed, are what goes into the decoder after a position
that is still picked: a policy that decodes blocks of tokens (`PolicyConfig.action_block`)
feeds its `action_query` id there, never its own picks, so every position whose input is known
in advance is computed in one pass (`step_block`).
`echo` (n,) positions, -1 where unused, make the input after position i an earlier position's
id instead (block decoding re-feeds the previous block's tokens, policies.model.blocks); it
is known once that position is decided, so it joins any later call. Precedence of what is fed
after position i: echo, then forced, then feed, then the pick.
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


Echo = tuple[int, ...]


def echo_sources(n: int, echo: Sequence[int] | None = None) -> Echo:
    """Per position i, the position whose id is fed after it: echo[i] where given, else i."""
    if echo is None:
        return tuple(range(n))
    if len(echo) != n or any(not -1 <= int(m) < i for i, m in enumerate(echo) if m != -1):
        raise ValueError(f"echo must give, per position i of {n}, an earlier position or -1; "
                         f"got {list(echo)}")
    return tuple(int(m) if m >= 0 else i for i, m in enumerate(echo))


def fed_ids(n: int, rows: int, forced: np.ndarray | None = None,
            feed: np.ndarray | None = None, echo: Sequence[int] | None = None
            ) -> tuple[np.ndarray, tuple[bool, ...]]:
    """(B, n) ids fed after each position (-1: a decided id, echo_sources says whose) and, per
    position, whether that id is a constant (forced or fed): a run of inputs known before a
    call is one `step_block` (next_block)."""
    fed = np.full((rows, n), -1, np.int64)
    for name, given in (("feed", feed), ("forced", forced)):
        if given is None:
            continue
        if given.shape != (rows, n):
            raise ValueError(f"{name} ids must be ({rows}, {n}), got {given.shape}")
        fed = np.where(given >= 0, given, fed)
    src = echo_sources(n, echo)
    fed[:, [i for i in range(n) if src[i] != i]] = -1  # an echo wins over forced and feed
    known = fed >= 0
    if not (known == known[0]).all():
        raise ValueError("forced and fed positions must be the same in every row")
    return fed, tuple(bool(k) for k in known[0])


def next_block(i: int, known: tuple[bool, ...], src: Echo | None = None) -> int:
    """After positions < i are decided: the next decoder call feeds the inputs after
    positions i-1 .. j-2 (the first always, then every one known before the call: a constant,
    or an echo of a position < i) and computes the logits of positions i .. j-1; returns j."""
    j = i
    while j < len(known) - 1 and (known[j] or (src is not None and src[j] < i)):
        j += 1
    return j + 1 if j < len(known) else j


def call_lengths(n: int, forced: np.ndarray | None = None, feed: np.ndarray | None = None,
                 echo: Sequence[int] | None = None) -> list[int]:
    """Inputs of each decoder call after the prefill that decoding n positions takes (as
    generate's arguments): the sequential calls per chunk are 1 + len(...)."""
    rows = 1 if forced is None else len(forced)
    _, known = fed_ids(n, rows, forced, feed, echo)
    src = echo_sources(n, echo)
    out, i = [], 1
    while i < n:
        j = next_block(i, known, src)
        out.append(j - i)
        i = j
    return out


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

    def step_block(self, ids: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        """Logits (B, L, V) after appending L tokens per row. Default: L single steps."""
        out = []
        for i in range(ids.shape[1]):
            logits, cache = self.step(ids[:, i:i + 1], cache)
            out.append(logits)
        return np.stack(out, axis=1), cache

    def _decode(self, text, frames, state, n, lo, hi, forced, feed, echo, pick) -> np.ndarray:
        """The decoding loop of generate and sample: `pick(logits (B, A), span) -> (B,)`."""
        plan = slots(n, lo, hi, forced)
        fed, known = fed_ids(n, len(text), forced, feed, echo)
        src = echo_sources(n, echo)
        logits, cache = self.prefill(text, frames, state)
        logits = logits[:, None]  # (B, L, V): logits for positions i .. i + L - 1
        out = np.empty((len(text), n), np.int64)
        i = 0
        while True:
            for k in range(logits.shape[1]):
                span = plan[i + k]
                out[:, i + k] = forced[:, i + k] if span is None else pick(
                    logits[:, k, span[0]:span[1]], span) + span[0]
            i += logits.shape[1]
            if i >= n:
                return out
            j = next_block(i, known, src)
            ids = np.where(fed[:, i - 1:j - 1] >= 0, fed[:, i - 1:j - 1],
                           out[:, list(src[i - 1:j - 1])])
            if ids.shape[1] == 1:
                logits, cache = self.step(ids, cache)
                logits = logits[:, None]
            else:
                logits, cache = self.step_block(ids, cache)

    def generate(self, text: np.ndarray, frames: np.ndarray, state: np.ndarray, n: int,
                 lo: int | Sequence[int], hi: int | Sequence[int], rule: str = "argmax",
                 forced: np.ndarray | None = None, feed: np.ndarray | None = None,
                 echo: Sequence[int] | None = None) -> np.ndarray:
        check_rule(rule)
        return self._decode(text, frames, state, n, lo, hi, forced, feed, echo,
                            lambda z, span: pick_np(z, rule))

    def sample(self, text: np.ndarray, frames: np.ndarray, state: np.ndarray, n: int,
               lo: int | Sequence[int], hi: int | Sequence[int], rng: np.random.Generator,
               temperature: float = 1.0, top_k: int | None = None,
               forced: np.ndarray | None = None, feed: np.ndarray | None = None,
               echo: Sequence[int] | None = None) -> np.ndarray:
        """(B, n) ids in [lo, hi), each drawn from softmax(logits / temperature) over the
        top_k most likely (all when None). On prefill/step, so every engine can sample."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (greedy is generate()), got {temperature}")
        smallest = min((b - a for a, b in filter(None, slots(n, lo, hi, forced))), default=0)
        if top_k is not None and not 1 <= top_k <= smallest:
            raise ValueError(f"top_k must be in 1..{smallest} (the segment's size), got {top_k}")

        def draw(logits: np.ndarray, span: Span) -> np.ndarray:
            z = logits.astype(np.float64) / temperature  # (B, A)
            if top_k is not None:
                kth = np.partition(z, -top_k, axis=1)[:, -top_k][:, None]
                z = np.where(z >= kth, z, -np.inf)
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            u = rng.random((len(z), 1))  # inverse-CDF draw, one per row
            return np.minimum((p.cumsum(1) < u).sum(1), span[1] - span[0] - 1)

        return self._decode(text, frames, state, n, lo, hi, forced, feed, echo, draw)


def greedy_ids(model: TokenTransformer, text: torch.Tensor, frames: torch.Tensor,
               state: torch.Tensor, plan: tuple[Span | None, ...], rule: str = "argmax",
               forced: torch.Tensor | None = None, fed: torch.Tensor | None = None,
               known: tuple[bool, ...] | None = None, src: Echo | None = None
               ) -> torch.Tensor:
    """(B, len(plan)) ids, each picked by `rule` in its span (or taken from `forced` where the
    span is None), computed without leaving the device (no host syncs), which is what lets a
    CUDA graph capture the whole chunk. `fed`/`known` (fed_ids): inputs known in advance go
    through the decoder together (DecodeEngine._decode does the same on the host); `src`
    (echo_sources): whose id goes in after each position that is not known."""
    n = len(plan)
    known = known or (False,) * n
    src = src or tuple(range(n))
    x = model.prefix_embeddings(text, frames, state)  # (B, P, D)
    logits, caches = model(x, last_only=True)
    pos, out, i = x.shape[1], [], 0
    while True:
        for k in range(logits.shape[1]):
            span = plan[i + k]
            out.append(forced[:, i + k] if span is None else
                       pick_torch(logits[:, k, span[0]:span[1]], rule) + span[0])
        i += logits.shape[1]
        if i >= n:
            return torch.stack(out, dim=1)  # (B, n)
        j = next_block(i, known, src)
        ids = torch.stack([out[src[m]] if fed is None or not known[m] else fed[:, m]
                           for m in range(i - 1, j - 1)], dim=1)  # (B, L)
        logits, caches = model(model.embed(ids), pos, caches, last_only=ids.shape[1] == 1)
        pos += ids.shape[1]


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
    def step_block(self, ids, cache):
        caches, pos = cache
        with self._autocast():
            (t,) = self._tensors(ids)
            logits, caches = self.model(self.model.embed(t), pos, caches)
        return logits.float().cpu().numpy(), (caches, pos + ids.shape[1])

    @torch.inference_mode()
    def generate(self, text, frames, state, n, lo, hi, rule="argmax", forced=None, feed=None,
                 echo=None):
        check_rule(rule)
        plan = slots(n, lo, hi, forced)
        fed, known = fed_ids(n, len(text), forced, feed, echo)
        src = echo_sources(n, echo)
        # The forced ids go in on their own: fed lacks those whose successor is an echo.
        given = np.full_like(fed, -1) if forced is None else forced.astype(np.int64)
        inputs = self._tensors(text, frames, state, fed, given)
        if self.cuda_graphs:
            key = (*[tuple(t.shape) for t in inputs], plan, known, src, rule)
            if key not in self._graphs:
                self._graphs[key] = _CapturedChunk(self, inputs, plan, known, src, rule)
            return self._graphs[key].run(inputs).cpu().numpy()
        with self._autocast():
            *prefix, fed_t, given_t = inputs
            return greedy_ids(self.model, *prefix, plan, rule, given_t, fed_t,
                              known, src).cpu().numpy()


class _CapturedChunk:
    """One CUDA graph of `greedy_ids` for fixed shapes, with static input/output buffers
    (the forced ids are an input: real-time chunking changes them every chunk)."""

    def __init__(self, engine: TorchEngine, inputs: list[torch.Tensor],
                 plan: tuple[Span | None, ...], known: tuple[bool, ...], src: Echo,
                 rule: str = "argmax") -> None:
        self.static_in = [t.clone() for t in inputs]
        text, frames, state, fed, given = self.static_in
        args = (engine.model, text, frames, state, plan, rule, given, fed, known, src)
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
