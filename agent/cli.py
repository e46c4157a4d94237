"""`agent`: the motoken command line. Each subcommand lives in its own module (under
`agent/commands/`, or `hw_bridge/cli.py` for the robot side) and exposes `register(subparsers)`;
this file only lists them. Only the module of the command given is imported, so `agent bridge
serve` on a robot PC loads neither torch nor the policy code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from agent.commands import BadInput

COMMANDS: dict[str, str] = {
    "run": "agent.commands.run",
    "eval": "agent.commands.eval",
    "collect": "agent.commands.collect",
    "dataset": "agent.commands.dataset",
    "replay": "agent.commands.replay",
    "train": "agent.commands.train",
    "train-tokenizer": "agent.commands.train_tokenizer",
    "bridge": "hw_bridge.cli",
    "export": "agent.commands.export",
}


def _default_gl() -> None:
    # MuJoCo picks its OpenGL backend at import time; with no display, GLFW cannot open a
    # context, while EGL (Mesa) renders offscreen anywhere.
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: with a known command first, only that command's module is loaded;
    otherwise (`agent --help`, a typo) all of them, so the listing and the error are complete."""
    parser = argparse.ArgumentParser(
        prog="agent", description="motoken: run, record, train and deploy token policies.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    first = argv[0] if argv else None
    for name, module in COMMANDS.items():
        if first not in COMMANDS or first == name:
            importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _default_gl()
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        raise  # exits 2, printing nothing more
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
