"""CLI subcommands: each module defines `Command` (a config dataclass) and `main(cmd)`, or
exposes `register(subparsers)` (argparse); agent/cli.py says how each is dispatched."""

from __future__ import annotations


class BadInput(SystemExit):
    """Input a command cannot use: a setting its config refuses, a damaged checkpoint, a dataset
    whose files disagree, a path that is not there. `agent` prints it as one line,
    `error: <message>`, and exits 2 (what argparse exits with on bad arguments); as a SystemExit
    it ends the command from anywhere."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = 2  # str(self) stays the message
