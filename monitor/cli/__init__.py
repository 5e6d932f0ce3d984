"""The `depin-monitor` command line: one subcommand module each under monitor/cli/commands/.

Exit codes: 0 success; 1 the check failed (e.g. probe --fail-on-error); 2 bad usage or config.
Every user mistake is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from monitor import __version__
from monitor.cli.commands import (
    catalog,
    check,
    demo,
    equality,
    fingerprint,
    jobs,
    probe,
    report,
    rules,
    run,
    simulate,
)
from monitor.core.errors import UserError
from monitor.runtime.tuning import tuned_process

# Subcommands, in the order `--help` lists them. Each module has `add_parser(sub)` which
# registers the command and sets `func=run`, and `run(args) -> int`.
COMMANDS = (demo, run, probe, report, equality, fingerprint, rules, check, catalog, jobs, simulate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depin-monitor",
        description="Measure the reliability of decentralized GPU inference networks.",
    )
    parser.add_argument("--version", action="version", version=f"depin-monitor {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
