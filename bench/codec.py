"""Benchmark the action codecs: tokens per 1-second chunk, reconstruction error, throughput.

Usage (from the repository root)::

    python bench/codec.py                 # scripted expert on mujoco:pick_place (default)
    python bench/codec.py --data acts.npz # recorded actions: `actions` (N, 7) + `episode_ends`
    python bench/codec.py --synthetic     # generated pick-and-place-like trajectories

Codecs are fitted on 80% of the episodes and measured on the held-out 20%, cut into
non-overlapping chunks of H steps. The LAST stdout line is one JSON object; its
``data.source`` says where the actions came from (``synthetic`` data is labelled so).
Throughput is measured single-threaded (numpy/torch/tokenizers threads set to 1).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, set before numpy loads its BLAS
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from action_codec import make_codec  # noqa: E402

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
    track = rng.uniform(0.6, 0.9)  # fraction of a commanded delta the arm achieves
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


def expert_episodes(n_seeds: int, max_steps: int = 400) -> list[np.ndarray]:
    """Roll out the scripted expert on mujoco:pick_place for seeds 0..n_seeds-1."""
    from bench._expert import rollout_expert  # needs the foundation (envs, policies)

    return [rollout_expert(seed, max_steps) for seed in range(n_seeds)]


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


def error_report(truth: np.ndarray, decoded: np.ndarray) -> dict:
    err = np.abs(decoded.astype(np.float64) - truth).reshape(-1, truth.shape[-1])
    return {"max_abs_err": [float(f"{e:.3g}") for e in err.max(0)],
            "rms_err": [float(f"{e:.3g}") for e in np.sqrt((err ** 2).mean(0))]}


def bench_binning(name: str, train: np.ndarray, test: np.ndarray, n_bins: int) -> dict:
    codec = make_codec(name, n_bins=n_bins).fit(train.reshape(-1, train.shape[-1]))
    steps = test.reshape(-1, test.shape[-1])
    tokens = codec.encode(steps)
    result = {"n_bins": n_bins, "tokens_per_chunk": HORIZON * steps.shape[1],
              **error_report(steps, codec.decode(tokens)),
              "clipped_fraction": round(codec.last_stats.fraction, 5)}
    big = np.tile(steps, (max(1, 1_000_000 // len(steps)), 1))  # ~1M vectors
    seconds = timed(lambda: codec.decode(codec.encode(big)))
    result["vectors_per_s"] = round(len(big) / seconds)
    return result


def bench_fast(train: np.ndarray, test: np.ndarray, scale: float, vocab: int) -> dict:
    t0 = time.perf_counter()
    codec = make_codec("fast", horizon=HORIZON, scale=scale, vocab_size=vocab).fit(train)
    fit_s = time.perf_counter() - t0
    tokens = codec.encode(test)
    lengths = np.array([len(t) for t in tokens])
    result = {"scale": scale, "vocab_size": codec.vocab_size,
              "tokens_per_chunk": round(float(lengths.mean()), 2),
              "tokens_per_chunk_p95": float(np.percentile(lengths, 95)),
              "tokens_per_chunk_max": int(lengths.max()),
              **error_report(test, codec.decode(tokens)),
              "clipped_fraction": round(codec.last_stats.fraction, 5),
              "coeff_clipped": codec.last_coeff_clipped, "fit_s": round(fit_s, 2)}
    seconds = timed(lambda: codec.decode(codec.encode(test)))
    result["vectors_per_s"] = round(test.shape[0] * HORIZON / seconds)
    return result


def load_data(args: argparse.Namespace) -> tuple[list[np.ndarray], str]:
    if args.synthetic:
        return synthetic_episodes(args.episodes), f"synthetic ({args.episodes} episodes)"
    if args.data:
        return npz_episodes(args.data), f"npz:{args.data}"
    return (expert_episodes(args.episodes),
            f"mujoco:pick_place scripted expert, seeds 0..{args.episodes - 1}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="npz with actions (N, D) and episode_ends")
    source.add_argument("--synthetic", action="store_true", help="generated trajectories")
    parser.add_argument("--episodes", type=int, default=48, help="episodes/seeds to use")
    parser.add_argument("--bins", type=int, default=256)
    parser.add_argument("--scale", type=float, default=None, help="FAST scale (default: codec's)")
    parser.add_argument("--vocab", type=int, default=None, help="FAST BPE vocab size")
    args = parser.parse_args(argv)

    episodes, label = load_data(args)
    n_fit = max(1, int(round(0.8 * len(episodes))))
    fit_eps, test_eps = episodes[:n_fit], episodes[n_fit:] or episodes[:1]
    train, test = chunks(fit_eps, stride=2), chunks(test_eps, stride=HORIZON)
    print(f"data: {label}; {sum(map(len, episodes))} steps; fit on {len(train)} chunks, "
          f"test on {len(test)} held-out chunks", file=sys.stderr)
    defaults = make_codec("fast").config
    fast = bench_fast(train, test, args.scale or defaults.scale, args.vocab or defaults.vocab_size)
    report = {"data": {"source": label, "synthetic": bool(args.synthetic),
                       "episodes": len(episodes), "steps": int(sum(map(len, episodes))),
                       "fit_chunks": len(train), "test_chunks": len(test)},
              "horizon": HORIZON,
              "codecs": {"uniform": bench_binning("uniform", train, test, args.bins),
                         "quantile": bench_binning("quantile", train, test, args.bins),
                         "fast": fast}}
    uni = report["codecs"]["uniform"]
    report["goals"] = {
        "fast_token_reduction_vs_uniform": round(uni["tokens_per_chunk"]
                                                 / fast["tokens_per_chunk"], 2),
        "fast_max_err_le_uniform_all_dims": all(
            f <= u for f, u in zip(fast["max_abs_err"], uni["max_abs_err"], strict=True)),
        "uniform_vectors_per_s_ge_1e6": uni["vectors_per_s"] >= 1_000_000,
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
