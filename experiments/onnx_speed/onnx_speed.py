"""Which ONNX Runtime settings make the shipped policy's CPU decoding faster, parity held?

    python experiments/onnx_speed/onnx_speed.py [--policy checkpoints/default] [--chunks 16]
                                                [--rounds 3] [--parity 8]
                                                [--variants binding,host,host+fused]

Every variant is an OnnxEngine on the same export (decode.onnx int8-quantized for `int8`):
- binding: the cache kept as OrtValues between steps through IO binding (main before this study)
- host: plain session.run with numpy arrays in and out (the engine's CPU default after it)
- host+extended / +no_mem_pattern / +no_arena / +2_threads / +2_threads_no_spin: session options
- host+int8: onnxruntime.quantization.quantize_dynamic on decode.onnx (weights int8)
- host+fused: decode.onnx through onnxruntime.transformers.optimizer (the fusions ORT's own
  levels lack; on this graph it finds only SkipSimplifiedLayerNormalization, 7 of them)
Start-up: seconds to create the decode session from decode.onnx and from the graph ORT saved
after optimizing it (optimized_model_filepath), interleaved.
Timing: per chunk `engine.generate` with the policy's decode schedule and rule, on real
pick-place observations, variants interleaved (rotated order) within every observation, so the
shared machine's load falls on all of them alike; medians, p99 and the ratio to `binding`.
Parity: policies.inference.parity.parity_report against torch (argmax tokens, max logit
difference) on `--parity` observations, and the policy's own rule's tokens against `binding`
on every timed chunk. A profile splits a chunk into prefill and decode steps and puts a bare
`run_with_iobinding` (bound once, nothing rebound) beside the steps as the graph's own cost.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from agent.commands.eval import EVAL_SEED_BASE  # noqa: E402
from agent.rollout import rollout_observations  # noqa: E402
from policies.inference.backend import BackendOptions, find_or_export_onnx  # noqa: E402
from policies.inference.onnx_engine import OnnxEngine, session_options  # noqa: E402
from policies.inference.parity import parity_report  # noqa: E402
from policies.inference.torch_engine import TorchEngine  # noqa: E402
from policies.model.token_policy import TokenPolicy  # noqa: E402


def _with(**changes) -> Callable[[], ort.SessionOptions]:
    def make() -> ort.SessionOptions:
        opts = session_options(changes.pop("threads", 1) if "threads" in changes else 1)
        for key, value in changes.items():
            if key == "config":
                for k, v in value.items():
                    opts.add_session_config_entry(k, v)
            else:
                setattr(opts, key, value)
        return opts
    return make


def int8_export(directory: Path, meta: dict, out: Path) -> Path:
    """A copy of the export with decode.onnx's MatMul weights quantized to int8."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    shutil.copy(directory / meta["graphs"]["prefill"]["file"], out / "prefill.onnx")
    quantize_dynamic(directory / meta["graphs"]["decode"]["file"], out / "decode.onnx",
                     weight_type=QuantType.QInt8)
    return out


def fused_export(directory: Path, meta: dict, out: Path) -> Path:
    """A copy of the export with decode.onnx through the transformers optimizer's fusions."""
    from onnxruntime.transformers.optimizer import optimize_model

    m = meta["model"]
    shutil.copy(directory / meta["graphs"]["prefill"]["file"], out / "prefill.onnx")
    optimize_model(str(directory / meta["graphs"]["decode"]["file"]), model_type="gpt2",
                   num_heads=m["n_heads"], hidden_size=m["d_model"],
                   opt_level=1).save_model_to_file(str(out / "decode.onnx"))
    return out


def startup_s(directory: Path, meta: dict, tmp: Path, reps: int = 5) -> dict:
    """Median seconds to create the decode session: exported graph vs ORT's saved optimized one."""
    source, saved = directory / meta["graphs"]["decode"]["file"], tmp / "decode_optimized.onnx"
    opts = session_options()
    opts.optimized_model_filepath = str(saved)
    ort.InferenceSession(str(source), opts, providers=["CPUExecutionProvider"])
    times: dict[str, list[float]] = {"exported": [], "saved_optimized": []}
    for _ in range(reps):
        for name, path in (("exported", source), ("saved_optimized", saved)):
            t = time.perf_counter()
            ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
            times[name].append(time.perf_counter() - t)
    return {k: round(float(np.median(v)), 3) for k, v in times.items()}


def variants(directory: Path, meta: dict, tmp: Path) -> dict[str, OnnxEngine]:
    ext = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    spin0 = {"session.intra_op.allow_spinning": "0"}
    made = {
        "binding": OnnxEngine(directory, meta, "cpu", io_binding=True),
        "host": OnnxEngine(directory, meta, "cpu", io_binding=False),
        "host+extended": _with(graph_optimization_level=ext),
        "host+no_mem_pattern": _with(enable_mem_pattern=False),
        "host+no_arena": _with(enable_cpu_mem_arena=False),
        "host+2_threads": _with(intra_op_num_threads=2),
        "host+2_threads_no_spin": _with(intra_op_num_threads=2, config=spin0),
    }
    out = {k: v if isinstance(v, OnnxEngine) else
           OnnxEngine(directory, meta, "cpu", io_binding=False, options=v())
           for k, v in made.items()}
    for name, make in (("host+int8", int8_export), ("host+fused", fused_export)):
        (tmp / name).mkdir()
        out[name] = OnnxEngine(make(directory, meta, tmp / name), meta, "cpu", io_binding=False)
    return out


def interleaved(policy: TokenPolicy, engines: dict, inputs: list, rounds: int) -> tuple:
    """Per-variant chunk times (s) and, per variant, the share of tokens equal to binding's."""
    n, lo, hi, forced = policy.decode_schedule(np.empty((1, 0), np.int64))[:4]
    names = list(engines)
    times = {k: [] for k in names}
    same = {k: [0, 0] for k in names}
    for e in engines.values():  # warm-up
        e.generate(*inputs[0], n, lo, hi, policy.config.decode, forced=forced)
    for r in range(rounds):
        for j, x in enumerate(inputs):
            shift = (r * len(inputs) + j) % len(names)
            ids = {}
            for k in names[shift:] + names[:shift]:
                t = time.perf_counter()
                ids[k] = engines[k].generate(*x, n, lo, hi, policy.config.decode, forced=forced)
                times[k].append(time.perf_counter() - t)
            for k in names:
                same[k][0] += int((ids[k] == ids["binding"]).sum())
                same[k][1] += ids[k].size
    return times, {k: a / b for k, (a, b) in same.items()}


def profile(engines: dict, x: tuple, lo: int, reps: int = 10) -> dict:
    """ms: prefill, a mean decode step (binding and host) over 78 steps, bare graph run."""
    out: dict[str, float] = {}
    for name in ("binding", "host"):
        e, pre, steps = engines[name], [], []
        for _ in range(reps):
            t = time.perf_counter()
            logits, cache = e.prefill(*x)
            pre.append(time.perf_counter() - t)
            t = time.perf_counter()
            for _ in range(78):
                logits, cache = e.step(np.array([[lo]]), cache)
            steps.append((time.perf_counter() - t) / 78)
        out[f"prefill_{name}"] = float(np.median(pre)) * 1e3
        out[f"step_{name}"] = float(np.median(steps)) * 1e3
    e = engines["binding"]
    _, cache = e.prefill(*x)
    s, b = e.decode_session, e.decode_session.io_binding()
    b.bind_cpu_input("input_ids", np.array([[lo]]))
    for nm, v in zip(e._past, cache, strict=True):
        b.bind_ortvalue_input(nm, v)
    for o in s.get_outputs():
        b.bind_output(o.name, "cpu")
    t = time.perf_counter()
    for _ in range(78 * reps):
        s.run_with_iobinding(b)
    out["step_bare_graph_prefix_len"] = (time.perf_counter() - t) / (78 * reps) * 1e3
    return {k: round(v, 3) for k, v in out.items()}


def summarize(times: dict, same: dict, parity: dict) -> dict:
    base = np.array(times["binding"])
    rows = {}
    for k, v in times.items():
        v = np.array(v)
        rows[k] = {"p50_ms": round(float(np.median(v)) * 1e3, 2),
                   "p99_ms": round(float(np.percentile(v, 99)) * 1e3, 2),
                   "ratio_p50_vs_binding": round(float(np.median(v) / np.median(base)), 3),
                   "paired_ratio_median": round(float(np.median(v / base)), 3),
                   "same_tokens_as_binding": round(same[k], 5), **parity.get(k, {})}
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", type=Path, default=Path("checkpoints/default"))
    p.add_argument("--chunks", type=int, default=16, help="observations timed per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--parity", type=int, default=8, help="observations in each parity report")
    p.add_argument("--variants", default="", help="comma-separated subset (binding always)")
    args = p.parse_args()
    torch.set_num_threads(1)
    policy = TokenPolicy.load(args.policy)
    directory, meta = find_or_export_onnx(policy, BackendOptions("onnx", checkpoint=args.policy))
    observations = rollout_observations("mujoco:pick_place", args.chunks, EVAL_SEED_BASE)
    inputs = [(policy.text_ids([o.instruction]),
               np.stack([o.images[c] for c in policy.config.cameras])[None],
               policy.state_ids(o.state[None])) for o in observations]
    with tempfile.TemporaryDirectory() as tmp:
        engines = variants(directory, meta, Path(tmp))
        if args.variants:
            keep = {"binding", *args.variants.split(",")}
            engines = {k: v for k, v in engines.items() if k in keep}
        prof = profile(engines, inputs[0], policy.decode_schedule(np.empty((1, 0)))[1][-1])
        print("profile", prof, flush=True)
        start = startup_s(directory, meta, Path(tmp))
        print("startup_s", start, flush=True)
        times, same = interleaved(policy, engines, inputs, args.rounds)
        reference, parity = TorchEngine(policy.model, "cpu"), {}
        for k, e in engines.items() if args.parity else ():
            r = parity_report(policy, reference, e, observations[:args.parity])
            parity[k] = {key: r[key] for key in ("identical_token_share", "max_abs_logit_diff",
                                                 "parity")}
            print(k, parity[k], flush=True)
    rows = summarize(times, same, parity)
    for k, v in rows.items():
        print(k, v, flush=True)
    print(json.dumps({"study": "onnx_speed", "policy": str(args.policy), "ort": ort.__version__,
                      "chunks_timed_per_variant": len(times["binding"]), "profile_ms": prof,
                      "decode_session_startup_s": start,
                      "variants": rows}))


if __name__ == "__main__":
    main()
