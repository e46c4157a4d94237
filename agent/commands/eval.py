"""`agent eval`: success rate of a policy on held-out seeds, with a 95% confidence interval.

Held-out means seeds that `agent collect` never uses by default: collection counts up from 0,
evaluation starts at EVAL_SEED_BASE. Runs unpaced (`--rate 0`); otherwise `agent run`'s loop:
`EvalCommand` is `agent run`'s RunCommand with other defaults and without the options that
pace, record, watch or slow the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro

from agent.commands import run
from agent.commands.run import ExecMode, RerunWhere, RunCommand

EVAL_SEED_BASE = 1_000_000


@dataclass(frozen=True)
class EvalCommand(RunCommand):
    """success rate of a policy on held-out seeds

    Runs the policy unpaced on seeds from 1000000 on (disjoint from collection seeds) and
    reports the success rate with its 95% confidence interval (or one JSON object with --json).
    """

    # Field docstrings are the flags' help, one line each (tyro keeps indented line breaks).
    episodes: int = 100
    """episodes to run"""
    seed: int = EVAL_SEED_BASE
    """first seed (1000000 on: disjoint from collection seeds)"""
    rate: tyro.conf.Suppress[float | None] = 0.0
    record: tyro.conf.Suppress[Path | None] = None
    viewer: tyro.conf.Suppress[bool] = False
    exec_mode: tyro.conf.Suppress[ExecMode] = "sync"
    simulate_latency: tyro.conf.Suppress[str | None] = None
    rerun: tyro.conf.Suppress[RerunWhere] = None


#: What `agent eval` parses (agent/cli.py).
Command = EvalCommand


def main(args: EvalCommand) -> int:
    return run.main(args)
