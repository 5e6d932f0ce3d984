"""Growth: how the monitor's CPU, memory and scrape time, and the store's size and report times,
grow in 10x steps, so an operator can size a deployment.

Targets (10, 100, 1,000): the real monitor (`depin-monitor run`, pinned to one core) probes
that many targets (one network each, chat-short-v1 every --interval s) on simulator processes
pinned to the other core, for --duration s; CPU share of its core, RSS, and one /metrics
scrape (exporter.monitor_rss). Probe load grows with targets / interval: 1,000 targets every
10 s is 100 runs/s.

Stored rows (10k, 100k, 1M, 10M over a month of 540 series: 10 networks x 3 tiers x 6 jobs x
3 locations): the generated stores of storage.py (cached under --dir, shared with it) and the
report timings of storage.report_timings: the month's SLA of every network, the report from
raw rows in Python (estimated above --python-max rows), from the rollups, and
`depin-monitor report` by network and by every series.

    python benchmarks/growth.py           # ~3 min (plus ~1.5 min once to generate 10M rows)
    python benchmarks/growth.py --quick   # smoke: 5 targets, 2k and 10k rows
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import common
import exporter
import storage


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default="10,100,1000", help="monitored targets (comma list)")
    p.add_argument("--rows", default="10000,100000,1000000,10000000", help="stored rows")
    p.add_argument("--interval", type=float, default=10.0, help="probe interval (s)")
    p.add_argument("--duration", type=float, default=30.0, help="monitor run per step (s)")
    p.add_argument("--sims", type=int, default=4, help="simulator processes")
    p.add_argument("--python-max", type=int, default=1_000_000,
                   help="largest store the Python-side report runs on (else estimated)")
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "depin-bench"),
                   help="generated stores (shared with storage.py)")
    p.add_argument("--quick", action="store_true", help="smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.targets, args.rows, args.interval, args.duration, args.sims = (
            "5", "2000,10000", 2.0, 2.0, 1)
    print(f"# growth: {common.machine()}")
    print(f"# command: {' '.join(['python', *sys.argv])}")

    rows = []
    for n in (int(x) for x in args.targets.split(",")):
        r = exporter.monitor_rss(n, min(args.sims, n), args.interval, args.duration)
        rows.append([f"{n:,}", f"{n / args.interval:g}", f"{r['runs']:,.0f}",
                     f"{r['cpu'] * 100:.1f}%", f"{r['rss_last']:.0f}", f"{r['peak']:.0f}",
                     common.ms(r["scrape_s"])])
        print(f"  {n} targets done", file=sys.stderr, flush=True)
    print("## monitor process vs targets")
    print(common.table(["targets", "runs/s", "runs done", "CPU (one core)", "RSS MB",
                        "peak RSS MB", "scrape ms"], rows))

    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    per_row: dict[str, float] = {}
    out = []
    for n in sorted(int(x) for x in args.rows.split(",")):
        path = storage.store_path(workdir, n)
        gen, roll = storage.generate(path, n)
        t = storage.report_timings(path, n, args.python_max, per_row)
        out.append([f"{n:,}", f"{os.path.getsize(path) / 2**20:,.1f}",
                    f"{gen:.1f} s" if gen else "cached", f"{roll:.1f} s" if roll else "cached",
                    *(storage.fmt_s(t.get(k)) for k in storage.REPORTS)])
        print(f"  {n:,} rows done", file=sys.stderr, flush=True)
    print()
    print(f"## store vs stored rows ({storage.SERIES} series: 10 networks x 3 tiers x 6 jobs x "
          "3 locations, over a month)")
    print(common.table(["rows", "file MB", "generate", "rollup fold", *storage.REPORTS], out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
