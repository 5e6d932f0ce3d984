"""CLI subcommands, one module each (see monitor.cli.COMMANDS). Each has `add_parser(sub)`,
which registers the command with `func=run`, and `run(args) -> int`."""

import argparse
from typing import TypeAlias

# What add_parser receives (a string: argparse's class is not subscriptable at run time).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
