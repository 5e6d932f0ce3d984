"""`depin-monitor report`: compare networks side by side from one or more stores."""

from __future__ import annotations

import argparse
import re
import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor import rollup
from monitor.errors import UserError
from monitor.report import COLUMNS, GROUPINGS, RENDERERS, build_report
from monitor.slaprofile import BUILTIN_PROFILES
from monitor.store import read_rows

EXAMPLE = """\
examples:
  depin-monitor report --db results.db
  depin-monitor report --db eu.db --db us.db --since 7d --by network,target
  depin-monitor report --db results.db -c examples/networks.yaml --format html -o report.html
  depin-monitor report --db results.db --format json | jq '.groups[] | {group, availability}'
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.set_defaults(func=run)


def parse_when(text: str, option: str, now: float) -> float:
    """`24h`, `7d`, `30m` back from now, or an ISO-8601 time (UTC if no offset)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if m:
        return now - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: expected a duration like 24h or 7d, or an "
                        "ISO-8601 time like 2026-11-01T00:00:00Z") from None
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def all_rolled_up(paths: Sequence[str]) -> bool:
    """Every file exists and is a store with rollups (else the report reads raw rows)."""
    for path in paths:
        if not Path(path).is_file():
            return False
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
        try:
            if not rollup.has_rollups(conn):
                return False
        except sqlite3.DatabaseError:
            return False
        finally:
            conn.close()
    return True


def load_rows(paths: Sequence[str], **filters: Any) -> list[dict[str, Any]]:
    """The report's columns from every store file; user errors for files that are not stores."""
    try:
        return list(read_rows(paths, COLUMNS, **filters))
    except FileNotFoundError:
        missing = next(p for p in paths if not Path(p).is_file())
        raise UserError(f"--db {missing}: no such file; give the store written by "
                        "`depin-monitor run --db` or `demo --db`") from None
    except sqlite3.DatabaseError as exc:
        raise UserError(f"--db: a file is not a depin-monitor store ({exc}); "
                        f"files: {', '.join(paths)}") from None


def run(args: argparse.Namespace) -> int:
    now = time.time()
    since = parse_when(args.since, "--since", now) if args.since else None
    until = parse_when(args.until, "--until", now) if args.until else None
    by = tuple(part.strip() for part in args.by.split(",") if part.strip())
    bad = [b for b in by if b not in GROUPINGS]
    if bad or not by:
        raise UserError(f"--by {args.by!r}: choose from {', '.join(GROUPINGS)}")
    if args.profile not in BUILTIN_PROFILES and not args.config:
        raise UserError(f"--profile {args.profile!r} is unknown; built-in profiles: "
                        f"{', '.join(BUILTIN_PROFILES)} (or define it in a config with -c)")
    profiles, prices, maintenance, default = _from_config(args)
    if all_rolled_up(args.db):
        # Stores written by `run`/`demo` keep daily rollups: a year of runs in well under 2 s.
        report = rollup.build_report(args.db, by=by, profiles=profiles,
                                     default_profile=default, prices=prices,
                                     maintenance=maintenance, since=since, until=until,
                                     networks=args.network, jobs=args.job)
    else:
        rows = load_rows(args.db, since=since, until=until, networks=args.network,
                         jobs=args.job)
        report = build_report(rows, by=by, profiles=profiles, default_profile=default,
                              prices=prices, maintenance=maintenance, sources=args.db,
                              since=since, until=until)
    text = RENDERERS[args.format](report)
    if args.output:
        Path(args.output).write_text(text)
        runs = sum(g.runs for g in report.groups)
        print(f"wrote {args.output} ({len(report.groups)} groups, {runs} runs)")
    else:
        print(text, end="")
    return 0


def _from_config(args: argparse.Namespace):
    default = BUILTIN_PROFILES.get(args.profile)
    if not args.config:
        return {}, {}, (), default
    from monitor.config import load_config

    config = load_config(args.config)
    if args.profile in config.profiles:
        default = config.profiles[args.profile]
    elif default is None:
        raise UserError(f"--profile {args.profile!r} is not in {args.config} or built in")
    profiles = {n.name: config.profiles[n.sla] for n in config.networks if n.sla}
    prices = {n.name: dict(n.price_per_mtok) for n in config.networks if n.price_per_mtok}
    return profiles, prices, tuple(config.maintenance), default
