"""Samples: what one monitor's /metrics holds per (network, tier, workload) combination, the
cardinality budget of docs/metrics.md and docs/scale.md.

The monitor's registry as `run` builds it (monitor.runtime.agent: the sink with its known
series at 0, `_created` samples as `run` sets them, the month SLA figures from its store) for
N networks x T tiers x W workloads, every combination fed one run of every outcome and ok runs
on new HTTPS connections (every phase and TLS fact exported, the histograms' buckets all
there), rendered by monitor/exporter/exposition.py in the text format and in OpenMetrics.
Each sample is counted where its labels put it: per combination (it has `workload`), per
(network, tier) (`target` without `workload`), per network, or for the monitor.

Sample counts do not depend on the machine: one run is the figure.

    python benchmarks/samples.py                    # 50 x 10 x 5 and 100 x 3 x 5, and 1 x 1 x 1
    python benchmarks/samples.py --shape 20x3x2     # any shapes, NETWORKSxTIERSxWORKLOADS
    python benchmarks/samples.py --created on       # with `_created` samples, as before
    python benchmarks/samples.py --quick            # smoke: 2 x 2 x 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import common
from prometheus_client import metrics as client_metrics
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import ENTERPRISE
from monitor.exporter.exposition import Exposition, Format
from monitor.exporter.metrics import MetricsSink
from monitor.exporter.sla_collector import SLACollector, month_figures_source
from monitor.storage.store import Store

JOBS = ("chat-short-v1", "chat-long-v1", "json-v1", "needle-8k-v1", "completion-short-v1",
        "tools-v1", "reasoning-v1", "embed-v1")
SHAPES = ("50x10x5", "100x3x5", "1x1x1")


def tiers(n: int) -> list[str]:
    return ["small", "medium", "large"][:n] if n <= 3 else [f"model-{i}" for i in range(n)]


def run_of(network: str, tier: str, job: str, outcome: Outcome) -> ProbeResult:
    """A run on a new HTTPS connection: every phase and connection fact is exported."""
    done = outcome in (Outcome.OK, Outcome.WRONG_OUTPUT)
    return ProbeResult(
        network=network, target=tier, job=job, model="m", outcome=outcome,
        started_at=time.time(), scheduled_at=time.time(), ttfb_s=0.15, ttft_s=0.2,
        duration_s=1.0 if done else None, tokens_per_s=30.0 if done else None,
        output_tokens=16, max_gap_s=0.05, dns_s=0.01, tcp_s=0.02, tls_s=0.03, ip_version=4,
        tls_version="TLSv1.3", tls_cipher="TLS_AES_128_GCM_SHA256",
        tls_cert_expiry=time.time() + 86400 * 60)


def registry_of(networks: int, n_tiers: int, workloads: int, directory: Path) -> MetricsSink:
    names = [f"network-{i:03d}" for i in range(networks)]
    profiles = dict.fromkeys(names, ENTERPRISE)
    sink = MetricsSink(network_profiles=profiles)
    combos = [(n, t, j) for n in names for t in tiers(n_tiers) for j in JOBS[:workloads]]
    sink.init_targets(combos)
    for net in names:
        sink.set_tls_insecure(net, False)
    path = directory / f"samples-{networks}x{n_tiers}x{workloads}.db"
    path.unlink(missing_ok=True)
    store = Store(path)
    for combo in combos:
        for outcome in Outcome:
            result = run_of(*combo, outcome)
            sink.on_result(result)
            store.add(result)
    store.close()
    sink.add_collector(SLACollector(month_figures_source(path, profiles)))
    return sink


def count(networks: int, n_tiers: int, workloads: int, directory: Path) -> list[list[object]]:
    sink = registry_of(networks, n_tiers, workloads, directory)
    exposition = Exposition(sink.registry)
    rows = []
    combos = networks * n_tiers * workloads
    for fmt in (Format("text"), Format("openmetrics")):
        body = exposition.render(fmt).decode()
        samples = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        where = Counter[str]()
        text = body if not fmt.openmetrics else exposition.render(Format("text")).decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                where["combination" if "workload" in labels else
                      "tier" if "target" in labels else
                      "network" if "network" in labels else "monitor"] += 1
        rows.append([f"{networks} x {n_tiers} x {workloads}", fmt.kind, f"{combos:,}",
                     f"{samples:,}", f"{samples / combos:.1f}",
                     f"{where['combination'] / combos:.1f}",
                     f"{where['tier'] / (networks * n_tiers):.1f}",
                     f"{where['network'] / networks:.1f}", where["monitor"]])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", action="append", metavar="NxTxW",
                   help=f"networks x tiers x workloads (repeatable; default {', '.join(SHAPES)})")
    p.add_argument("--created", choices=("as-run", "on"), default="as-run",
                   help="`_created` samples as `run` serves them (default), or on")
    p.add_argument("--quick", action="store_true", help="smoke run")
    args = p.parse_args(argv)
    shapes = ["2x2x2"] if args.quick else (args.shape or list(SHAPES))
    if args.created == "on":
        client_metrics.enable_created_metrics()
    else:
        try:
            from monitor.exporter.metrics import drop_created_series
        except ImportError:  # a monitor from before it dropped them
            pass
        else:
            drop_created_series()
    print(f"# samples: {common.machine()}")
    print(f"# command: {' '.join(['python', *sys.argv])}")
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in shapes:
            n, t, w = (int(x) for x in shape.lower().split("x"))
            if not 1 <= w <= len(JOBS):
                raise SystemExit(f"--shape {shape}: 1 to {len(JOBS)} workloads")
            rows += count(n, t, w, Path(tmp))
    print("## samples in one /metrics (every combination ran every outcome, on new HTTPS "
          "connections)")
    print(common.table(["networks x tiers x workloads", "format", "combinations", "samples",
                        "per combination, all included", "with a workload label, per "
                        "combination", "per (network, tier)", "per network", "monitor"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
