"""`depin-monitor equality`: is each network serving the model it claims? Runs the config's
model equality tests once, now, and prints the verdicts; or saves one network's samples as a
reference sample set for later comparisons (docs/equality.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from pathlib import Path

from monitor.analysis.equality import HEADERS, EqualityRow, row_cells, section_json
from monitor.cli.commands import Subparsers
from monitor.cli.keys import apply_key_policy
from monitor.cli.paths import check_output, check_stores
from monitor.cli.verdicts import (
    check_networks,
    print_errors,
    print_table,
    saved_target,
    store_writer,
)
from monitor.config import Config, load_config
from monitor.core.comparison import Comparison
from monitor.core.equality import PROMPT_SETS, Verdict
from monitor.core.errors import UserError
from monitor.core.samplefile import SampleSet, save_samples
from monitor.runtime.equality import EqualityRunner, sample_network
from monitor.storage.equality import VerdictWriter
from probes.session import SessionPool

EXAMPLE = """\
examples:
  depin-monitor equality -c monitor.yaml                     # every comparison, once, now
  depin-monitor equality -c monitor.yaml --db results.db     # ... and store the verdicts
  depin-monitor equality -c monitor.yaml --fail-on-differ    # exit 1 if a network differs
  depin-monitor equality -c monitor.yaml --save baseline/large -o llama-70b.json

A comparison samples prompts x samples_per_prompt completions from the network and from its
reference (the config's `equality:` section) and tests them: MMD with the Hamming kernel and a
permutation p-value (Gao, Liang and Guestrin, ICLR 2025). `differs` is a flag to investigate,
not proof: system prompts and decoding settings change a model's answers too.
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "equality", help="model equality: does each network serve the model it claims?",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-c", "--config", required=True, help="a config with an `equality:` section")
    p.add_argument("--network", action="append", default=[],
                   help="only comparisons of this network (repeatable)")
    p.add_argument("--db", metavar="PATH", help="also store the verdicts in this store")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--fail-on-differ", action="store_true",
                   help="exit 1 when a network's verdict is `differs`")
    p.add_argument("--save", metavar="NETWORK[/TIER]",
                   help="sample this network (tier: default its first) with the config's "
                        "settings and write a reference sample set to --output")
    p.add_argument("-o", "--output", help="the sample set file --save writes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.output and not args.save:
        raise UserError("-o/--output is the file --save writes; give --save NETWORK[/TIER] "
                        "too, or drop -o")
    if args.save and not args.output:
        raise UserError("--save needs -o/--output FILE for the sample set")
    if args.output:
        check_output(args.output)
    if args.db:
        check_stores([args.db], writing=True)
    config = apply_key_policy(load_config(args.config), skip=False)
    if config.equality is None:
        raise UserError(f"{args.config}: no `equality:` section; add one with `compare:` "
                        "entries (docs/equality.md)")
    if args.save:
        return _save(config, args.save, args.output)
    plan = config.equality
    check_networks(args.network, (c.network for c in plan.comparisons),
                   f"no comparison of that network in {args.config}; compared")
    if args.network:
        kept = tuple(c for c in plan.comparisons if c.network in args.network)
        config = _with_comparisons(config, kept)
    writer = store_writer(args.db, VerdictWriter)
    results = asyncio.run(EqualityRunner(config, sinks=[writer] if writer else []).run_once())
    rows = [EqualityRow(r.network, r.model, r.reference, r, 1,
                        int(r.verdict is Verdict.DIFFERS)) for r in results]
    if args.json:
        print(json.dumps(section_json(rows), indent=2))
    else:
        print_table(HEADERS, (row_cells(row) for row in rows), skip=("differed", "tested"))
        print_errors(results)
    differs = any(r.verdict is Verdict.DIFFERS for r in results)
    return 1 if args.fail_on_differ and differs else 0


def _with_comparisons(config: Config, comparisons: tuple[Comparison, ...]) -> Config:
    assert config.equality is not None
    return dataclasses.replace(config, equality=dataclasses.replace(
        config.equality, comparisons=comparisons))


def _save(config: Config, spec: str, output: str | None) -> int:
    if not output:
        raise UserError("--save needs -o/--output FILE for the sample set")
    target = saved_target(config, spec, "equality sampling speaks")
    name = target.network
    assert config.equality is not None
    settings = config.equality.settings

    async def sample() -> SampleSet:
        pool = SessionPool()
        try:
            got = await sample_network(target, pool.for_target(
                target, concurrency=settings.concurrency), settings, config.price(name))
        finally:
            await pool.close()
        if got.error:
            print(f"{name}: {got.failed} of {got.requests} requests failed; first: "
                  f"{got.error}")
        prompts = PROMPT_SETS[settings.prompt_set]
        return SampleSet(model=target.model, prompt_set=prompts.name,
                         prompt_set_digest=prompts.digest, temperature=settings.temperature,
                         max_tokens=settings.max_tokens, created_at=time.time(),
                         samples=got.samples)

    samples = asyncio.run(sample())
    if not samples.samples:
        raise UserError(f"--save {spec}: no completion came back; nothing written")
    save_samples(Path(output), samples)
    print(f"wrote {output}: {len(samples.samples)} completions of {target.model} from {name} "
          f"({samples.prompt_set}, temperature {samples.temperature:g}, max_tokens "
          f"{samples.max_tokens})")
    return 0
