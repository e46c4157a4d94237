"""`agent`: the motoken command line. Each subcommand lives in its own module (under
`agent/commands/`, or `hw_bridge/cli.py` for the robot side), of one of two kinds:

- a config command defines `Command`, a dataclass whose fields (and the config dataclasses it
  nests) are its settings, and `main(cmd)`. tyro turns the dataclass into the flags, the field
  docstrings into their help, and the first line of the class docstring is the command's line
  in `agent --help`; a setting added to the dataclass is a flag with no other edit. It may also
  define `defaults(cmd)`, the defaults to parse the same command line over again (a run being
  continued: what it was trained with), or None;
- an argparse command exposes `register(subparsers)` (the robot side keeps to the standard
  library).

Only the module of the command given is imported, so `agent bridge serve` on a robot PC loads
neither torch nor the policy code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import typing
from types import ModuleType
from typing import Any

from agent.commands import BadInput

COMMANDS: dict[str, str] = {
    "run": "agent.commands.run",
    "eval": "agent.commands.eval",
    "collect": "agent.commands.collect",
    "record": "agent.commands.record",
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


def summary(command: Any) -> str:
    """A config command's line in `agent --help`: its class docstring's first line."""
    cls = typing.get_origin(command) or command  # TrainCommand[TrainConfig] -> TrainCommand
    return (cls.__doc__ or "").strip().splitlines()[0]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: with a known command first, only that command's module is loaded;
    otherwise (`agent --help`, a typo) all of them, so the listing and the error are complete.
    Config commands are listed here but parsed by `parse_command`."""
    parser = argparse.ArgumentParser(
        prog="agent", description="motoken: run, record, train and deploy token policies.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    first = argv[0] if argv else None
    for name, path in COMMANDS.items():
        if first not in COMMANDS or first == name:
            module = importlib.import_module(path)
            if hasattr(module, "Command"):
                sub.add_parser(name, help=summary(module.Command), add_help=False)
            else:
                module.register(sub)
    return parser


def _tyro(command: Any, argv: list[str], prog: str, default: Any = None) -> Any:
    # tyro's hook on refused input is not public API yet (tyro._errors; pinned <2, and
    # tests/agent/test_cli_config.py fails if it moves). It turns a config dataclass's own
    # check (a ValueError from __post_init__: `--steps 0`) into one line, where tyro draws a
    # box; a flag tyro cannot read (`--steps x`, an unknown flag) keeps tyro's message, which
    # names the flag and suggests the closest one.
    import tyro
    from tyro._errors import InstantiationFailure, on_parse_error

    def refuse(event: object) -> None:
        if isinstance(event, InstantiationFailure) and event.argument is None:
            raise BadInput(event.message)

    kw = {} if default is None else {"default": default}
    with on_parse_error(refuse):
        return tyro.cli(command, args=argv, prog=prog, **kw)


def parse_command(name: str, module: ModuleType, argv: list[str]) -> Any:
    """`agent NAME argv...` as the module's Command; with `module.defaults`, parsed again over
    the defaults it gives (flags given on the command line still win)."""
    prog = f"agent {name}"
    cmd = _tyro(module.Command, argv, prog)
    defaults = getattr(module, "defaults", None)
    base = defaults(cmd) if defaults is not None else None
    return cmd if base is None else _tyro(module.Command, argv, prog, base)


def main(argv: list[str] | None = None) -> int:
    _default_gl()
    argv = sys.argv[1:] if argv is None else argv
    module = importlib.import_module(COMMANDS[argv[0]]) if argv and argv[0] in COMMANDS else None
    try:
        if module is not None and hasattr(module, "Command"):
            args, func = parse_command(argv[0], module, argv[1:]), module.main
        else:
            args = build_parser(argv).parse_args(argv)
            func = args.func
        return int(func(args) or 0)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        raise  # exits 2, printing nothing more
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
