"""CLI subcommands: each module defines `Command` (a config dataclass) and `main(cmd)`, or
exposes `register(subparsers)` (argparse); agent/cli.py says how each is dispatched."""
