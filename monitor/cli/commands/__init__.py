"""CLI subcommands, one module each (see monitor.cli.COMMANDS). Each has `add_parser(sub)`,
which registers the command with `func=run`, and `run(args) -> int`."""

import argparse

Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]  # what add_parser receives
