"""`depin-monitor quality`: does each network answer as well as its reference, on the same
model? Runs the config's quality audits once, now, and prints the verdicts; or saves one
network's answers to an audit's items as a reference answer file (docs/quality.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import secrets
import time
from pathlib import Path

from monitor.analysis.quality import (
    HEADERS,
    QualityRow,
    family_lines,
    row_cells,
    section_json,
)
from monitor.cli.commands import Subparsers
from monitor.cli.keys import apply_key_policy
from monitor.cli.verdicts import (
    check_networks,
    print_errors,
    print_table,
    saved_target,
    store_writer,
)
from monitor.config import Config, load_config
from monitor.core.answerfile import AnswerSet, save_answers
from monitor.core.comparison import Comparison
from monitor.core.errors import UserError
from monitor.core.quality import Verdict
from monitor.runtime.quality import QualityRunner, ask_network
from monitor.storage.quality import AuditWriter
from probes.session import SessionPool

EXAMPLE = """\
examples:
  depin-monitor quality -c monitor.yaml                     # every comparison, once, now
  depin-monitor quality -c monitor.yaml --db results.db     # ... and store the audits
  depin-monitor quality -c monitor.yaml --fail-on-worse     # exit 1 if a network is worse
  depin-monitor quality -c monitor.yaml --save baseline/large -o llama-70b-answers.json

An audit draws fresh items of the suite (quality-v1: arithmetic, dates, counting, sorting,
units, logic, Python output, JSON extraction, long-context retrieval) from a new seed, asks
them of the network and of its reference at the same time (temperature 0, the same
max_tokens), grades every answer exactly and compares the two on the same items (McNemar's
exact test; accuracy with Wilson intervals).
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "quality", help="output quality: does each network answer as well as its reference?",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-c", "--config", required=True, help="a config with a `quality:` section")
    p.add_argument("--network", action="append", default=[],
                   help="only comparisons of this network (repeatable)")
    p.add_argument("--db", metavar="PATH", help="also store the audits in this store")
    p.add_argument("--json", action="store_true", help="print the audits as JSON")
    p.add_argument("--fail-on-worse", action="store_true",
                   help="exit 1 when a network's verdict is `worse than reference`")
    p.add_argument("--save", metavar="NETWORK[/TIER]",
                   help="ask this network (tier: default its first) one audit's items with "
                        "the config's settings and write a reference answer file to --output")
    p.add_argument("-o", "--output", help="the answer file --save writes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = apply_key_policy(load_config(args.config), skip=False)
    if config.quality is None:
        raise UserError(f"{args.config}: no `quality:` section; add one with `compare:` "
                        "entries (docs/quality.md)")
    if args.save:
        return _save(config, args.save, args.output)
    plan = config.quality
    check_networks(args.network, (c.network for c in plan.comparisons),
                   f"no comparison of that network in {args.config}; compared")
    if args.network:
        kept = tuple(c for c in plan.comparisons if c.network in args.network)
        config = _with_comparisons(config, kept)
    writer = store_writer(args.db, AuditWriter)
    results = asyncio.run(QualityRunner(config, sinks=[writer] if writer else []).run_once())
    rows = [QualityRow(r.network, r.model, r.reference, r, 1, int(r.verdict is Verdict.WORSE))
            for r in results]
    if args.json:
        print(json.dumps(section_json(rows), indent=2))
    else:
        print_table(HEADERS, (row_cells(row) for row in rows), skip=("worse", "audited"))
        for row in rows:
            for detail in family_lines(row):
                print(detail)
        print_errors(results)
    worse = any(r.verdict is Verdict.WORSE for r in results)
    return 1 if args.fail_on_worse and worse else 0


def _with_comparisons(config: Config, comparisons: tuple[Comparison, ...]) -> Config:
    assert config.quality is not None
    return dataclasses.replace(config, quality=dataclasses.replace(
        config.quality, comparisons=comparisons))


def _save(config: Config, spec: str, output: str | None) -> int:
    if not output:
        raise UserError("--save needs -o/--output FILE for the answer file")
    target = saved_target(config, spec, "quality audits speak")
    name = target.network
    assert config.quality is not None
    settings = config.quality.settings
    seed = secrets.randbits(63) if settings.seed is None else settings.seed

    async def ask() -> AnswerSet:
        pool = SessionPool()
        try:
            got = await ask_network(target, pool.for_target(
                target, concurrency=settings.concurrency),
                list(enumerate(settings.draw(seed))), settings, config.price(name))
        finally:
            await pool.close()
        if got.error:
            print(f"{name}: {got.failed} of {got.requests} requests failed; first: "
                  f"{got.error}")
        return AnswerSet(model=target.model, suite=settings.suite,
                         max_tokens=settings.max_tokens, created_at=time.time(), seed=seed,
                         answers=got.answers)

    answers = asyncio.run(ask())
    if not any(a.grade is not None for a in answers.answers):
        raise UserError(f"--save {spec}: no answer came back; nothing written")
    save_answers(Path(output), answers)
    print(f"wrote {output}: {len(answers.answers)} answers of {target.model} from {name} "
          f"({answers.suite}, seed {seed}, max_tokens {answers.max_tokens})")
    return 0
