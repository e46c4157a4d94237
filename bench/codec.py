"""Benchmark the action codecs: tokens per 1-second chunk, reconstruction error, throughput.

Usage (from the repository root)::

    python bench/codec.py                 # scripted expert on mujoco:pick_place (default)
    python bench/codec.py --data acts.npz # recorded actions: `actions` (N, 7) + `episode_ends`
    python bench/codec.py --synthetic     # generated pick-and-place-like trajectories

Codecs are fitted on 80% of the episodes and measured on the held-out 20%, using every
H-step window of an episode as a chunk. The LAST stdout line is one JSON
object; ``data.source`` says where the actions came from (``synthetic`` data says so).

Errors are per dimension, in action units (max and RMS over held-out steps), plus
``max_rel_err``: the largest per-dimension max error divided by that dimension's fitted
range, so metres, radians and the gripper compare on one scale. The uniform codec clips
at the 1st/99th percentile (as OpenVLA does), so its max error on heavy-tailed dimensions
is clipping, not quantisation; ``fast_sweep`` shows the chunk codec's tokens/error
trade-off over its ``scale`` in both flattening orders (FAST's frequency-major default,
and dimension-major). Throughput is single-threaded (BLAS/tokenizers threads = 1).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, set before numpy loads its BLAS
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering for the expert rollouts

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from action_codec import CodecError, make_codec  # noqa: E402

HORIZON = 20  # 1 s at 20 Hz
MAX_DPOS, MAX_DROT = 0.05, 0.3  # the env's per-step action limits


def synthetic_episodes(n_episodes: int, seed: int = 0) -> list[np.ndarray]:
    """Pick-and-place-like (T, 7) action sequences from a point-mass servo (SYNTHETIC).

    Mimics a scripted expert: the end effector servoes through approach, descend, grasp,
    lift, carry, lower, release, retreat waypoints with per-step clipped deltas and a
    lagging tracker; a yaw correction at the start; gripper 0 -> 1 -> 0.
    """
    rng = np.random.default_rng(seed)
    return [_synthetic_episode(rng) for _ in range(n_episodes)]


def _synthetic_episode(rng: np.random.Generator) -> np.ndarray:
    ee = np.array([0.0, 0.0, 0.25]) + rng.normal(0, 0.02, 3)
    cube = np.r_[rng.uniform(-0.2, 0.2, 2), 0.02]
    plate = np.r_[rng.uniform(-0.2, 0.2, 2), 0.03]
    yaw_err = rng.uniform(-np.pi / 4, np.pi / 4)
    track = rng.uniform(0.4, 0.7)  # fraction of a commanded delta the arm achieves
    waypoints = [(np.r_[cube[:2], 0.10], 0.0), (cube, 0.0), (cube, 1.0),
                 (np.r_[cube[:2], 0.15], 1.0), (np.r_[plate[:2], 0.15], 1.0),
                 (plate + [0, 0, 0.03], 1.0), (plate + [0, 0, 0.03], 0.0),
                 (np.r_[plate[:2], 0.15], 0.0)]
    actions = []
    for target, grip in waypoints:
        settle = 4 if grip != (actions[-1][6] if actions else 0.0) else 0
        for _ in range(200):
            dpos = np.clip(target - ee, -MAX_DPOS, MAX_DPOS)
            drot = np.clip(np.r_[rng.normal(0, 0.004, 2), yaw_err], -MAX_DROT, MAX_DROT)
            actions.append(np.r_[dpos, drot, grip])
            ee = ee + track * dpos + rng.normal(0, 0.0005, 3)
            yaw_err -= track * drot[2]
            settle -= 1
            if settle <= 0 and np.linalg.norm(target - ee) < 0.008:
                break
    return np.asarray(actions, dtype=np.float32)


def npz_episodes(path: str) -> list[np.ndarray]:
    """Episodes from an npz with ``actions`` (N, D) and ``episode_ends`` (exclusive ends)."""
    with np.load(path, allow_pickle=False) as data:
        actions, ends = data["actions"].astype(np.float32), data["episode_ends"]
    starts = np.r_[0, ends[:-1]]
    return [actions[s:e] for s, e in zip(starts, ends, strict=True)]


def expert_episodes(n_seeds: int, spec: str = "mujoco:pick_place"
                    ) -> tuple[list[np.ndarray], int]:
    """Actions the env applied while the scripted expert ran seeds 0..n_seeds-1.

    Returns:
        The (T, 7) float32 action sequence of every episode, and how many succeeded.
    """
    import envs  # the simulator stack loads only for this data source
    from agent.runtime import ChunkBroker, run_episode
    from agent.timing import StageTimer
    from policies.scripted import ScriptedExpert

    env = envs.make(spec)
    agent = ChunkBroker(ScriptedExpert())
    episodes, successes = [], 0
    for seed in range(n_seeds):
        applied: list[np.ndarray] = []
        result = run_episode(env, agent, seed, StageTimer(),
                             on_step=lambda _obs, action, _info, out=applied: out.append(action))
        episodes.append(np.asarray(applied, dtype=np.float32))
        successes += int(result.success)
    env.close()
    return episodes, successes


def chunks(episodes: list[np.ndarray], stride: int) -> np.ndarray:
    """All (H, D) windows fully inside an episode, every ``stride`` steps: (N, H, D)."""
    out = [ep[s:s + HORIZON] for ep in episodes
           for s in range(0, len(ep) - HORIZON + 1, stride)]
    return np.stack(out)


def timed(fn, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls (perf_counter; the best is least noisy)."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def error_report(truth: np.ndarray, decoded: np.ndarray, span: np.ndarray) -> dict:
    """Per-dimension max/RMS abs error and the range-relative max error."""
    err = np.abs(decoded.astype(np.float64) - truth).reshape(-1, truth.shape[-1])
    max_err = err.max(axis=0)
    safe_span = np.where(span > 0, span, 1.0)
    return {"max_abs_err": [float(f"{e:.3g}") for e in max_err],
            "rms_err": [float(f"{e:.3g}") for e in np.sqrt((err ** 2).mean(axis=0))],
            "max_rel_err": float(f"{(max_err / safe_span).max():.3g}")}


def bench_binning(name: str, train: np.ndarray, test: np.ndarray, n_bins: int,
                  span: np.ndarray, n_vectors: int) -> dict:
    codec = make_codec(name, n_bins=n_bins).fit(train.reshape(-1, train.shape[-1]))
    steps = test.reshape(-1, test.shape[-1])
    tokens = codec.encode(steps)
    result = {"n_bins": n_bins, "tokens_per_chunk": HORIZON * steps.shape[1],
              **error_report(steps, codec.decode(tokens), span),
              "clipped_fraction": round(codec.last_stats.fraction, 5)}
    big = np.tile(steps, (max(1, n_vectors // len(steps)), 1))  # float32 (n_vectors, D)
    seconds = timed(lambda: codec.decode(codec.encode(big)))
    result["vectors_per_s"] = round(len(big) / seconds)
    return result


def fit_fast(train: np.ndarray, scale: float, vocab: int | None, order: str) -> tuple:
    """Fit the chunk codec; with no vocab given, the smallest of 2048/4096/8192 whose BPE
    holds the scale's coefficient alphabet (larger scales need more base tokens)."""
    for size in [vocab] if vocab else [2048, 4096, 8192]:
        try:
            t0 = time.perf_counter()
            codec = make_codec("fast", horizon=HORIZON, scale=scale, vocab_size=size,
                               order=order).fit(train)
            return codec, time.perf_counter() - t0
        except CodecError:
            if vocab or size == 8192:
                raise
    raise AssertionError("unreachable")


def bench_fast(train: np.ndarray, test: np.ndarray, scale: float, vocab: int | None,
               span: np.ndarray, order: str = "frequency", timing: bool = True) -> dict:
    codec, fit_s = fit_fast(train, scale, vocab, order)
    tokens = codec.encode(test)
    lengths = np.array([len(t) for t in tokens])
    result = {"scale": scale, "order": order, "vocab_size": codec.vocab_size,
              "tokens_per_chunk": round(float(lengths.mean()), 2),
              "tokens_per_chunk_p95": round(float(np.percentile(lengths, 95)), 2),
              "tokens_per_chunk_max": int(lengths.max()),
              **error_report(test, codec.decode(tokens), span),
              "clipped_fraction": round(codec.last_stats.fraction, 5),
              "coeff_clipped": codec.last_coeff_clipped, "fit_s": round(fit_s, 2)}
    if timing:
        seconds = timed(lambda: codec.decode(codec.encode(test)))
        result["vectors_per_s"] = round(test.shape[0] * HORIZON / seconds)
    return result


def load_data(args: argparse.Namespace) -> tuple[list[np.ndarray], dict]:
    if args.synthetic:
        return synthetic_episodes(args.episodes), {
            "source": f"SYNTHETIC pick-and-place-like trajectories ({args.episodes} episodes, "
                      "bench/codec.py generator; not simulator data)", "synthetic": True}
    if args.data:
        return npz_episodes(args.data), {"source": f"npz:{args.data}", "synthetic": False}
    episodes, successes = expert_episodes(args.episodes)
    return episodes, {"source": f"mujoco:pick_place scripted expert, seeds 0..{args.episodes - 1}"
                                " (actions as applied by the env)", "synthetic": False,
                      "expert_successes": successes}


def goals(report: dict) -> dict:
    """The issue's goals, each stated with the criterion it is measured by."""
    uni, fast = report["codecs"]["uniform"], report["codecs"]["fast"]
    fast_dim = report["codecs"]["fast_dimension_order"]
    meets = [s for s in report["fast_sweep"]
             if all(f <= u for f, u in zip(s["max_abs_err"], uni["max_abs_err"], strict=True))]
    best = min(meets, key=lambda s: s["tokens_per_chunk"]) if meets else None
    return {
        "fast_token_reduction_vs_uniform": round(uni["tokens_per_chunk"]
                                                 / fast["tokens_per_chunk"], 2),
        "fast_dimension_order_token_reduction_vs_uniform": round(
            uni["tokens_per_chunk"] / fast_dim["tokens_per_chunk"], 2),
        "fast_max_rel_err_le_uniform": fast["max_rel_err"] <= uni["max_rel_err"],
        "fast_max_abs_err_le_uniform_every_dim": all(
            f <= u for f, u in zip(fast["max_abs_err"], uni["max_abs_err"], strict=True)),
        "fast_sweep_fewest_tokens_with_every_dim_err_le_uniform": None if best is None else {
            "scale": best["scale"], "order": best["order"],
            "tokens_per_chunk": best["tokens_per_chunk"],
            "token_reduction": round(uni["tokens_per_chunk"] / best["tokens_per_chunk"], 2)},
        "uniform_vectors_per_s_ge_1e6": uni["vectors_per_s"] >= 1_000_000,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="npz with actions (N, D) and episode_ends")
    source.add_argument("--synthetic", action="store_true", help="generated trajectories")
    parser.add_argument("--episodes", type=int, default=96, help="episodes (expert seeds)")
    parser.add_argument("--bins", type=int, default=256)
    parser.add_argument("--scale", type=float, default=None, help="FAST scale (default: codec's)")
    parser.add_argument("--vocab", type=int, default=None, help="FAST BPE vocab size")
    parser.add_argument("--sweep", type=float, nargs="*", default=[5, 20, 50, 100, 200, 300],
                        help="extra FAST scales for the trade-off table")
    parser.add_argument("--vectors", type=int, default=1_000_000,
                        help="action vectors per binning throughput call")
    args = parser.parse_args(argv)

    episodes, data = load_data(args)
    n_fit = max(1, int(round(0.8 * len(episodes))))
    fit_eps, test_eps = episodes[:n_fit], episodes[n_fit:] or episodes[:1]
    # Every window of the held-out episodes: a policy emits chunks starting at any step.
    train, test = chunks(fit_eps, stride=1), chunks(test_eps, stride=1)
    flat = train.reshape(-1, train.shape[-1])
    span = flat.max(axis=0) - flat.min(axis=0)
    data.update(episodes=len(episodes), steps=int(sum(map(len, episodes))),
                fit_episodes=n_fit, fit_chunks=len(train), test_chunks=len(test))
    print(f"data: {data}", file=sys.stderr)
    default = make_codec("fast").config
    scale = args.scale or default.scale
    report = {"bench": "codec", "data": data, "horizon": HORIZON, "codecs": {
        "uniform": bench_binning("uniform", train, test, args.bins, span, args.vectors),
        "quantile": bench_binning("quantile", train, test, args.bins, span, args.vectors),
        "fast": bench_fast(train, test, scale, args.vocab or default.vocab_size, span),
        "fast_dimension_order": bench_fast(train, test, scale, args.vocab or default.vocab_size,
                                           span, order="dimension")}}
    report["fast_sweep"] = [report["codecs"]["fast"], report["codecs"]["fast_dimension_order"]]
    report["fast_sweep"] += [bench_fast(train, test, s, None, span, order, timing=False)
                             for order in ("frequency", "dimension")
                             for s in args.sweep if s != scale]
    report["goals"] = goals(report)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
