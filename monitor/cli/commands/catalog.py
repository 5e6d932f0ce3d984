"""`depin-monitor catalog`: ask each network which models it serves now; report configured
models that are gone and listed models the config does not name, by size tier.

Exit 0 when every listing was read and lists every configured model; 1 when a configured model
is no longer listed or a listing could not be read; 2 for a bad config or usage. Networks whose
kind has no listing (livepeer, jobapi, http) are shown and do not change the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence

from monitor.catalog.drift import NetworkDrift, check_networks
from monitor.catalog.listing import DEFAULT_TIMEOUT_S
from monitor.cli.commands import Subparsers
from monitor.cli.options import seconds
from monitor.config import load_config
from monitor.core.errors import UserError

SHOWN_PER_TIER = 3

EXAMPLE = """\
examples:
  depin-monitor catalog -c examples/networks.yaml
  depin-monitor catalog -c examples/networks.yaml --network chutes --all
  depin-monitor catalog -c monitor.yaml --json | jq .gone
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "catalog", help="check the config's models against what each network lists now",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-c", "--config", required=True, help="the monitor's YAML config")
    p.add_argument("--network", action="append", default=[],
                   help="only this network (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per network per line")
    p.add_argument("--all", action="store_true",
                   help=f"list every model not in the config (default: {SHOWN_PER_TIER} a tier)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"per listing request (default {DEFAULT_TIMEOUT_S:g} s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args.timeout = seconds("--timeout", args.timeout)
    config = load_config(args.config)
    known = [n.name for n in config.networks]
    for name in args.network:
        if name not in known:
            raise UserError(f"--network {name!r} is not in {args.config}; it has: "
                            f"{', '.join(known)}")
    networks = [n for n in config.networks if not args.network or n.name in args.network]
    drifts = asyncio.run(check_networks(networks, timeout_s=args.timeout))
    if args.json:
        for d in drifts:
            print(json.dumps(as_dict(d), separators=(",", ":")))
    else:
        print(render(drifts, shown=None if args.all else SHOWN_PER_TIER))
    failed = any(d.gone or d.error for d in drifts)
    return 1 if failed else 0


def as_dict(d: NetworkDrift) -> dict[str, object]:
    return {"network": d.network, "url": d.url, "error": d.error, "listed": d.listed_total,
            "configured": [{"tier": m.tier, "model": m.model, "listed": m.listed}
                           for m in d.configured],
            "gone": [m.model for m in d.gone], "new": dict(d.new)}


def render(drifts: Sequence[NetworkDrift], shown: int | None = SHOWN_PER_TIER) -> str:
    width = max((len(m.model) for d in drifts for m in d.configured), default=0)
    lines: list[str] = []
    for d in drifts:
        if d.url is None:
            lines.append(f"{d.network}: no model listing for its kind (set catalog_url)")
            continue
        if d.error is not None:
            lines.append(f"{d.network}: cannot read the listing: {d.error}")
            continue
        lines.append(f"{d.network}: {d.listed_total} models listed at {d.url}")
        for m in d.configured:
            verdict = "listed" if m.listed else "GONE: no longer listed"
            lines.append(f"  {m.tier:<8} {m.model:<{width}}  {verdict}")
        for tier, ids in d.new.items():
            more = "" if shown is None or len(ids) <= shown else f", +{len(ids) - shown} more"
            lines.append(f"  new {tier:<8} {len(ids)}: {', '.join(ids[:shown])}{more}")
    gone = [f"{d.network}/{m.tier} {m.model}" for d in drifts for m in d.gone]
    unread = [d.network for d in drifts if d.error is not None]
    lines.append("")
    if gone:
        lines.append(f"{len(gone)} configured model(s) no longer listed: {'; '.join(gone)}")
    if unread:
        lines.append(f"{len(unread)} listing(s) could not be read: {', '.join(unread)}")
    if not gone and not unread:
        checked = sum(d.checked for d in drifts)
        lines.append(f"every configured model is listed ({checked} network(s) checked)")
    return "\n".join(lines)
