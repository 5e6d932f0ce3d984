"""`depin-monitor report`: compare networks side by side from one or more stores."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import io
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from monitor.analysis import contract as contract_view
from monitor.analysis import fingerprint as fingerprint_section
from monitor.analysis import quality as quality_view
from monitor.analysis import quorum as quorum_view
from monitor.analysis.equality import add_section, equality_rows, show_section
from monitor.analysis.formats import RENDERERS
from monitor.analysis.queries import GROUPINGS
from monitor.analysis.report import report_from_stores
from monitor.analysis.report_text import print_report, render_table
from monitor.cli.commands import Subparsers
from monitor.cli.paths import check_output, check_stores
from monitor.config import load_config
from monitor.core import times
from monitor.core.errors import UserError
from monitor.core.secrets import scrub
from monitor.core.slaprofile import BUILTIN_PROFILES, MaintenanceWindow, SLAProfile
from monitor.core.tables import console
from monitor.core.times import parse_duration
from monitor.storage.domain import Ignored
from monitor.storage.filters import RunFilter
from monitor.storage.reads import (
    Position,
    read_audits,
    read_contract_runs,
    read_fingerprints,
    read_page,
    read_verdicts,
)

EXAMPLE = """\
examples:
  depin-monitor report --db results.db
  depin-monitor report --db results.db --wide        # every column (a wide terminal)
  depin-monitor report --db eu.db --db us.db --since 7d --by network,target
  depin-monitor report --db results.db -c examples/networks.yaml --format html -o report.html
  depin-monitor report --db results.db --format json | jq '.groups[] | {group, availability}'
  depin-monitor report --db eu.db --db us.db --db ap.db --by network,location --quorum 2
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "report", help="the buyer's comparison: networks side by side with CIs and SLA verdicts",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", action="append", required=True, metavar="PATH",
                   help="store file (repeatable: several agents' files are merged)")
    p.add_argument("-c", "--config", help="config: SLA profile per network, prices, maintenance")
    p.add_argument("--profile", default="enterprise",
                   help="SLA profile for networks the config does not name (default enterprise)")
    p.add_argument("--since", help="start: a duration back from now (24h, 7d) or ISO-8601 time")
    p.add_argument("--until", help="end: a duration back from now or ISO-8601 time")
    p.add_argument("--network", action="append", default=[], help="only this network")
    p.add_argument("--job", action="append", default=[], help="only this job")
    p.add_argument("--by", default="network",
                   help=f"grouping, comma-separated from: {', '.join(GROUPINGS)} "
                        "(default network; network,target shows the model-tier ladder)")
    p.add_argument("--format", choices=sorted(RENDERERS), default="table")
    p.add_argument("--wide", action="store_true",
                   help="table: every column (E2E, TTFT p50 and its interval, nodes, cost, ...)"
                        "; the default fits the terminal with what a buyer decides on")
    p.add_argument("--quorum", type=int, metavar="N",
                   help="also show when each network was down as seen from at least N "
                        "locations at once (default: the config's `quorum:` when above 1)")
    p.add_argument("--quorum-slot", default="5m", metavar="DURATION",
                   help="the time slot the quorum is judged in (default 5m)")
    p.add_argument("--runs", action="store_true",
                   help="instead of the report: every run as CSV (time, network, tier, job, "
                        "location, outcome, HTTP status, error), oldest first, for a "
                        "provider's support case")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.set_defaults(func=run)


def parse_when(text: str, option: str, now: float) -> float:
    """`24h`, `7d`, `1d12h` back from now, an ISO-8601 time (UTC if no offset) or unix
    seconds (monitor.core.times.parse_when, the status API's grammar too)."""
    try:
        return times.parse_when(text, now)
    except ValueError as exc:
        if "1970" in str(exc):
            raise UserError(f"{option} {exc}") from None
        raise UserError(f"{option} {text!r}: expected a duration like 24h or 7d, an "
                        "ISO-8601 time like 2026-11-01T00:00:00Z, or unix seconds") from None


def run(args: argparse.Namespace) -> int:
    check_stores(args.db)
    if args.output:
        check_output(args.output)
    now = time.time()
    since = parse_when(args.since, "--since", now) if args.since else None
    until = parse_when(args.until, "--until", now) if args.until else None
    if since is not None and until is not None and since >= until:
        raise UserError(f"--since {args.since} is not before --until {args.until}; give the "
                        "start first, e.g. --since 7d --until 1d")
    by = tuple(part.strip() for part in args.by.split(",") if part.strip())
    bad = [b for b in by if b not in GROUPINGS]
    if bad or not by:
        raise UserError(f"--by {args.by!r}: choose from {', '.join(GROUPINGS)}")
    if args.profile not in BUILTIN_PROFILES and not args.config:
        raise UserError(f"--profile {args.profile!r} is unknown; built-in profiles: "
                        f"{', '.join(BUILTIN_PROFILES)} (or define it in a config with -c)")
    if args.runs:
        return _runs_csv(args, since, until)
    judging = _from_config(args)
    quorum = _quorum_options(args, judging.quorum)
    try:
        report = report_from_stores(args.db, by=by, profiles=judging.profiles,
                                    default_profile=judging.default_profile,
                                    prices=judging.prices, spends=judging.spends,
                                    maintenance=judging.maintenance, since=since, until=until,
                                    networks=args.network, jobs=args.job)
    except FileNotFoundError:
        missing = next(p for p in args.db if not Path(p).is_file())
        raise UserError(f"--db {missing}: no such file; give the store written by "
                        "`depin-monitor run --db` or `demo --db`") from None
    except sqlite3.DatabaseError as exc:
        raise UserError(f"--db: a file is not a depin-monitor store ({exc}); "
                        f"files: {', '.join(args.db)}") from None
    summaries = None
    if quorum is not None:
        summaries = quorum_view.quorum_from_stores(
            args.db, quorum=quorum[0], slot_s=quorum[1],
            runs=RunFilter(since=since, until=until, networks=args.network, jobs=args.job))
    # model equality verdicts: a section of their own (docs/equality.md)
    unread = Ignored()
    tested = equality_rows(read_verdicts(args.db, since=since, until=until,
                                         networks=args.network, ignored=unread))
    # quality audits: a section of their own (docs/quality.md)
    audited = quality_view.quality_rows(read_audits(args.db, since=since, until=until,
                                                    networks=args.network))
    # the API contract: tool calls and parameters (docs/contract.md)
    contracts = contract_view.contract_rows(read_contract_runs(
        args.db, since=since, until=until, networks=args.network))
    # fingerprints: a section of their own (docs/fingerprint.md)
    fingerprinted = fingerprint_section.fingerprint_rows(read_fingerprints(
        args.db, since=since, until=until, networks=args.network, ignored=unread))
    if unread:
        report = dataclasses.replace(report, notes=(*report.notes, unread.describe()))
    if args.format == "table" and not args.output:
        out = console()
        print_report(report, out, wide=args.wide)
        show_section(out, tested)
        print(quality_view.section_text(audited), end="")
        print(contract_view.section_text(contracts), end="")
        print(fingerprint_section.section_text(fingerprinted), end="")
        if summaries is not None:
            print("\n" + quorum_view.render_text(summaries), end="")
        return 0
    render = RENDERERS[args.format]
    text = render_table(report, wide=args.wide) if args.format == "table" else render(report)
    text = add_section(text, args.format, tested)
    text = quality_view.add_section(text, args.format, audited)
    text = contract_view.add_section(text, args.format, contracts)
    text = fingerprint_section.add_section(text, args.format, fingerprinted)
    if summaries is not None:
        text = _with_quorum(text, args.format, summaries)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output} ({len(report.groups)} groups, {report.runs} runs)")
    else:
        print(text, end="")
    return 0


@dataclass(frozen=True)
class _Judging:
    profiles: dict[str, SLAProfile]
    default_profile: SLAProfile
    prices: dict[str, Mapping[str, float]]
    spends: dict[str, float]
    maintenance: tuple[MaintenanceWindow, ...]
    quorum: int = 1  # the config's


def _from_config(args: argparse.Namespace) -> _Judging:
    """Profiles, prices and monthly spend by network, maintenance windows, default profile."""
    default = BUILTIN_PROFILES.get(args.profile)
    if not args.config:
        assert default is not None  # run() refused an unknown --profile without a config
        return _Judging({}, default, {}, {}, ())
    config = load_config(args.config)
    if args.profile in config.profiles:
        default = config.profiles[args.profile]
    elif default is None:
        raise UserError(f"--profile {args.profile!r} is not in {args.config} or built in")
    return _Judging(
        profiles=config.network_profiles(),
        default_profile=default,
        prices={n.name: n.price_per_mtok for n in config.networks if n.price_per_mtok},
        spends={n.name: n.monthly_spend_usd for n in config.networks
                if n.monthly_spend_usd is not None},
        maintenance=tuple(config.maintenance), quorum=config.quorum)


def _quorum_options(args: argparse.Namespace, configured: int
                    ) -> tuple[int, float] | None:
    """(N, slot seconds) of the quorum view when asked for (docs/report.md), else None."""
    quorum = args.quorum if args.quorum is not None else (configured if configured > 1
                                                           else None)
    if quorum is None:
        return None
    if not 1 <= quorum <= 100:
        raise UserError(f"--quorum {quorum}: give how many locations must agree (1 to 100, "
                        "as the config's quorum)")
    try:
        slot_s = parse_duration(args.quorum_slot)
    except ValueError:
        slot_s = 0.0
    if not 1 <= slot_s <= 86400:
        raise UserError(f"--quorum-slot {args.quorum_slot!r}: give a duration from 1s to 1d, "
                        "like 5m")
    if args.format not in ("table", "markdown", "json"):
        raise UserError("--quorum: shown with --format table, markdown or json")
    return quorum, slot_s


def _with_quorum(text: str, fmt: str, summaries: list[quorum_view.QuorumSummary]) -> str:
    """The rendered report with the quorum view added in the same format."""
    if fmt == "json":
        data = json.loads(text)
        data["quorum"] = quorum_view.to_json(summaries)
        return json.dumps(data, indent=2) + "\n"
    render = quorum_view.render_text if fmt == "table" else quorum_view.render_markdown
    return f"{text}\n{render(summaries)}"


RUN_COLUMNS = ("started_at", "network", "target", "job", "location", "outcome", "http_status",
               "error")


def _runs_csv(args: argparse.Namespace, since: float | None, until: float | None) -> int:
    """`report --runs`: each selected run of every store, oldest first, as CSV. Errors are
    stored scrubbed; they go through the scrubber again here (Bearer tokens, URL credentials
    and, with -c, the config's secrets that are set)."""
    secrets = load_config(args.config).secrets() if args.config else ()
    runs = RunFilter(since=since, until=until, networks=args.network, jobs=args.job)
    rows: list[dict[str, object]] = []
    for path in args.db:
        if not Path(path).is_file():
            raise UserError(f"--db {path}: no such file; give the store written by "
                            "`depin-monitor run --db` or `demo --db`")
        after: Position | None = None
        while True:
            try:
                page = read_page(path, RUN_COLUMNS, runs, limit=5000, after=after)
            except sqlite3.DatabaseError as exc:
                raise UserError(f"--db {path}: not a depin-monitor store ({exc})") from None
            rows += page.rows
            if page.next is None:
                break
            after = page.next
    rows.sort(key=lambda r: float(r["started_at"]))  # type: ignore[arg-type]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RUN_COLUMNS)
    for r in rows:
        started = dt.datetime.fromtimestamp(float(r["started_at"]),  # type: ignore[arg-type]
                                            dt.UTC)
        writer.writerow([started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                         *(r[c] for c in RUN_COLUMNS[1:-1]),
                         scrub(str(r["error"] or ""), secrets)])
    if args.output:
        Path(args.output).write_text(out.getvalue())
        print(f"wrote {args.output} ({len(rows)} runs)")
    else:
        print(out.getvalue(), end="")
    return 0
