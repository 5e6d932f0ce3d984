"""`depin-monitor run`: the long-running monitor (scheduler -> store + /metrics).

Signals: SIGINT/SIGTERM stop scheduling, give in-flight runs a grace period, flush the store
and exit 0 (1 if some results could not be stored: the store failed, e.g. a full disk, for
longer than its buffer lasted or than the shutdown timeout; the line on stderr says how many).
Logs: one key=value line per run at debug (-vv), a summary per minute at info (-v).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from dataclasses import replace

from monitor.cli.commands import Subparsers
from monitor.cli.keys import apply_key_policy
from monitor.cli.options import checked, finite
from monitor.cli.paths import check_stores
from monitor.config import Config, load_config
from monitor.core.errors import UserError
from monitor.core.shard import parse_shard
from monitor.core.values import LABEL, listen_address
from monitor.runtime.agent import close_store, monitor, open_for_writing
from monitor.runtime.scheduler import DEFAULT_GRACE_S
from monitor.web.server import DEFAULT_LISTEN
from monitor.web.webconfig import load_web_config

log = logging.getLogger("monitor.run")

DEFAULT_DB = "depin-monitor.db"

EXAMPLE = """\
examples:
  depin-monitor run -c examples/demo.yaml --db results.db
  depin-monitor run -c monitor.yaml --listen 0.0.0.0:9464 -v
  depin-monitor run -c monitor.yaml --listen 0.0.0.0:9464 --web-config-file web.yml  # TLS, auth
  depin-monitor run -c monitor.yaml --once --db results.db      # cron: every schedule once
  depin-monitor run -c monitor.yaml --skip-missing-keys          # probe the networks it can
  depin-monitor run -c monitor.yaml --location us-east-1         # one config, many places
  depin-monitor run -c big.yaml --location eu-west-1 --shard 0/3 # first of three agents there

API keys come from the variables named by api_key_env. If one is not set, run refuses to
start, unless --skip-missing-keys: then those networks are skipped with a warning.
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "run", help="the long-running monitor: probe on schedule, store, serve /metrics",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-c", "--config", required=True, help="the monitor's YAML config")
    p.add_argument("--db", "--store", dest="db", default=DEFAULT_DB, metavar="PATH",
                   help=f"SQLite store to append results to (default: {DEFAULT_DB})")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="serve /metrics, /healthz, /readyz and a status page here (default: "
                        f"the config's `listen`, else {DEFAULT_LISTEN}; `off` to disable; "
                        "with --once only if given)")
    p.add_argument("--web-config-file", metavar="PATH",
                   help="TLS and basic or bearer authentication for the HTTP side, in the "
                        "web config format Prometheus exporters share (docs/security.md)")
    p.add_argument("--once", action="store_true",
                   help="run every schedule once, store the results and exit")
    p.add_argument("--skip-missing-keys", action="store_true",
                   help="skip networks whose api_key_env variable is not set (default: refuse)")
    p.add_argument("--location", metavar="NAME",
                   help="where this agent runs, recorded on every run (default: the config's "
                        "`location`): agents in several places share one config")
    p.add_argument("--shard", metavar="I/N",
                   help="probe only this agent's share of the model tiers: agent I of N in "
                        "one location (0-based), split by Prometheus' hashmod of "
                        "network;tier (docs/scale.md)")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, metavar="S",
                   help=f"on SIGTERM, let runs in flight finish for S seconds "
                        f"(default {DEFAULT_GRACE_S:g})")
    p.set_defaults(func=run, daemon=True, tuned=True)


def run(args: argparse.Namespace) -> int:
    finite("--grace", args.grace, lo=0.0, hi=86400.0)
    if args.listen is not None and args.listen != "off":
        checked("--listen", listen_address, args.listen)
    check_stores([args.db], writing=True)
    config = load_config(args.config)
    config = apply_key_policy(config, skip=args.skip_missing_keys)
    config = _placed(config, args.location, args.shard)
    listen = args.listen or (None if args.once else (config.listen or DEFAULT_LISTEN))
    web_config = load_web_config(args.web_config_file) if args.web_config_file else None
    store = open_for_writing(args.db, config.store)
    try:
        asyncio.run(monitor(config, store, listen=listen, once=args.once, grace_s=args.grace,
                            web_config=web_config))
    finally:
        lost = close_store(store)
    log.info("stored %d results in %s", store.written, args.db)
    if lost:
        print(f"depin-monitor: {lost}", file=sys.stderr)
        return 1
    return 0


def _placed(config: Config, location: str | None, shard_text: str | None) -> Config:
    """The config as this agent runs it: its --location, and only its --shard's tiers."""
    if location is not None:
        if not re.fullmatch(LABEL, location) or len(location) > 100:
            raise UserError(f"--location {location!r}: use a short label such as eu-west-1 "
                            "(letters, digits, . _ : -; at most 100)")
        config = replace(config, location=location)
    if shard_text is None:
        return config
    try:
        shard = parse_shard(shard_text)
    except ValueError as exc:
        raise UserError(f"--shard {exc}") from None
    total = len(config.targets())
    mine = config.sharded(shard)
    if not mine.networks:
        raise UserError(f"--shard {shard}: this agent gets none of the config's {total} "
                        "model tiers (hashmod of network;tier); run fewer agents")
    log.info("shard %s: %d of %d model tiers", shard, len(mine.targets()), total)
    return mine
