"""Status API: how long each /api/v1/ resource takes over a store of realistic size, and how
much serving it delays the probes' event loop (the server runs in the monitor's process).

A store of --networks networks x 2 model tiers x 2 jobs, each run every --interval s for
--days days (10 x 2 x 2 every 60 s for 30 days: 1.7 M runs), with a few percent of failures
and an outage streak now and then, is generated once and cached in $TMPDIR/depin-bench. The
monitor's HTTP server serves it in this process with the API's cache off, so every request
reads the store; a client thread asks each resource --requests times, one at a time, while a
5 ms sampler in the server's loop records its lag (what a probe's timing would suffer).

    python benchmarks/status_api.py            # 1.7 M runs (~1 min to generate once)
    python benchmarks/status_api.py --quick    # smoke: 3 networks, 2 days, seconds
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import common
import httpx

from monitor.analysis.status import DAY_S
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.exporter.metrics import MetricsSink
from monitor.storage.store import Store
from monitor.web import api
from monitor.web.api import PublicNetwork, StatusSource
from monitor.web.server import bound_port, start_server

TIERS = ("small", "large")
JOBS = ("chat-short-v1", "json-v1")
FAILURES = (Outcome.TIMEOUT, Outcome.DISCONNECT, Outcome.HTTP_ERROR, Outcome.RATE_LIMITED,
            Outcome.WRONG_OUTPUT)
RESOURCES = ("networks", "daily?days=90", "ttft?hours=24", "sla", "incidents?since=7d",
             "results?limit=100", "results?limit=100&network=network-00&outcome=timeout",
             "maintenance", "networks/network-00",
             # the first request judges each closed day's SLA once (kept after): its max
             "feed.atom", "networks/network-00/feed.atom",
             "networks/network-00/badges/uptime-30d.svg",
             "networks/network-00/badges/ttft-p95.svg", "networks/network-00/badges/state.svg")


def make_store(path: Path, networks: int, days: float, interval_s: float, now: float) -> int:
    rng = random.Random(7)
    store = Store(path)
    n = 0
    try:
        t = now - days * DAY_S
        outage_until: dict[str, float] = {}
        batch: list[ProbeResult] = []
        while t < now:
            for i in range(networks):
                net = f"network-{i:02d}"
                if rng.random() < 1e-4:  # an outage of 2-20 minutes
                    outage_until[net] = t + rng.uniform(120, 1200)
                down = t < outage_until.get(net, 0)
                for tier in TIERS:
                    for job in JOBS:
                        failed = down or rng.random() < 0.03
                        outcome = rng.choice(FAILURES) if failed else Outcome.OK
                        ttft = None if outcome is Outcome.HTTP_ERROR else rng.lognormvariate(
                            -1, 0.6)
                        batch.append(ProbeResult(
                            network=net, target=tier, job=job, model="m", outcome=outcome,
                            started_at=t + rng.random(), location="bench", ttft_s=ttft,
                            duration_s=rng.lognormvariate(0.5, 0.4), output_tokens=60,
                            tokens_per_s=rng.uniform(20, 90)))
            t += interval_s
            if len(batch) >= 50_000:
                store.add_many(batch)
                n += len(batch)
                batch = []
                store.flush()
        store.add_many(batch)
        n += len(batch)
    finally:
        store.close()
    return n


def source(path: Path, networks: int, interval_s: float, now: float) -> StatusSource:
    nets = tuple(PublicNetwork(f"network-{i:02d}", "openai",
                               tuple((tier, "m") for tier in TIERS), JOBS, interval_s,
                               "standard") for i in range(networks))
    return StatusSource(stores=(path,), networks=nets,
                        profiles={n.name: BUILTIN_PROFILES["standard"] for n in nets},
                        location="bench", clock=lambda: now)


async def measure(src: StatusSource, requests: int) -> list[list[object]]:
    api.CACHE_TTL_S = api.INCIDENTS_TTL_S = 0.0  # every request reads the store
    runner = await start_server("127.0.0.1", 0, registry=MetricsSink().registry, status=src)
    url = f"http://127.0.0.1:{bound_port(runner)}/api/v1/"
    rows: list[list[object]] = []
    try:
        idle = common.LagSampler().start()
        await asyncio.sleep(1.0)
        await idle.stop()
        rows.append(["(idle loop)", "-", "-", "-", common.ms(idle.p(0.5)),
                     common.ms(idle.p(0.99)), common.ms(max(idle.lags))])
        for resource in RESOURCES:
            took: list[float] = []
            size = [0]

            def client(resource: str = resource, took: list[float] = took,
                       size: list[int] = size) -> None:
                with httpx.Client(timeout=120) as http:
                    for _ in range(requests):
                        start = time.perf_counter()
                        r = http.get(url + resource)
                        took.append(time.perf_counter() - start)
                        r.raise_for_status()
                        size[0] = len(r.content)

            lag = common.LagSampler().start()
            thread = threading.Thread(target=client)
            thread.start()
            while thread.is_alive():
                await asyncio.sleep(0.05)
            await lag.stop()
            rows.append([resource, common.ms(common.quantile(took, 0.5)),
                         common.ms(max(took)), f"{size[0] / 1024:.0f}",
                         common.ms(lag.p(0.5)), common.ms(lag.p(0.99)),
                         common.ms(max(lag.lags))])
    finally:
        await runner.cleanup()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", type=int, default=10)
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument("--interval", type=float, default=60.0, help="seconds between runs")
    p.add_argument("--requests", type=int, default=10, help="requests per resource")
    p.add_argument("--quick", action="store_true", help="3 networks, 2 days, 3 requests")
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "depin-bench"))
    args = p.parse_args()
    if args.quick:
        args.networks, args.days, args.requests = 3, 2.0, 3
    print(common.machine())
    now = float(int(time.time() // 3600 * 3600))  # the hour: a cached store stays current
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    path = Path(args.dir) / (f"status-{args.networks}n-{args.days:g}d-{args.interval:g}s-"
                             f"{int(now // DAY_S)}.db")
    if not path.exists():
        start = time.perf_counter()
        n = make_store(path.with_suffix(".tmp"), args.networks, args.days, args.interval, now)
        path.with_suffix(".tmp").rename(path)
        print(f"generated {n:,} runs in {time.perf_counter() - start:.0f} s: {path}")
    runs = args.networks * len(TIERS) * len(JOBS) * args.days * DAY_S / args.interval
    print(f"\n### /api/v1/ over {runs:,.0f} stored runs ({args.networks} networks x "
          f"{len(TIERS)} tiers x {len(JOBS)} jobs every {args.interval:g} s, {args.days:g} "
          f"days), cache off, {args.requests} requests each\n")
    rows = asyncio.run(measure(source(path, args.networks, args.interval, now), args.requests))
    print(common.table(["resource", "p50 ms", "max ms", "KiB", "loop lag p50 ms",
                        "lag p99 ms", "lag max ms"], rows))


if __name__ == "__main__":
    main()
