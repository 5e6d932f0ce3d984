"""Exporter: how long a /metrics scrape takes at 100 networks x 5 workloads x 3 (1,500 series),
in the text format and in OpenMetrics, and the monitor's RSS and scrapes while `depin-monitor
run` probes 1,000 targets.

Scrape: a MetricsSink with N networks x 3 targets (model tiers; the same series count as 3
locations' worth in one registry) x 5 workloads, the `enterprise` SLA profile, every series fed
20 realistic results (phases included), served by monitor.web.server in a child process
pinned to core 0. This process (core 1) scrapes it over loopback --scrapes times per format
and per share of series that got a new result since the previous scrape (the child feeds them
just before each scrape): none, a quarter (every series probed each minute, scraped every
15 s) and all. It reports the scrape time (request to last byte, median and max), the samples
and the body size, and the CPU the same registry costs prometheus_client's own encoder
(generate_latest, in this process: the renderer before monitor/exporter/exposition.py).
`location` is not a label the app emits (docs/metrics.md): one monitor process per location
holds 500 of these series; the 1,500-series registry is three locations' worth in one.

RSS: the real monitor, `depin-monitor run -c CONFIG` (benchmarks/shipped.py) pinned to core 0,
with a generated config of 1,000 targets (networks, one job each, chat-short-v1 every
--interval s) spread over --sims simulator processes on core 1; its RSS (VmRSS, and the peak
VmHWM) is read from /proc while it probes for --duration s, and /metrics is scraped in
OpenMetrics every 5 s as Prometheus would.

Cache: the RSS the renderer's cache keeps (a child's template and its last text, per format
scraped), in this process: 200 networks x 5 workloads (1,000 series, as in the RSS run) fed as
for the scrape, RSS after prometheus_client's encoder (nothing kept), then after one cached
render in OpenMetrics, then in the text format too.

    python benchmarks/exporter.py             # scrape 1,500 series, RSS at 1,000 targets (~2 min)
    python benchmarks/exporter.py --quick     # smoke: 5 networks and 20 targets, seconds
    python benchmarks/exporter.py --cache-memory 200   # only the RSS the renderer's cache keeps
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing as mp
import random
import subprocess
import sys
import threading
import time
import urllib.request
from multiprocessing.connection import Connection

import common
import shipped

from monitor.core.result import Outcome, ProbeResult

JOBS = ("chat-short-v1", "chat-long-v1", "json-v1", "needle-8k-v1", "completion-short-v1")
TIERS = ("small", "medium", "large")
SHARES = (("none", 0.0), ("a quarter", 0.25), ("all", 1.0))
OPENMETRICS = shipped.PROMETHEUS_ACCEPT


def tier_names(tiers: int) -> tuple[str, ...]:
    return TIERS[:tiers] if tiers <= len(TIERS) else tuple(f"model-{i}" for i in range(tiers))


def series(networks: int, tiers: int = 3, jobs: int = 5) -> list[tuple[str, str, str]]:
    return [(f"network-{i:03d}", t, j) for i in range(networks) for t in tier_names(tiers)
            for j in JOBS[:jobs]]


def result(rng: random.Random, network: str, target: str, job: str) -> ProbeResult:
    """A realistic run: mostly ok, phases on a pooled connection, now and then a new one."""
    outcomes = list(Outcome)
    outcome = Outcome.OK if rng.random() < 0.9 else rng.choice(outcomes)
    fresh = rng.random() < 0.05
    return ProbeResult(
        network=network, target=target, job=job, model="m", outcome=outcome,
        started_at=time.time(), scheduled_at=time.time() - rng.random() / 100,
        ttft_s=rng.lognormvariate(-1, 1), ttfb_s=rng.uniform(0.01, 0.1),
        duration_s=rng.lognormvariate(1, 0.5), tokens_per_s=rng.uniform(5, 150),
        max_gap_s=rng.uniform(0.01, 1), output_tokens=256, input_tokens=1000,
        tcp_s=0.001 if fresh else None, tls_s=0.004 if fresh else None)


def populated_sink(networks: int, tiers: int = 3, jobs: int = 5):  # -> MetricsSink
    from monitor.core.slaprofile import ENTERPRISE
    from monitor.exporter import metrics

    drop_created = getattr(metrics, "drop_created_series", None)
    if drop_created is not None:  # as `run` serves /metrics (a monitor from before: kept)
        drop_created()
    MetricsSink = metrics.MetricsSink
    names = [f"network-{i:03d}" for i in range(networks)]
    sink = MetricsSink(network_profiles=dict.fromkeys(names, ENTERPRISE))
    all_series = series(networks, tiers, jobs)
    sink.init_targets(all_series)
    rng = random.Random(1)
    for _ in range(20):
        for s in all_series:
            sink.on_result(result(rng, *s))
    return sink


def _serve(networks: int, control: Connection) -> None:
    """The child: serve the sink's registry; on each `share` from the parent, feed that share
    of the series one result each (on the server's loop, as probes do), then answer."""
    import asyncio

    from monitor.web.server import bound_port, start_server

    common.pin([0])
    sink = populated_sink(networks)
    all_series = series(networks)
    rng = random.Random(2)

    def feed(share: float) -> int:
        chosen = rng.sample(all_series, round(share * len(all_series)))
        for s in chosen:
            sink.on_result(result(rng, *s))
        return len(chosen)

    def feed_into(fed: concurrent.futures.Future[int], share: float) -> None:
        fed.set_result(feed(share))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        runner = await start_server("127.0.0.1", 0, registry=sink.registry)
        control.send(bound_port(runner))

        def listen() -> None:
            while True:
                try:
                    share = control.recv()
                except EOFError:
                    return
                fed: concurrent.futures.Future[int] = concurrent.futures.Future()
                loop.call_soon_threadsafe(feed_into, fed, share)
                control.send(fed.result())

        threading.Thread(target=listen, daemon=True).start()
        await asyncio.Event().wait()

    asyncio.run(main())


def scrape_times(networks: int, scrapes: int) -> list[list[object]]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(networks, child), daemon=True)
    proc.start()
    rows: list[list[object]] = []
    try:
        if not parent.poll(300):
            raise RuntimeError("the metrics server did not start")
        url = f"http://127.0.0.1:{parent.recv()}/metrics"
        for fmt, accept in (("text", "text/plain"), ("openmetrics", OPENMETRICS)):
            _get(url, accept)  # the first scrape builds the renderer's templates
            for label, share in SHARES:
                times, body = [], b""
                for _ in range(scrapes):
                    parent.send(share)
                    parent.recv()
                    t0 = time.perf_counter()
                    body = _get(url, accept)
                    times.append(time.perf_counter() - t0)
                samples = sum(1 for line in body.splitlines()
                              if line and not line.startswith(b"#"))
                rows.append([f"{networks} x 3 x 5", fmt, label, f"{samples:,}",
                             f"{len(body) / 2**20:.1f}", common.ms(common.quantile(times, 0.5)),
                             common.ms(max(times)), f"{common.rss_mb(proc.pid):.0f}"])
                print(f"  {fmt}, {label} changed: {common.ms(common.quantile(times, 0.5))} ms",
                      file=sys.stderr, flush=True)
    finally:
        proc.kill()
        proc.join()
    return rows


def _get(url: str, accept: str) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read()


def render_cost(networks: int, tiers: int, jobs: int, renders: int) -> list[list[object]]:
    """The renderer alone, in this process: `networks` x `tiers` x `jobs` series, every series
    fed one new result before each render (all changed), each format rendered `renders`
    times after a first render that builds its templates. CPU (process time) and wall time
    of `Exposition.render`, the whole body in one piece; a scrape on the event loop does the
    same work in 1-5 ms slices."""
    from monitor.exporter.exposition import Exposition, Format

    sink = populated_sink(networks, tiers, jobs)
    all_series = series(networks, tiers, jobs)
    rng = random.Random(4)
    exposition = Exposition(sink.registry)
    rows: list[list[object]] = []
    for fmt in (Format("text"), Format("openmetrics")):
        body = exposition.render(fmt)
        cpu, wall = [], []
        for _ in range(renders):
            for s in all_series:
                sink.on_result(result(rng, *s))
            c0, t0 = time.process_time(), time.perf_counter()
            body = exposition.render(fmt)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        rows.append([f"{networks} x {tiers} x {jobs}", fmt.kind, f"{len(all_series):,}",
                     f"{samples:,}", f"{len(body) / 2**20:.1f}",
                     common.ms(common.quantile(cpu, 0.5)), common.ms(min(cpu)),
                     common.ms(common.quantile(wall, 0.5))])
        print(f"  render {fmt.kind}, all changed: {common.ms(common.quantile(cpu, 0.5))} ms CPU",
              file=sys.stderr, flush=True)
    return rows


def stock_cpu(networks: int, repeats: int = 3) -> dict[str, float]:
    """CPU seconds of prometheus_client's own encoders for the same registry (min of
    `repeats`): what a scrape cost before the renderer."""
    from prometheus_client.exposition import generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as om_latest

    sink = populated_sink(networks)
    out = {}
    for fmt, encode in (("text", generate_latest), ("openmetrics", om_latest)):
        spent = []
        for _ in range(repeats):
            c0 = time.process_time()
            encode(sink.registry)
            spent.append(time.process_time() - c0)
        out[fmt] = min(spent)
    return out


def on_result_us(results: int = 20_000) -> float:
    """CPU per MetricsSink.on_result (what the scheduler pays per run for /metrics), for a
    result with every phase and TLS fact, best of 3."""
    sink = populated_sink(10, 1, 5)
    rng = random.Random(3)
    batch = []
    for i in range(results):
        r = result(rng, f"network-{i % 10:03d}", "small", JOBS[i % 5])
        batch.append(r.replace(dns_s=0.001, tcp_s=0.002, tls_s=0.01, ip_version=4,
                               tls_version="TLSv1.3", tls_cipher="TLS_AES_128_GCM_SHA256",
                               tls_cert_expiry=1.8e9))
    best = float("inf")
    for _ in range(3):
        c0 = time.process_time()
        for r in batch:
            sink.on_result(r)
        best = min(best, time.process_time() - c0)
    return best / results * 1e6


def monitor_rss(targets: int, sims_n: int, interval: float, duration: float
                ) -> dict[str, float]:
    """`depin-monitor run` probing `targets` networks: RSS, CPU and scrapes while it runs."""
    sims = [common.start_sim("datacenter", seed=i, cores=[1], p_http_5xx=0.0, ttft_s=0.2,
                             tokens_per_s=50.0) for i in range(sims_n)]
    try:
        nets = [shipped.Net(f"net-{i:04d}", sims[i % len(sims)].base_url,
                            jobs=["chat-short-v1"], interval_s=interval)
                for i in range(targets)]
        config = shipped.config_yaml(nets, port=common.free_port(), concurrency=targets)
        mon = shipped.Monitor.start(config, cores=[0])
        try:
            mon.wait_ready()
            t0 = time.perf_counter()
            rss, scrapes, cpu0 = [], [], None
            c_t0 = t0
            next_scrape = t0 + 5.0
            while time.perf_counter() - t0 < duration:
                time.sleep(min(1.0, max(duration - (time.perf_counter() - t0), 0.01)))
                rss.append(mon.rss_mb())
                if cpu0 is None and time.perf_counter() - t0 > interval:
                    cpu0, c_t0 = mon.cpu_s(), time.perf_counter()
                if time.perf_counter() >= next_scrape:
                    scrapes.append(mon.scrape()[0])
                    next_scrape += 5.0
            if cpu0 is None:
                cpu0, c_t0 = mon.cpu_s(), time.perf_counter()
                time.sleep(0.5)
            cpu = (mon.cpu_s() - cpu0) / (time.perf_counter() - c_t0)
            seconds, body = mon.scrape()
            scrapes.append(seconds)
            runs = sum(v for _, v in shipped.metric_values(body, "depin_probe_runs_total"))
            peak = mon.peak_rss_mb()
        finally:
            mon.cleanup()
    finally:
        for s in sims:
            s.stop()
    return {"rss_last": rss[-1], "rss_max": max(rss), "peak": peak, "runs": runs,
            "cpu": cpu, "scrape_s": common.quantile(scrapes, 0.5),
            "scrape_max_s": max(scrapes)}


def cache_memory(networks: int) -> list[list[object]]:
    """RSS the exposition cache keeps: a MetricsSink of `networks` x 1 tier x 5 workloads fed
    as for the scrape, then one render per format through monitor.exporter.exposition (its
    cache kept), after one through prometheus_client's encoder (nothing kept)."""
    import asyncio
    import gc

    from prometheus_client.openmetrics.exposition import generate_latest as om_latest

    from monitor.exporter.exposition import Exposition, negotiate

    def rss_mb() -> float:
        gc.collect()
        with open("/proc/self/status") as status:
            kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
        return kb / 1024

    sink = populated_sink(networks, 1, 5)
    rows = [["fed, never rendered", f"{rss_mb():.0f}", "-"]]
    size = len(om_latest(sink.registry))
    rows.append(["after prometheus_client's OpenMetrics encoder", f"{rss_mb():.0f}",
                 f"{size / 2**20:.1f}"])
    exposition = Exposition(sink.registry)
    for name, accept in (("OpenMetrics", OPENMETRICS), ("text too", "text/plain")):
        fmt = negotiate(accept)[0]
        assert fmt is not None
        size = len(asyncio.run(exposition.render_async(fmt)))
        rows.append([f"after the cached renderer, {name}", f"{rss_mb():.0f}",
                     f"{size / 2**20:.1f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", type=int, default=100,
                   help="networks (x 3 tiers x 5 workloads) in the scraped registry")
    p.add_argument("--scrapes", type=int, default=10, help="scrapes per format and share")
    p.add_argument("--targets", type=int, default=1000, help="targets for the RSS run")
    p.add_argument("--sims", type=int, default=4, help="simulator processes for the RSS run")
    p.add_argument("--interval", type=float, default=10.0, help="probe interval (s)")
    p.add_argument("--duration", type=float, default=40.0, help="RSS run length (s)")
    p.add_argument("--render", default="50x10x5", metavar="NxTxW",
                   help="the renderer alone at networks x tiers x workloads, all changed")
    p.add_argument("--renders", type=int, default=5, help="renders per format (--render)")
    p.add_argument("--render-only", action="store_true",
                   help="only the renderer at --render (no scrape, no RSS run)")
    p.add_argument("--cache-memory", type=int, metavar="NETWORKS",
                   help="only the RSS the renderer's cache keeps for NETWORKS x 5 series")
    p.add_argument("--quick", action="store_true", help="smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.networks, args.scrapes, args.targets, args.sims = 5, 2, 20, 1
        args.interval, args.duration, args.render, args.renders = 2.0, 3.0, "2x2x2", 2
    common.pin([1])
    print(f"# exporter: {common.machine()}")
    if args.cache_memory:
        print_cache_memory(args.cache_memory)
        return 0
    n, t, w = (int(x) for x in args.render.lower().split("x"))
    print(f"## the renderer alone: {n} networks x {t} tiers x {w} workloads, every series "
          f"changed before each render, {args.renders} renders per format (this process, "
          "core 1)")
    print(common.table(["networks x tiers x jobs", "format", "series", "samples", "body MiB",
                        "render CPU p50 ms", "render CPU min ms", "render wall p50 ms"],
                       render_cost(n, t, w, args.renders)))
    print()
    if args.render_only:
        return 0
    print(f"# server pinned to core 0, this scraper to core 1; command: "
          f"{' '.join(['python', *sys.argv])}")
    rows = scrape_times(args.networks, args.scrapes)
    print("## /metrics scrape (one registry; series changed since the previous scrape)")
    print(common.table(["networks x tiers x jobs", "format", "changed", "samples", "body MiB",
                        "scrape p50 ms", "scrape max ms", "server RSS MB"], rows))
    stock = stock_cpu(args.networks)
    print()
    print(f"## the same registry through prometheus_client's own encoders (CPU, best of 3): "
          f"text {stock['text'] * 1e3:.0f} ms, OpenMetrics {stock['openmetrics'] * 1e3:.0f} ms")
    print()
    print(f"## MetricsSink.on_result, a result with all phases and TLS facts: "
          f"{on_result_us(2_000 if args.quick else 20_000):.1f} us CPU each (best of 3)")
    r = monitor_rss(args.targets, args.sims, args.interval, args.duration)
    print()
    print(f"## `depin-monitor run` probing {args.targets:,} targets (chat-short-v1 every "
          f"{args.interval:g}s, {args.sims} simulator processes) for {args.duration:g}s, "
          "scraped in OpenMetrics every 5 s")
    print(common.table(
        ["targets", "runs done", "RSS now MB", "RSS max sampled MB", "VmHWM peak MB",
         "monitor CPU", "scrape p50 ms", "scrape max ms"],
        [[f"{args.targets:,}", f"{r['runs']:,.0f}", f"{r['rss_last']:.0f}",
          f"{r['rss_max']:.0f}", f"{r['peak']:.0f}", f"{r['cpu'] * 100:.0f}%",
          common.ms(r["scrape_s"]), common.ms(r["scrape_max_s"])]]))
    print()
    # in a fresh process: this one's heap already holds (and reuses) the runs above
    fresh = subprocess.run([sys.executable, __file__, "--cache-memory",
                            "2" if args.quick else "200"],
                           capture_output=True, text=True, check=True)
    print(fresh.stdout.split("\n", 1)[1], end="")
    return 0


def print_cache_memory(networks: int) -> None:
    print(f"## the renderer's cache: {networks * 5:,} series ({networks} networks x 5 "
          "workloads), fed 20 results each, in a process of its own")
    print(common.table(["state", "RSS MB", "body MiB"], cache_memory(networks)))


if __name__ == "__main__":
    sys.exit(main())
