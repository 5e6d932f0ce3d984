"""`depin-monitor contract`: does each network honour the API it claims to speak? Runs the
config's contract checks once, now: the tool-call suite (streamed and not) and the parameter
matrix, per network and model, within the section's caps; prints the matrix (docs/contract.md).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json

from monitor.analysis.contract import contract_rows, section_json, section_text
from monitor.cli.commands import Subparsers
from monitor.cli.keys import apply_key_policy
from monitor.cli.verdicts import check_networks, store_writer
from monitor.config import load_config
from monitor.core.contract import ContractRun, Grade
from monitor.core.errors import UserError
from monitor.runtime.contract import ContractRunner
from monitor.storage.contract import ContractWriter

EXAMPLE = """\
examples:
  depin-monitor contract -c monitor.yaml                    # every network, once, now
  depin-monitor contract -c monitor.yaml --db results.db    # ... and store the run
  depin-monitor contract -c monitor.yaml --json             # the matrix as JSON
  depin-monitor contract -c monitor.yaml --fail-on-break    # exit 1 on a wrong tool call
                                                            # or a parameter not honoured

Each network and model answers the tool-call suite (one call with known arguments, no call,
two calls in parallel; graded ok, invalid_json, unknown_name, schema_mismatch, no_call,
unexpected_call or wrong_arguments) and the parameter matrix (max_tokens, stop,
response_format, seed, logprobs, stream_options.include_usage, reasoning_effort; each cell
honoured, ignored, rejected or not applicable).
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "contract", help="API contract: tool calls and parameters, honoured or not",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-c", "--config", required=True, help="a config with a `contract:` section")
    p.add_argument("--network", action="append", default=[],
                   help="only this network (repeatable; the reference is still checked)")
    p.add_argument("--db", metavar="PATH", help="also store the runs in this store")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--fail-on-break", action="store_true",
                   help="exit 1 when a tool call is graded other than ok or a parameter is "
                        "ignored or rejected")
    p.set_defaults(func=run)


def _broken(run: ContractRun) -> bool:
    return any(g.grade is not None and g.grade is not Grade.OK for g in run.grades) or any(
        c.cell.value in ("ignored", "rejected") for c in run.cells)


def run(args: argparse.Namespace) -> int:
    config = apply_key_policy(load_config(args.config), skip=False)
    plan = config.contract
    if plan is None:
        raise UserError(f"{args.config}: no `contract:` section; add one with `networks:` "
                        "(docs/contract.md)")
    check_networks(args.network, (n for n, _ in plan.targets),
                   f"not checked by {args.config}; checked")
    if args.network:
        plan = dataclasses.replace(plan, targets=tuple(
            t for t in plan.targets if t[0] in args.network))
        config = dataclasses.replace(config, contract=plan)
    writer = store_writer(args.db, ContractWriter)
    runs = asyncio.run(ContractRunner(config, sinks=[writer] if writer else []).run_once())
    rows = contract_rows(runs)
    if args.json:
        print(json.dumps(section_json(rows), indent=2))
    else:
        print(section_text(rows).lstrip("\n"), end="")
        for r in runs:
            if r.capped:
                print(f"{r.network} {r.model}: {r.capped}")
            for g in r.grades:
                if g.grade is None:
                    print(f"{r.network} {g.item}{' (stream)' if g.stream else ''}: "
                          f"{g.outcome}: {g.detail}")
    return 1 if args.fail_on_break and any(_broken(r) for r in runs) else 0
