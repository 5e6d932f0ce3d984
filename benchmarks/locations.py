"""Locations: what several places cost, for sizing (docs/scale.md).

1. Series a location sends: one monitor's /metrics (the real MetricsSink and the month's SLA
   figures from its store) per (network, tier, job), per network and for the monitor itself,
   before any run and after runs.
2. Rules the central evaluates: recording rules and alerts `depin-monitor rules` makes for
   examples/networks.yaml, and the series they produce per location.
3. The report's quorum view over merged stores: `quorum_from_stores` and `depin-monitor report
   --quorum 2` over 3 locations' stores (one run a minute per network, 30 days by default).

    python benchmarks/locations.py           # ~1 min (writes 3 x 432k rows once)
    python benchmarks/locations.py --quick   # smoke: 1 day
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import common
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.analysis.quorum import quorum_from_stores
from monitor.config import load_config
from monitor.core.result import Outcome, ProbeResult
from monitor.exporter.metrics import MetricsSink, drop_created_series
from monitor.exporter.rules import generate, slos_from_config
from monitor.exporter.sla_collector import SLACollector, month_figures_source
from monitor.storage.reads import open_store
from monitor.storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
LOCATIONS = ("eu-west", "us-east", "ap-south")
T0 = 1_790_000_100.0


def exposition_counts(outcomes: list[Outcome], directory: Path) -> tuple[int, int, int]:
    """(samples per (network, tier, job), per network (and tier), for the monitor) of one
    monitor, as `run` serves them: the sink (no `_created` samples), and the month's SLA
    figures from its store."""
    drop_created_series()
    profiles = {"n": load_config(ROOT / "examples" / "networks.yaml").profiles["enterprise"]}
    sink = MetricsSink(network_profiles=profiles, process_metrics=True)
    sink.init_targets([("n", "small", "chat-short-v1")])
    path = directory / f"series-{len(outcomes)}.db"
    path.unlink(missing_ok=True)
    store = Store(path)
    for outcome in outcomes:
        done = outcome in (Outcome.OK, Outcome.WRONG_OUTPUT)
        result = ProbeResult(  # an HTTPS network on a new connection: every phase seen
            network="n", target="small", job="chat-short-v1", model="m", outcome=outcome,
            started_at=time.time(), ttfb_s=0.15, ttft_s=0.2, duration_s=1.0 if done else None,
            tokens_per_s=30.0 if done else None, output_tokens=16, max_gap_s=0.05,
            dns_s=0.01, tcp_s=0.02, tls_s=0.03, ip_version=4, tls_version="TLSv1.3",
            tls_cipher="TLS_AES_128_GCM_SHA256", tls_cert_expiry=time.time() + 86400 * 60)
        sink.on_result(result)
        store.add(result)
    store.close()
    sink.add_collector(SLACollector(month_figures_source(path, profiles)))
    per = Counter[str]()
    for family in text_string_to_metric_families(generate_latest(sink.registry).decode()):
        for sample in family.samples:
            per["tuple" if "workload" in sample.labels else
                "network" if "network" in sample.labels else "monitor"] += 1
    return per["tuple"], per["network"], per["monitor"]


def rule_counts() -> list[list[object]]:
    config = load_config(ROOT / "examples" / "networks.yaml")
    rules = generate(slos_from_config(config))
    recorded = [r for g in rules["groups"] for r in g["rules"] if "record" in r]
    per_location = [r for r in recorded if r["record"].startswith("location:")]
    alerts = sum(1 for g in rules["groups"] for r in g["rules"] if "alert" in r)
    networks = len(slos_from_config(config))
    return [[networks, len(recorded) - len(per_location), len(per_location), alerts]]


def write_stores(directory: Path, days: float, networks: int) -> list[Path]:
    """One store per location; every network probed once a minute; one in 200 runs fails,
    and one location loses its path to net-0 for an hour a day."""
    paths = []
    minutes = int(days * 1440)
    for index, location in enumerate(LOCATIONS):
        path = directory / f"{location}-{days:g}d-{networks}n.db"
        paths.append(path)
        if path.exists():
            continue
        store = Store(path)
        for minute in range(minutes):
            for n in range(networks):
                cut = index == 0 and n == 0 and minute % 1440 < 60
                failed = cut or (minute * 7 + n * 13 + index) % 200 == 0
                store.add(ProbeResult(
                    network=f"net-{n}", target="small", job="chat-short-v1", model="m",
                    outcome=Outcome.CONNECT_ERROR if failed else Outcome.OK,
                    started_at=T0 + minute * 60 + index * 11 + n, location=location,
                    ttft_s=None if failed else 0.3, duration_s=0.01 if failed else 1.2,
                    tokens_per_s=None if failed else 40.0, output_tokens=None if failed else 16))
            if not minute % 1000:  # keep within the store's buffer: it drops the oldest beyond
                store.flush()
        store.close()
    return paths


def quorum_timings(paths: list[Path]) -> list[list[object]]:
    start = time.perf_counter()
    summaries = quorum_from_stores(paths, quorum=2)
    analysis_s = time.perf_counter() - start
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "monitor.cli", "report", "--quorum", "2",
                           "--format", "json", *[a for p in paths for a in ("--db", str(p))]],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    cli_s = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    rows = 0
    for path in paths:
        store = open_store(path)
        rows += store.count()
        store.close()
    down = sum(s.down_slots for s in summaries)
    local = sum(s.local_slots for s in summaries)
    return [[f"{rows:,}", len(paths), len(summaries), f"{analysis_s:.2f}", f"{cli_s:.2f}",
             down, local]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=float, default=30.0, help="days of runs per store")
    p.add_argument("--networks", type=int, default=10, help="networks probed from each place")
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "depin-bench"),
                   help="where the generated stores are kept between runs")
    p.add_argument("--quick", action="store_true", help="smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.days, args.networks = 1.0, 3
    print(f"# locations: {common.machine()}")
    print(f"# command: {' '.join(['python', *sys.argv])}")

    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    print("## series one location sends (one monitor's /metrics)")
    # every failure outcome's series exists from the start (init_targets); the histograms
    # appear with the first run
    rows = [[name, *exposition_counts(outcomes, directory)] for name, outcomes in (
        ("before any run", []), ("after runs", list(Outcome)))]
    print(common.table(["state", "series per tuple", "per network", "per monitor"], rows))

    print("## rules the central evaluates (examples/networks.yaml)")
    print("(a recording rule records one series; a per-location one, one per location)")
    print(common.table(["networks", "recording rules", "per-location recording rules",
                        "alerts"], rule_counts()))

    paths = write_stores(directory, args.days, args.networks)
    print(f"## report quorum view over {len(paths)} locations' stores ({args.days:g} days, "
          f"{args.networks} networks, a run a minute)")
    print(common.table(["rows", "stores", "networks", "quorum view s", "report --quorum s",
                        "down slots", "local slots"], quorum_timings(paths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
