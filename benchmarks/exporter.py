"""Exporter: how long a /metrics scrape takes at 100 networks x 5 jobs, and the monitor's RSS
while it probes 1,000 targets.

Scrape: a MetricsSink with N networks (one model tier each, the `enterprise` SLA profile) x 5
jobs, every series initialised and fed results (so every histogram has its buckets), served
by monitor.web.server in a child process; this process scrapes it over loopback `--scrapes` times
in the Prometheus text format and in OpenMetrics (what Prometheus asks for first), and reports
the median/max scrape time, body size and series count. `location` is not a label the app
emits (docs/metrics.md: it is a scrape-side target label), so 3 locations are 3 monitor processes
each scraped on its own: the per-process figure is the 100 x 5 one. `--networks 100,300` adds
one process holding 300 x 5 (as if 3 locations' series were in one registry).

RSS: the real monitor, `depin-monitor run -c CONFIG` in a child process, with a generated
config of 1,000 targets (networks, one job each, chat-short-v1 every --interval s) spread over
--sims simulator processes; its RSS (VmRSS, and the peak VmHWM) is read from /proc while it
probes for --duration s, and /metrics is scraped once at the end.

    python benchmarks/exporter.py             # scrape 100x5, RSS at 1,000 targets (~1.5 min)
    python benchmarks/exporter.py --quick     # smoke: 5x5 and 20 targets, seconds
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import common

from monitor.core.result import Outcome, ProbeResult

JOBS = ("chat-short-v1", "chat-long-v1", "json-v1", "needle-8k-v1", "completion-short-v1")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def populated_sink(networks: int, jobs: int):  # -> MetricsSink
    from monitor.core.slaprofile import ENTERPRISE
    from monitor.exporter.metrics import MetricsSink

    names = [f"network-{i:03d}" for i in range(networks)]
    sink = MetricsSink(network_profiles=dict.fromkeys(names, ENTERPRISE))
    series = [(n, "small", j) for n in names for j in JOBS[:jobs]]
    sink.init_targets(series)
    rng = random.Random(1)
    outcomes = list(Outcome)
    for n, t, j in series:
        for k in range(20):
            outcome = Outcome.OK if k < 17 else outcomes[k % len(outcomes)]
            sink.on_result(ProbeResult(
                network=n, target=t, job=j, model="m", outcome=outcome,
                started_at=time.time(), ttft_s=rng.lognormvariate(-1, 1),
                duration_s=rng.lognormvariate(1, 0.5), tokens_per_s=rng.uniform(5, 150),
                max_gap_s=rng.uniform(0.01, 1), output_tokens=256))
    return sink


def _serve(networks: int, jobs: int, port_q: mp.Queue) -> None:
    import asyncio

    from monitor.web.server import bound_port, start_server

    sink = populated_sink(networks, jobs)

    async def main() -> None:
        runner = await start_server("127.0.0.1", 0, registry=sink.registry)
        port_q.put(bound_port(runner))
        await asyncio.Event().wait()

    asyncio.run(main())


def scrape_times(networks: int, jobs: int, scrapes: int) -> dict[str, object]:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(networks, jobs, q), daemon=True)
    proc.start()
    try:
        port = q.get(timeout=60)
        url = f"http://127.0.0.1:{port}/metrics"
        out: dict[str, object] = {}
        for fmt, accept in (("text", "text/plain"), ("openmetrics", OPENMETRICS)):
            times, size, body = [], 0, b""
            for _ in range(scrapes):
                req = urllib.request.Request(url, headers={"Accept": accept})
                t0 = time.perf_counter()
                with urllib.request.urlopen(req, timeout=30) as r:
                    body = r.read()
                times.append(time.perf_counter() - t0)
                size = len(body)
            samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
            out[fmt] = (common.quantile(times, 0.5), max(times), size, samples)
        out["rss_mb"] = common.rss_mb(proc.pid)
        return out
    finally:
        proc.kill()
        proc.join()


_PREFIXES: dict[tuple, list[str]] = {}


def prototype_text(registry) -> bytes:  # type: ignore[no-untyped-def]
    """A sketch of what would meet the target (not the exporter's code): the same text
    format, but walking each labelled metric's children directly and caching every sample's
    `name{labels} ` prefix, so a scrape only formats numbers. Unlabelled collectors
    (process, platform, SLA) go through prometheus_client as usual."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.utils import floatToGoString

    out: list[str] = []
    rest = CollectorRegistry(auto_describe=False)
    for collector in list(registry._collector_to_names):
        if not (isinstance(collector, MetricWrapperBase) and collector._labelnames):
            rest.register(collector)
            continue
        name, kind = collector._name, collector._type
        full = name + ("_total" if kind == "counter" else "")
        out.append(f"# HELP {full} {collector._documentation}\n# TYPE {full} {kind}\n")
        names = collector._labelnames
        for values, child in list(collector._metrics.items()):
            samples = list(child._samples())
            key = (name, values)
            prefixes = _PREFIXES.get(key)
            if prefixes is None or len(prefixes) != len(samples):
                base = list(zip(names, values, strict=True))
                prefixes = []
                for suffix, extra, *_ in samples:
                    labels = ",".join(f'{k}="{_escape(v)}"'
                                      for k, v in sorted(base + list(extra.items())))
                    prefixes.append(f"{name}{suffix}{{{labels}}} ")
                _PREFIXES[key] = prefixes
            for prefix, sample in zip(prefixes, samples, strict=True):
                out.append(prefix + floatToGoString(sample[2]) + "\n")
    return "".join(out).encode() + generate_latest(rest)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def render_times(networks: int, jobs: int, repeats: int = 5) -> tuple[float, float, bool]:
    """In-process: generate_latest vs the prototype (second and later renders), and whether
    both give the same samples."""
    from prometheus_client import generate_latest

    sink = populated_sink(networks, jobs)
    r = sink.registry
    prototype_text(r)  # fill the prefix cache, as the first scrape would
    t_std, t_proto = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a = generate_latest(r)
        t_std.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = prototype_text(r)
        t_proto.append(time.perf_counter() - t0)

    def samples(body: bytes) -> set[bytes]:
        return {ln for ln in body.splitlines()
                if ln and not ln.startswith(b"#") and not ln.startswith(b"process_")}

    return min(t_std), min(t_proto), samples(a) == samples(b)


def write_config(path: str, sims: list[common.SimProcess], targets: int, interval: float,
                 port: int) -> None:
    lines = ["location: bench", f"concurrency: {targets}", f"listen: 127.0.0.1:{port}",
             "networks:"]
    for i in range(targets):
        sim = sims[i % len(sims)]
        lines += [f"  - name: net-{i:04d}", "    kind: openai",
                  f"    base_url: {sim.base_url}",
                  "    models: {small: sim-llama-3.1-8b-instruct}",
                  "    jobs: [chat-short-v1]", f"    interval: {interval:g}s"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def wait_listening(port: int, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"monitor exited: {proc.stderr.read()[-800:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"the monitor never listened on 127.0.0.1:{port}")


def monitor_rss(targets: int, sims_n: int, interval: float, duration: float
                ) -> dict[str, float]:
    sims = [common.start_sim("datacenter", seed=i, cores=[1], p_http_5xx=0.0, ttft_s=0.2,
                             tokens_per_s=50.0) for i in range(sims_n)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "bench.yaml")
            port = common.free_port()
            write_config(cfg, sims, targets, interval, port)
            proc = subprocess.Popen(
                ["taskset", "-c", "0", sys.executable, "-m", "monitor.cli", "run", "-c", cfg,
                 "--db", os.path.join(tmp, "bench.db")],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                t0 = time.perf_counter()
                rss, cpu0 = [], None
                while time.perf_counter() - t0 < duration:
                    time.sleep(1.0)
                    if proc.poll() is not None:
                        raise RuntimeError(f"monitor exited: {proc.stderr.read()[-800:]}")
                    rss.append(common.rss_mb(proc.pid))
                    if cpu0 is None and time.perf_counter() - t0 > interval:
                        cpu0, c_t0 = common.proc_cpu_s(proc.pid), time.perf_counter()
                cpu = (common.proc_cpu_s(proc.pid) - cpu0) / (time.perf_counter() - c_t0) \
                    if cpu0 is not None else float("nan")
                wait_listening(port, proc)  # a loaded machine may start the monitor late
                t_s = time.perf_counter()
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                              timeout=30).read().decode()
                scrape_s = time.perf_counter() - t_s
                runs = sum(float(m.group(1)) for m in re.finditer(
                    r"^depin_probe_runs_total\{[^}]*\} ([\d.e+]+)$", body, re.M))
                peak = common.peak_rss_mb(proc.pid)
            finally:
                proc.terminate()
                proc.wait(30)
    finally:
        for s in sims:
            s.stop()
    return {"rss_last": rss[-1], "rss_max": max(rss), "peak": peak, "runs": runs,
            "cpu": cpu, "scrape_s": scrape_s}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", default="100", help="networks per registry (comma list)")
    p.add_argument("--jobs", type=int, default=5, help="jobs per network (max 5)")
    p.add_argument("--scrapes", type=int, default=10, help="scrapes per format")
    p.add_argument("--targets", type=int, default=1000, help="targets for the RSS run")
    p.add_argument("--sims", type=int, default=4, help="simulator processes for the RSS run")
    p.add_argument("--interval", type=float, default=10.0, help="probe interval (s)")
    p.add_argument("--duration", type=float, default=40.0, help="RSS run length (s)")
    p.add_argument("--quick", action="store_true", help="smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.networks, args.scrapes, args.targets, args.sims = "5", 3, 20, 1
        args.interval, args.duration = 2.0, 2.0
    print(f"# exporter: {common.machine()}")
    print(f"# command: {' '.join(['python', *sys.argv])}")
    rows = []
    for n in (int(x) for x in args.networks.split(",")):
        s = scrape_times(n, args.jobs, args.scrapes)
        for fmt in ("text", "openmetrics"):
            med, mx, size, samples = s[fmt]  # type: ignore[misc]
            rows.append([f"{n} x {args.jobs}", fmt, f"{samples:,}", f"{size / 1024:,.0f}",
                         common.ms(med), common.ms(mx), f"{s['rss_mb']:.0f}"])
    print("## /metrics scrape (one monitor process's registry)")
    print(common.table(["networks x jobs", "format", "samples", "body KiB", "scrape p50 ms",
                        "scrape max ms", "server RSS MB"], rows))
    n0 = int(args.networks.split(",")[0])
    std, proto, same = render_times(n0, args.jobs)
    print()
    print(f"## rendering {n0} x {args.jobs} in-process: prometheus_client generate_latest "
          f"{std * 1e3:.0f} ms; prototype with cached label prefixes {proto * 1e3:.0f} ms "
          f"(same samples: {same})")
    r = monitor_rss(args.targets, args.sims, args.interval, args.duration)
    print()
    print(f"## `depin-monitor run` probing {args.targets:,} targets (chat-short-v1 every "
          f"{args.interval:g}s, {args.sims} simulator processes) for {args.duration:g}s")
    print(common.table(
        ["targets", "runs done", "RSS now MB", "RSS max sampled MB", "VmHWM peak MB",
         "monitor CPU", "scrape ms"],
        [[f"{args.targets:,}", f"{r['runs']:,.0f}", f"{r['rss_last']:.0f}",
          f"{r['rss_max']:.0f}", f"{r['peak']:.0f}", f"{r['cpu'] * 100:.0f}%",
          common.ms(r["scrape_s"])]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
