"""The `depin-monitor` command line: one subcommand module each under monitor/cli/commands/.

Exit codes: 0 success; 1 the check failed (e.g. probe --fail-on-error); 2 bad usage or config.
Every user mistake is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from monitor import __version__
from monitor.core.errors import UserError
from monitor.runtime.tuning import tuned_process

# Subcommands, in the order `--help` lists them: each the module of its name in
# monitor.cli.commands, with `add_parser(sub)`, which registers the command and sets
# `func=run`, and `run(args) -> int`. A command names itself first among the words that are
# not options, and only its module is imported then (`run` needs none of the modules of the
# report, the demo or the simulator).
COMMANDS = ("demo", "run", "probe", "report", "equality", "quality", "fingerprint", "contract",
            "rules", "check", "catalog", "jobs", "simulate")


def command(name: str) -> ModuleType:
    """The module of the subcommand `name` (one of COMMANDS)."""
    return importlib.import_module(f"monitor.cli.commands.{name}")


def named_command(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names (its first word that is not an option), if it is one."""
    word = next((w for w in argv if not w.startswith("-")), None)
    return word if word in COMMANDS else None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: every subcommand, or `only` that one."""
    parser = argparse.ArgumentParser(
        prog="depin-monitor",
        description="Measure the reliability of decentralized GPU inference networks.",
    )
    parser.add_argument("--version", action="version", version=f"depin-monitor {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only is None or name == only:
            command(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(named_command(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # Long-running commands log at info by default; one-shot commands stay quiet.
    base = 1 if getattr(args, "daemon", False) else 0
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose + base, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request at info: 1,000 lines a catalog check at 1,000 networks, and
    # their URLs (a configured one may carry a token in its query); shown at debug only
    logging.getLogger("httpx").setLevel(level if level <= logging.DEBUG else logging.WARNING)
    # The monitor's process-wide settings (open files, collector, switch interval, asyncio's
    # transports) for the commands that run it, restored on the way out.
    tuned = tuned_process() if getattr(args, "tuned", False) else contextlib.nullcontext()
    try:
        with tuned:
            return int(args.func(args) or 0)
    except UserError as exc:
        print(f"depin-monitor: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `depin-monitor ... | head`: the reader left; exit quietly like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
