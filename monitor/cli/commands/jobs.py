"""`depin-monitor jobs`: list the standard job suite with its parameters."""

from __future__ import annotations

import argparse
import json

from monitor.cli.commands import Subparsers
from monitor.core.jobs import STANDARD_JOBS
from monitor.core.tables import Column, console, show


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("jobs", help="list the standard jobs and their parameters",
                       description=__doc__,
                       epilog="example:\n  depin-monitor jobs --json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="one JSON object per job")
    p.add_argument("--wide", action="store_true", help="add the stall limit and output check")
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
    columns = WIDE if args.wide else COMPACT
    rows = []
    for job in STANDARD_JOBS:
        first = [job.name, str(job.version), job.request, str(job.approx_input_tokens),
                 str(job.max_tokens or "-"), f"{job.deadline_s:g}s"]
        rows.append([*first, f"{job.stall_s:g}s", job.description, job.check.describe()]
                    if args.wide else [*first, job.description])
    show(console(), columns, rows, caption="All jobs: temperature 0, seed 1234, a random "
         "nonce prefix per run; a changed prompt is a new name, a changed check a new version."
         + ("" if args.wide else " --wide adds the stall limit and the output check."))
    return 0


COMPACT = (Column("job"), Column("ver", right=True), Column("request"),
           Column("input\n~tok", right=True), Column("max\nout", right=True),
           Column("dead-\nline", right=True), Column("description", wrap=True))
WIDE = (*COMPACT[:-1], Column("stall", right=True), Column("description", wrap=True),
        Column("output check", wrap=True))
