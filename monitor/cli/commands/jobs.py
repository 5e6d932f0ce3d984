"""`depin-monitor jobs`: list the standard job suite with its parameters."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from monitor.cli.commands import Subparsers
from monitor.core.jobs import STANDARD_JOBS


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("jobs", help="list the standard jobs and their parameters",
                       description=__doc__,
                       epilog="example:\n  depin-monitor jobs --json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="one JSON object per job")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.json:
        for job in STANDARD_JOBS:
            print(json.dumps({
                "name": job.name, "version": job.version, "request": job.request,
                "description": job.description, "max_tokens": job.max_tokens,
                "temperature": job.temperature, "seed": job.seed,
                "deadline_s": job.deadline_s, "stall_s": job.stall_s,
                "approx_input_tokens": job.approx_input_tokens, "check": job.check.describe(),
                "prompt_hash": job.prompt_hash,
            }))
        return 0
    table = Table(box=None, header_style="bold")
    for col in ("job", "version", "request", "input ~tok", "max out", "deadline", "stall", "check",
                "description"):
        table.add_column(col, overflow="fold")
    for job in STANDARD_JOBS:
        table.add_row(job.name, str(job.version), job.request, str(job.approx_input_tokens),
                      str(job.max_tokens or "-"), f"{job.deadline_s:g}s", f"{job.stall_s:g}s",
                      job.check.describe(), job.description)
    Console(width=160).print(table)
    print("All jobs: temperature 0, seed 1234, a random nonce prefix per run; "
          "a changed prompt is a new name, a changed check a new version.")
    return 0
