"""Export a TokenPolicy's transformer to ONNX: a prefill graph and a one-token decode graph.

Layout of an export directory (`agent export --policy RUN --out DIR`):
    prefill.onnx  text_ids (B, T) int64, frames (B, C, H, W, 3) uint8, state_ids (B, S) int64
                  -> logits (B, V) float32 (last position), present.{i}.key/value
                     (B, n_heads, T + C*G*G + S, head_dim) for every layer i
    decode.onnx   input_ids (B, 1) int64, past.{i}.key/value (B, n_heads, L, head_dim)
                  -> logits (B, V), present.{i}.key/value (B, n_heads, L + 1, head_dim)
    block_K.onnx  (a policy that decodes in blocks, PolicyConfig.action_block/plan_block) one
                  per length K of its decoder calls (block_lens): input_ids (B, K) int64, the
                  cache -> logits (B, K, V), present (B, n_heads, L + K, head_dim); e.g. the
                  whole chunk in one run (K = H * Da + 1 with a plan), or one chunk step
    export.json   format/version, the checkpoint's model and policy config, vocab_hash and a
                  weights hash (an ONNX dir only runs with the checkpoint it came from), graph
                  signatures, the prefix length range (TensorRT shape profiles use it)
    parity.json   written by policies.inference.parity: torch vs ONNX on recorded observations

`state_ids` has a dynamic length because real-time chunking appends forced action ids to it;
the decode graph reads its position from the cache length, so one graph serves every step.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from policies.inference.torch_engine import call_lengths
from policies.model.checkpoint import upgrade_policy_fields
from policies.model.token_policy import CheckpointMismatchError, TokenPolicy
from policies.model.transformer import TokenTransformer

EXPORT_FORMAT = "motoken.onnx_export"
EXPORT_VERSION = 1
OPSET = 17


class _Prefill(nn.Module):
    def __init__(self, model: TokenTransformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, text, frames, state):
        x = self.model.prefix_embeddings(text, frames, state)  # (B, P, D)
        logits, caches = self.model(x, last_only=True)
        return (logits[:, -1], *[t for kv in caches for t in kv])


class _Decode(nn.Module):
    """New positions appended to the cache: one (decode.onnx: the last logits) or K at once,
    causal among themselves (block.onnx: every position's logits; the tracer fixes K, see
    Attention)."""

    def __init__(self, model: TokenTransformer, block: bool = False) -> None:
        super().__init__()
        self.model, self.block = model, block

    def forward(self, ids, *past):
        caches = [(past[i], past[i + 1]) for i in range(0, len(past), 2)]
        start = past[0].shape[2]  # traced: the position comes from the cache length
        logits, caches = self.model(self.model.embed(ids), start, caches,
                                    last_only=not self.block)
        return (logits if self.block else logits[:, -1], *[t for kv in caches for t in kv])


def block_lens(policy: TokenPolicy) -> list[int]:
    """The input lengths > 1 of the decoder calls of one chunk without a committed prefix
    (DecodeEngine._decode), each a block_K.onnx. A parallel policy's one: with a plan, the
    last plan id, begin_actions and the chunk's first H * Da - 1 slots. Calls of other lengths
    (a committed prefix joins the first) run as pieces of these (OnnxEngine.step_block)."""
    s = policy.decode_schedule(np.empty((1, 0), np.int64))
    return sorted({k for k in call_lengths(s.n, s.forced, s.feed, s.echo) if k > 1})


def cache_names(prefix: str, n_layers: int) -> list[str]:
    return [f"{prefix}.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]


def weights_hash(model: nn.Module) -> str:
    """sha256 over the state dict (names, shapes, bytes): identifies one set of weights."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def prefix_len(policy: TokenPolicy) -> int:
    """Length of the prefill sequence without forced actions."""
    c = policy.config
    return c.text_len + policy.model.cfg.n_patches + c.state_dim + 3


def _export_graphs(policy: TokenPolicy, out: Path) -> tuple[tuple, tuple]:
    """Trace prefill.onnx and decode.onnx into `out`; their (inputs, outputs) names."""
    model = policy.model
    if next(model.parameters()).device.type != "cpu":  # trace a CPU copy; leave the policy's
        model = copy.deepcopy(model).cpu()
    model.eval()
    text, frames, _ = model.cfg.fake_inputs(batch=1, text_len=policy.config.text_len)
    state = torch.randint(0, model.cfg.vocab_size, (1, policy.config.state_dim + 3))
    present, past = (cache_names(p, model.cfg.n_layers) for p in ("present", "past"))
    cache_axes = {0: "batch", 2: "seq"}
    prefill_io = (["text_ids", "frames", "state_ids"], ["logits", *present])
    decode_io = (["input_ids", *past], ["logits", *present])
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about every Python int taken from a shape; they are intended.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Prefill(model), (text, frames, state), str(out / "prefill.onnx"),
            input_names=prefill_io[0], output_names=prefill_io[1], opset_version=OPSET,
            dynamo=False, dynamic_axes={"text_ids": {0: "batch"}, "frames": {0: "batch"},
                                        "state_ids": {0: "batch", 1: "state_len"},
                                        "logits": {0: "batch"},
                                        **dict.fromkeys(present, cache_axes)})
        caches = _Prefill(model)(text, frames, state)[1:]
        torch.onnx.export(
            _Decode(model), (torch.zeros(1, 1, dtype=torch.long), *caches),
            str(out / "decode.onnx"), input_names=decode_io[0], output_names=decode_io[1],
            opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"},
                          **dict.fromkeys(past + present, cache_axes)})
        for k in block_lens(policy):
            block_ids = torch.zeros(1, k, dtype=torch.long)
            torch.onnx.export(
                _Decode(model, block=True), (block_ids, *caches), str(out / f"block_{k}.onnx"),
                input_names=decode_io[0], output_names=decode_io[1],
                opset_version=OPSET, dynamo=False,
                dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"},
                              **dict.fromkeys(past + present, cache_axes)})
    return prefill_io, decode_io


def export_policy(policy: TokenPolicy, out: Path) -> dict:
    """Write prefill.onnx, decode.onnx (both checked) and export.json; returns the metadata."""
    import onnx

    out.mkdir(parents=True, exist_ok=True)
    prefill_io, decode_io = _export_graphs(policy, out)
    blocks = block_lens(policy)
    graphs = ["prefill", "decode"] + [f"block_{k}" for k in blocks]
    for graph in graphs:
        onnx.checker.check_model(str(out / f"{graph}.onnx"), full_check=True)
    c = policy.config
    meta = {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "opset": OPSET,
        "torch": torch.__version__, "onnx": onnx.__version__,
        "model": policy.model.cfg.to_dict(), "policy": c.to_dict(),
        "vocab_hash": policy.layout.hash, "weights_sha256": weights_hash(policy.model),
        "prefix_len": {"min": prefix_len(policy),
                       "max": prefix_len(policy) + (c.chunk - 1) * c.action_dim},
        # the longest cache a chunk reaches (block decoding's echo slots included)
        "max_seq": prefix_len(policy) + policy.decode_schedule(np.empty((1, 0), np.int64)).n,
        "graphs": {"prefill": {"file": "prefill.onnx", "inputs": prefill_io[0],
                               "outputs": prefill_io[1]},
                   "decode": {"file": "decode.onnx", "inputs": decode_io[0],
                              "outputs": decode_io[1]}},
    }
    for k in blocks:
        meta["graphs"][f"block_{k}"] = {"file": f"block_{k}.onnx", "inputs": decode_io[0],
                                        "outputs": decode_io[1], "length": k}
    (out / "export.json").write_text(json.dumps(meta, indent=2))
    return meta


def _without_provenance(config: dict) -> dict:
    # Where the checkpoint's data came from (trained_on) changes no graph, and the weights
    # hash already tells one training run from another: left out on both sides.
    return {k: v for k, v in config.items() if k not in ("trained_on", "trained_robots")}


# Policy config fields added after exports were first cached, with the value every earlier
# checkpoint has: an export that lacks one was made from a checkpoint with that value.
LATER_FIELDS = {"action_block": 1, "plan_block": "token", "robot_states": None,
                "plan_object_names": None, "delay_tokens": 0}


def _as_exported(config: dict, exported: dict | None) -> dict:
    """The policy config to compare with an export's: exports made before checkpoints named
    their state and action fields lack the names, which change no graph (a cached export of
    the same weights stays valid), so they are left out of the comparison there; so are later
    fields (LATER_FIELDS) the export lacks while the checkpoint has their earlier value."""
    config = _without_provenance(config)
    if not isinstance(exported, dict):
        return config
    if "state_names" not in exported:
        config = {k: v for k, v in config.items() if k not in ("state_names", "action_names")}
    return {k: v for k, v in config.items()
            if not (k in LATER_FIELDS and k not in exported and v == LATER_FIELDS[k])}


def read_export(directory: Path, policy: TokenPolicy) -> dict:
    """export.json of `directory`, after checking it was exported from `policy`'s checkpoint.

    Raises:
        CheckpointMismatchError: not an export, or config / vocabulary / weights differ.
    """
    path = directory / "export.json"
    if not path.is_file():
        raise CheckpointMismatchError(f"{directory} is not an ONNX export (no export.json); "
                                      f"make one with `agent export --policy RUN --out DIR`")
    meta = json.loads(path.read_text())
    if meta.get("format") != EXPORT_FORMAT or meta.get("version") != EXPORT_VERSION:
        raise CheckpointMismatchError(
            f"{path}: format {meta.get('format')} v{meta.get('version')}, this code reads "
            f"{EXPORT_FORMAT} v{EXPORT_VERSION}")
    exported = meta.get("policy")
    if isinstance(exported, dict):  # "parallel_actions" read as the action_block it meant
        try:
            exported = upgrade_policy_fields(_without_provenance(exported))
        except ValueError as e:
            raise CheckpointMismatchError(f"{path}: {e}; re-export it") from None
    wanted = {"vocab_hash": policy.layout.hash, "model": policy.model.cfg.to_dict(),
              "policy": _as_exported(policy.config.to_dict(), exported)}
    got = {**meta, "policy": exported}
    diffs = [f"{k}: export has {got.get(k)}, checkpoint has {v}"
             for k, v in wanted.items() if got.get(k) != v]
    if not diffs and meta.get("weights_sha256") != weights_hash(policy.model):
        diffs.append("weights_sha256: the export was made from other weights (same config)")
    if diffs:
        raise CheckpointMismatchError(
            f"ONNX export {directory} does not belong to this checkpoint; re-export it. "
            + "; ".join(diffs))
    return meta
