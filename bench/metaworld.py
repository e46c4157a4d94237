"""Meta-World success per task and per difficulty group, beside the published policies.

    python bench/metaworld.py --policy RUN [--set mt10] [--per-task 10] [--goals random]
                              [--workers 2]

Runs `agent eval --env metaworld:SET` (held-out seeds from 1000000, Meta-World's own
`info["success"]` at any step within its 500-step limit) with --per-task episodes for each task
of the set, and groups the tasks by Meta-World's difficulty split (envs/metaworld/tasks.py,
the split the SmolVLA paper reports by). `--goals random` (the default) draws every episode's
object and goal positions afresh from the task's own range, as LeRobot's `MetaworldEnv` does;
`--goals mt1` replays MT1's 50 fixed variations, which are also the ones `agent collect`
records, so it measures success on training goals.

The published rows are MT50 (all 50 tasks, 10 trials each): a set other than mt50 covers only
some tasks of each group, and the JSON says how many (`tasks_per_group`). The last stdout line
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from agent.commands.eval import EVAL_SEED_BASE  # noqa: E402
from envs.metaworld.tasks import difficulty_of, tasks_of  # noqa: E402

GROUPS = ("easy", "medium", "hard", "very_hard")

# Success %, Meta-World MT50, 10 trials per task, by difficulty group: the SmolVLA paper
# (Shukor et al. 2025, arXiv 2506.01844, Table 2). Read from two third-party summaries that
# agree digit for digit (experiments/metaworld/NOTE.md, section 3); the paper's own table could
# not be opened with the tools of this project. Parameters as the paper states them.
PUBLISHED = {
    "Diffusion Policy": {"params": None, "easy": 23.1, "medium": 10.7, "hard": 1.9,
                         "very_hard": 6.1, "avg": 10.5},
    "TinyVLA": {"params": "1.3B", "easy": 77.6, "medium": 21.5, "hard": 11.4,
                "very_hard": 15.8, "avg": 31.6},
    "pi0": {"params": "3.3B", "easy": 71.8, "medium": 48.2, "hard": 41.7, "very_hard": 30.0,
            "avg": 47.9},
    "SmolVLA": {"params": "0.45B", "easy": 82.5, "medium": 41.8, "hard": 45.0,
                "very_hard": 60.0, "avg": 57.3},
    "SmolVLA (2.25B)": {"params": "2.25B", "easy": 87.14, "medium": 51.82, "hard": 70.0,
                        "very_hard": 64.0, "avg": 68.24},
}
SOURCE = "SmolVLA paper, arXiv 2506.01844, Table 2 (via secondary quotes)"


def run_eval(args: argparse.Namespace, n_tasks: int) -> dict:
    """`agent eval --json` over per_task x n_tasks held-out seeds, split over --workers
    processes (each a contiguous seed range of whole rounds over the tasks); the merged
    summary: per_task counts summed, loop rate and latency from the first worker."""
    rounds = [len(r) for r in np.array_split(np.arange(args.per_task), args.workers) if len(r)]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
           "PYTHONPATH": str(ROOT)}
    procs, first = [], EVAL_SEED_BASE
    for n in rounds:
        cmd = [sys.executable, "-m", "agent.cli", "eval", "--env", f"metaworld:{args.set}",
               "--policy", args.policy, "--episodes", str(n * n_tasks), "--seed", str(first),
               "--goals", args.goals, "--json"]
        if args.backend:
            cmd += ["--backend", args.backend]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      text=True))
        first += n * n_tasks
    summaries = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"agent eval exited {p.returncode}")
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    merged = dict(summaries[0])
    per_task: dict[str, dict] = {}
    for s in summaries:
        for task, t in s["per_task"].items():
            m = per_task.setdefault(task, {"episodes": 0, "successes": 0})
            m["episodes"] += t["episodes"]
            m["successes"] += t["successes"]
    for m in per_task.values():
        m["success_rate"] = m["successes"] / m["episodes"]
    merged["per_task"] = per_task
    return merged


def group_rates(per_task: dict) -> tuple[dict, dict]:
    """Per difficulty group: mean of its tasks' success % (the paper averages per task), and
    how many of the group's tasks were run."""
    rates, counts = {}, {}
    for g in GROUPS:
        ours = [t["success_rate"] * 100 for name, t in per_task.items() if difficulty_of(name) == g]
        counts[g] = len(ours)
        rates[g] = round(sum(ours) / len(ours), 1) if ours else None
    return rates, counts


def parameters(policy: str) -> int | None:
    """Parameter count of a checkpoint directory's model.safetensors (None: not a checkpoint)."""
    path = Path(policy) / "model.safetensors"
    if not path.is_file():
        return None
    from safetensors.numpy import load_file

    return int(sum(t.size for t in load_file(str(path)).values()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", required=True, help="checkpoint directory, or 'scripted'")
    ap.add_argument("--set", default="mt10", help="metaworld set or task (default mt10)")
    ap.add_argument("--per-task", type=int, default=10, help="episodes per task (protocol: 10)")
    ap.add_argument("--goals", choices=("random", "mt1"), default="random")
    ap.add_argument("--backend", default=None, help="agent eval --backend (default: its own)")
    ap.add_argument("--workers", type=int, default=1, help="agent eval processes in parallel")
    ap.add_argument("--hardware", default="2-core CPU (no GPU)",
                    help="what the policy was trained on, for the table row")
    args = ap.parse_args()

    tasks = tasks_of(args.set)
    summary = run_eval(args, len(tasks))
    per_task = summary["per_task"]
    rates, counts = group_rates(per_task)
    # The paper's Avg is the mean of its four group rates; over a set without every group it
    # is the mean of the groups present (tasks_per_group says which).
    present = [r for r in rates.values() if r is not None]
    avg = round(sum(present) / len(present), 1)
    task_mean = round(sum(t["success_rate"] for t in per_task.values()) * 100 / len(per_task), 1)
    params = parameters(args.policy)

    print(f"{'policy':<18} {'params':>8} " + " ".join(f"{g:>9}" for g in GROUPS) + f" {'avg':>6}")
    for name, row in PUBLISHED.items():
        print(f"{name:<18} {row['params'] or '-':>8} "
              + " ".join(f"{row[g]:>9.1f}" for g in GROUPS) + f" {row['avg']:>6.1f}")
    ours = " ".join(f"{'-' if rates[g] is None else f'{rates[g]:.1f}':>9}" for g in GROUPS)
    size = "-" if params is None else f"{params / 1e6:.2f}M"
    print(f"{'motoken (' + args.set + ')':<18} {size:>8} {ours} {avg:>6.1f}")
    print(f"  tasks per group in {args.set}: {counts}; published rows: MT50, {SOURCE}")
    for name, t in per_task.items():
        print(f"  {name:<24} {difficulty_of(name):<10} {t['successes']}/{t['episodes']}")

    print(json.dumps({
        "bench": "metaworld", "set": args.set, "goals": args.goals, "policy": args.policy,
        "params": params, "hardware": args.hardware, "episodes_per_task": args.per_task,
        "success_per_task": {k: v["success_rate"] for k, v in per_task.items()},
        "success_per_group_pct": rates, "tasks_per_group": counts, "avg_pct": avg,
        "task_mean_pct": task_mean,
        "published": PUBLISHED, "published_source": SOURCE,
        "loop_hz": summary["loop_hz"], "latency_ms": summary["latency_ms"],
    }))


if __name__ == "__main__":
    main()
