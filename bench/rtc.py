"""Execution modes under inference delay: success and chunk-boundary jerk on pick-place.

    python bench/rtc.py [--policy checkpoints/default] [--seeds 10] [--delays 0,50,100,200]
                        [--modes sync,naive,ensemble,rtc,ahead] [--out bench/results/rtc.png]
                        [--json-out PART.json]
    python bench/rtc.py --merge A.json B.json [--out bench/results/rtc.png]

`--merge` joins runs over disjoint (mode, delay) cells (e.g. two processes side by side, one
with the short delays, one with the long) into one JSON and one plot; the runs must agree on
policy and seeds, and together cover every delay of every mode.

Every cell runs the same held-out seeds (agent eval's, from 1_000_000) of `mujoco:pick_place`
with rendering, the loop paced at 20 Hz, and `--simulate-latency DELAY` added to every
inference (on top of the model's own latency, ONNX Runtime by default). `jerk` is the mean
chunk-boundary jump (largest change of the motion dimensions between consecutive executed
actions, agent/exec_stats.py).

sync at a delay > 0: the simulator does not advance while the loop waits, and greedy
decoding is deterministic, so its outcomes equal those at delay 0; one episode per delay is
run (the loop rate, and a check that its outcome matches) and the delay-0 outcomes are
reported. The last stdout line is one JSON object; the PNG plots success and jerk vs delay.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import envs  # noqa: E402
from agent.commands.eval import EVAL_SEED_BASE  # noqa: E402
from agent.execution import make_broker  # noqa: E402
from agent.latency import DelayedPolicy, LatencySpec  # noqa: E402
from agent.runtime import run_episode  # noqa: E402
from agent.timing import StageTimer  # noqa: E402
from policies.inference.backend import BackendOptions, make_engine  # noqa: E402
from policies.model.token_policy import TokenPolicy  # noqa: E402


def run_cell(env, policy: TokenPolicy, mode: str, delay_ms: float, seeds: list[int]) -> dict:
    broker = make_broker(DelayedPolicy(policy, LatencySpec(delay_ms), seed=0), mode,
                         env.unwrapped.state_layout)
    results = [run_episode(env, broker, s, StageTimer(), rate_hz=20.0) for s in seeds]
    broker.close()
    stats = broker.stats.summary()
    boundary = stats["jerk"]["boundary"] or {"mean": 0.0, "p99": 0.0}
    return {"episodes": len(seeds), "success_rate": float(np.mean([r.success for r in results])),
            "jerk": boundary["mean"], "jerk_p99": boundary["p99"],
            "jerk_within_chunk": (stats["jerk"]["within_chunk"] or {"mean": None})["mean"],
            "held_share": round(stats["held_ticks"] / sum(r.steps for r in results), 3),
            "rtc_forced_steps_mean": stats.get("rtc_forced_steps", {}).get("mean"),
            "mean_steps": float(np.mean([r.steps for r in results])),
            "loop_hz": round(sum(r.steps for r in results) / sum(r.duration_s for r in results),
                             2),
            "deadline_misses": sum(r.deadline_misses for r in results),
            "inference_ms_p50": (stats["inference_ms"] or {"p50": None})["p50"],
            "outcomes": [(r.success, r.steps) for r in results]}


def plot(modes: dict, delays: list[int], out: Path, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, cells in modes.items():
        a.plot(delays, [cells[str(d)]["success_rate"] for d in delays], "o-", label=mode)
        b.plot(delays, [cells[str(d)]["jerk"] for d in delays], "o-", label=mode)
    a.set(xlabel="injected inference delay (ms)", ylabel="success rate", ylim=(-0.05, 1.05),
          title=f"mujoco:pick_place, {seeds} held-out seeds per point")
    b.set(xlabel="injected inference delay (ms)", ylabel="mean chunk-boundary jump",
          title="boundary jerk (motion dims)")
    a.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", type=Path, default=Path("checkpoints/default"))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--delays", default="0,50,100,200")
    p.add_argument("--modes", default="sync,naive,ensemble,rtc")
    p.add_argument("--backend", default="onnx")
    p.add_argument("--out", type=Path, default=Path("bench/results/rtc.png"))
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--merge", type=Path, nargs="+", default=None, metavar="PART.json")
    args = p.parse_args()
    if args.merge:
        return merge(args.merge, args.out)
    torch.set_num_threads(1)
    delays = [int(d) for d in args.delays.split(",")]
    policy = TokenPolicy.load(args.policy)
    backend = make_engine(policy, BackendOptions(args.backend, checkpoint=args.policy)).describe()
    seeds = [EVAL_SEED_BASE + i for i in range(args.seeds)]
    env, modes, start = envs.make("mujoco:pick_place"), {}, time.monotonic()
    for mode in args.modes.split(","):
        modes[mode] = {}
        for d in delays:
            reuse = mode == "sync" and d > 0 and "0" in modes[mode]
            cell = run_cell(env, policy, mode, d, seeds[:1] if reuse else seeds)
            if reuse:  # see module doc: same outcomes as delay 0, measured loop rate
                base = modes[mode]["0"]
                measured = ("loop_hz", "deadline_misses", "inference_ms_p50")
                cell = {**base, **{k: cell[k] for k in measured},
                        "loop_measured_on_episodes": 1,
                        "outcome_matches_delay_0": cell["outcomes"][0] == base["outcomes"][0]}
            modes[mode][str(d)] = cell
            print(mode, d, {k: v for k, v in cell.items() if k != "outcomes"}, flush=True)
    env.close()
    for cells in modes.values():
        for cell in cells.values():
            cell.pop("outcomes")
    plot(modes, delays, args.out, args.seeds)
    result = {"bench": "rtc", "policy": str(args.policy), "backend": backend,
              "seeds_per_cell": args.seeds, "first_seed": EVAL_SEED_BASE,
              "rate_hz": 20.0, "chunk": policy.config.chunk,
              "chunk_horizon_ms": policy.config.chunk * 50,
              "delays_ms": delays, "modes": modes, "plot": str(args.out),
              "wall_s": round(time.monotonic() - start, 1)}
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


def merge(parts: list[Path], out: Path) -> None:
    """Join runs cell by cell: every (mode, delay) from exactly one run, the grid complete."""
    runs = [json.loads(p.read_text()) for p in parts]
    same = ("policy", "seeds_per_cell", "first_seed", "chunk")
    modes: dict[str, dict] = {}
    for part, r in zip(parts, runs, strict=True):
        diff = [k for k in same if r[k] != runs[0][k]]
        if diff:
            raise SystemExit(f"error: cannot merge runs that differ in {diff} ({part})")
        for mode, cells in r["modes"].items():
            clash = set(cells) & set(modes.get(mode, {}))
            if clash:
                raise SystemExit(f"error: {mode} at delays {sorted(map(int, clash))} ms appears "
                                 f"in more than one run ({part})")
            modes.setdefault(mode, {}).update(cells)
    delays = sorted({int(d) for cells in modes.values() for d in cells})
    missing = [f"{m}@{d}" for m, cells in modes.items() for d in delays if str(d) not in cells]
    if missing:
        raise SystemExit(f"error: the merged grid lacks {missing}; every mode needs every delay")
    merged = {**runs[0], "delays_ms": delays,
              "modes": {m: {str(d): modes[m][str(d)] for d in delays} for m in modes},
              "plot": str(out), "wall_s": max(r["wall_s"] for r in runs),
              "merged_from": [str(p) for p in parts]}
    plot(merged["modes"], delays, out, merged["seeds_per_cell"])
    print(json.dumps(merged))


if __name__ == "__main__":
    main()
