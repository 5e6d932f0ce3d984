"""`depin-monitor fingerprint`: did the model behind each name change? Discovers each
network's border inputs where none are stored (or with --discover), else re-samples them
once, now, and prints the verdicts against the network's own trailing baseline and its
reference (docs/fingerprint.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json

from monitor.analysis.fingerprint import (
    HEADERS,
    FingerprintRow,
    row_cells,
    section_json,
)
from monitor.cli.commands import Subparsers
from monitor.cli.keys import apply_key_policy
from monitor.config import load_config
from monitor.core.errors import UserError
from monitor.core.fingerprint import FingerprintResult, Verdict
from monitor.runtime.fingerprint import FingerprintRunner
from monitor.storage.fingerprint import FingerprintWriter
from monitor.storage.reads import fingerprint_history as history
from monitor.storage.reads import read_border_sets as read_sets
from monitor.storage.store import Store

EXAMPLE = """\
examples:
  depin-monitor fingerprint -c monitor.yaml --db results.db     # discover or run, store both
  depin-monitor fingerprint -c monitor.yaml --db results.db --discover   # find a new set
  depin-monitor fingerprint -c monitor.yaml                     # discover, then one run
  depin-monitor fingerprint -c monitor.yaml --db results.db --fail-on-change

A run re-samples each network's border inputs (short prompts whose first token at
temperature 0 is not always the same) with one output token each and tests today's
first-token distributions against the network's own latest runs (B3IT, ICML 2026).
`changed` is a flag to investigate: a new serving engine or GPU type shifts near-ties too.
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "fingerprint", help="fingerprint: did the model behind each name change?",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-c", "--config", required=True,
                   help="a config with a `fingerprint:` section")
    p.add_argument("--network", action="append", default=[],
                   help="only this network (repeatable)")
    p.add_argument("--db", metavar="PATH",
                   help="read the border sets and baselines from this store and store the "
                        "results (without it: discover, then one run, in memory)")
    p.add_argument("--discover", action="store_true",
                   help="discover a new border-input set now (a new version)")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--fail-on-change", action="store_true",
                   help="exit 1 when a verdict is `changed` or `differs from reference`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = apply_key_policy(load_config(args.config), skip=False)
    plan = config.fingerprint
    if plan is None:
        raise UserError(f"{args.config}: no `fingerprint:` section; add one with `networks:` "
                        "entries (docs/fingerprint.md)")
    known = {t.network for t in plan.targets}
    unknown = [n for n in args.network if n not in known]
    if unknown:
        raise UserError(f"--network {unknown[0]}: not fingerprinted in {args.config}; "
                        f"fingerprinted: {', '.join(sorted(known))}")
    if args.network:
        plan = dataclasses.replace(plan, targets=tuple(t for t in plan.targets
                                                       if t.network in args.network))
        config = dataclasses.replace(config, fingerprint=plan)
    if args.db:
        Store(args.db).close()  # migrates a new or older file
        writer = FingerprintWriter(args.db)
        runner = FingerprintRunner(config, sinks=[writer], set_sinks=[writer],
                                   sets=read_sets(args.db),
                                   history=history(args.db, plan.settings.baseline_runs + 2))
    else:
        runner = FingerprintRunner(config)

    async def go() -> list[FingerprintResult]:
        results = await runner.run_once(rediscover=args.discover)
        if args.db is None and all(r.verdict is Verdict.DISCOVERED for r in results):
            results += await runner.run_once()
        return results

    results = asyncio.run(go())
    rows = [FingerprintRow(r.network, r.model, r, 1,
                           (r.started_at,) if r.verdict is Verdict.CHANGED else ())
            for r in results]
    if args.json:
        print(json.dumps(section_json(rows), indent=2))
    else:
        _print(rows, results)
    alarming = any(r.verdict in (Verdict.CHANGED, Verdict.DIFFERS) for r in results)
    return 1 if args.fail_on_change and alarming else 0


def _print(rows: list[FingerprintRow], results: list[FingerprintResult]) -> None:
    keep = [i for i, h in enumerate(HEADERS) if h != "runs"]
    cells = [[HEADERS[i] for i in keep] + ["requests"]]
    for row in rows:
        full = row_cells(row)
        cells.append([full[i] for i in keep] + [str(row.latest.requests)])
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    for result in results:
        if result.error:
            print(f"{result.network}: {result.error}")
