"""`agent`: the motoken command line. Each subcommand lives in its own module under
`agent/commands/` and exposes `register(subparsers)`; this file only lists them."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = (
    "agent.commands.run",
    "agent.commands.eval",
    "agent.commands.collect",
    "agent.commands.dataset",
    "agent.commands.replay",
    "agent.commands.train",
    "agent.commands.train_tokenizer",
    "agent.commands.bridge",
    "agent.commands.export",
)


def _default_gl() -> None:
    # MuJoCo picks its OpenGL backend at import time; with no display, GLFW cannot open a
    # context, while EGL (Mesa) renders offscreen anywhere.
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent", description="motoken: run, record, train and deploy token policies.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _default_gl()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
