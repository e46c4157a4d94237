"""`agent eval`: success rate of a policy on held-out seeds, with a 95% confidence interval.

Held-out means seeds that `agent collect` never uses by default: collection counts up from 0,
evaluation starts at EVAL_SEED_BASE. Runs unpaced (`--rate 0`); otherwise `agent run`'s loop.
"""

from __future__ import annotations

import argparse

from agent.commands import run

EVAL_SEED_BASE = 1_000_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="success rate of a policy on held-out seeds",
                       description=__doc__.splitlines()[0])
    p.add_argument("--env", required=True, metavar="SPEC")
    p.add_argument("--policy", default=None, metavar="NAME|PATH")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=EVAL_SEED_BASE,
                   help=f"first seed (default {EVAL_SEED_BASE}: disjoint from collection seeds)")
    p.add_argument("--json", action="store_true")
    run.add_backend_arguments(p)
    run.add_lookahead_arguments(p)
    p.set_defaults(func=main, rate=0.0, record=None, viewer=False, exec_mode="sync",
                   simulate_latency=None)


def main(args: argparse.Namespace) -> int:
    return run.main(args)
