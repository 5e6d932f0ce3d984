"""Soak: `depin-monitor run` for a long time at a high run rate against flaky reference
networks and transport faults, watching its memory, file descriptors and every run.

Networks (simulator processes on core 1, the fault proxies of tests/faultproxy.py in this
process): `datacenter`, `depin-steady` and `depin-flaky` as they are, and behind fault proxies
`flapping` (20 s up, 5 s down: connections refused and reset), `slow-link` (50 ms each way,
4 KiB/s), `resetting` (an RST after 600 bytes of every answer) and `blackhole` (never answers:
each run times out). Each runs chat-short-v1 and json-v1 every --interval s. The monitor runs
as its own process, pinned to core 0, with `-v` logs.

From its first answer on /metrics (a busy machine starts it late), every --sample s: its RSS
(/proc/PID/statm), open fds (/proc/PID/fd) and runs so far (/metrics). At the end it is stopped
with SIGTERM; every run it counted (its final `total runs=` log line) must be a row of its
store. Growth per run is the least-squares slope of RSS against runs after the warm-up (the
first sixth of the run, at least 60 s).

    python benchmarks/soak.py --minutes 30            # the figure in RESULTS.md
    python benchmarks/soak.py --minutes 30 --monitor-src /tmp/before   # another checkout's
    python benchmarks/soak.py --quick                 # smoke: ~20 s
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import common

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(1, str(ROOT))  # tests.faultproxy, when run as `python benchmarks/soak.py`

from tests.faultproxy import FaultProxy, Faults  # noqa: E402

JOBS = ("chat-short-v1", "json-v1")
# name -> (simulator profile, faults of the proxy in front of it; None: probed directly)
NETWORKS: dict[str, tuple[str, Faults | None]] = {
    "datacenter": ("datacenter", None),
    "depin-steady": ("depin-steady", None),
    "depin-flaky": ("depin-flaky", None),
    "flapping": ("datacenter", Faults(flap=(20.0, 5.0))),
    "slow-link": ("depin-steady", Faults(latency_s=0.05, bandwidth_bps=4096)),
    "resetting": ("datacenter", Faults(reset_after_bytes=600)),
    "blackhole": ("datacenter", Faults(blackhole=True)),
}


@dataclass
class Sample:
    t_s: float
    runs: float
    rss_mb: float
    fds: int
    load: str  # the machine's 1-minute load average then


class Proxies:
    """The fault proxies, served by an event loop in a thread of this process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxies: list[FaultProxy] = []

    def start(self, upstream_url: str, faults: Faults) -> FaultProxy:
        host, port = upstream_url.removeprefix("http://").rsplit(":", 1)
        proxy = asyncio.run_coroutine_threadsafe(
            FaultProxy.start(host, int(port), faults), self.loop).result(10)
        self.proxies.append(proxy)
        return proxy

    def stop(self) -> None:
        for proxy in self.proxies:
            asyncio.run_coroutine_threadsafe(proxy.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def write_config(path: Path, bases: dict[str, str], interval_s: float, port: int) -> None:
    lines = ["location: soak", f"listen: 127.0.0.1:{port}", "networks:"]
    for name, base in bases.items():
        lines += [f"  - name: {name}", "    kind: openai", f"    base_url: {base}/v1",
                  "    models: {small: sim-llama-3.1-8b-instruct}",
                  f"    jobs: [{', '.join(JOBS)}]", f"    interval: {interval_s:g}s",
                  "    concurrency: 8"]
    path.write_text("\n".join(lines) + "\n")


def scrape_runs(port: int) -> float | None:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    except OSError:
        return None
    return sum(float(m.group(1)) for m in re.finditer(
        rb"^depin_probe_runs_total\{[^}]*\} ([\d.e+]+)$", body, re.M))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_until_serving(proc: subprocess.Popen[str], port: int, log_tail: Sequence[str],
                       timeout_s: float = 180.0) -> float:
    """Runs so far, as soon as the monitor first answers /metrics."""
    deadline = time.perf_counter() + timeout_s
    while (runs := scrape_runs(port)) is None:
        if proc.poll() is not None:
            raise RuntimeError("monitor exited:\n" + "".join(log_tail[-20:]))
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the monitor did not answer /metrics in {timeout_s:g} s")
        time.sleep(0.2)
    return runs


def slope_kb_per_run(samples: Sequence[Sample]) -> float:
    """Least-squares slope of RSS (KB) against runs."""
    n = len(samples)
    if n < 2:
        return float("nan")
    mx = sum(s.runs for s in samples) / n
    my = sum(s.rss_mb for s in samples) / n
    sxx = sum((s.runs - mx) ** 2 for s in samples)
    sxy = sum((s.runs - mx) * (s.rss_mb - my) for s in samples)
    return sxy / sxx * 1024 if sxx else float("nan")


def soak(minutes: float, interval_s: float, sample_s: float, monitor_src: Path,
         memwatch: list[str] | None = None, scrape: bool = True
         ) -> tuple[list[Sample], int, int, str]:
    """Run the monitor (inside benchmarks/memwatch.py with these arguments if `memwatch`);
    (samples, runs it counted, rows in its store, its last log lines). Without `scrape`,
    /metrics is never read: runs come from its per-minute summary lines."""
    sims = {profile: common.start_sim(profile, seed=i, cores=[1])
            for i, profile in enumerate(sorted({p for p, _ in NETWORKS.values()}))}
    proxies = Proxies()
    samples: list[Sample] = []
    try:
        bases = {}
        for name, (profile, faults) in NETWORKS.items():
            url = sims[profile].url
            bases[name] = url if faults is None else proxies.start(url, faults).url
        with tempfile.TemporaryDirectory() as tmp:
            cfg, db = Path(tmp) / "soak.yaml", Path(tmp) / "soak.db"
            port = common.free_port()
            write_config(cfg, bases, interval_s, port)
            env = {**os.environ, "PYTHONPATH": str(monitor_src)}
            main = (["-m", "monitor.cli"] if memwatch is None else
                    [str(Path(__file__).with_name("memwatch.py")), *memwatch, "--"])
            proc = subprocess.Popen(
                ["taskset", "-c", "0", sys.executable, *main, "-v", "run", "-c",
                 str(cfg), "--db", str(db)], cwd=monitor_src, env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            log_tail: list[str] = []
            reader = threading.Thread(target=_tail, args=(proc, log_tail), daemon=True)
            reader.start()
            try:
                t0 = time.perf_counter()
                if scrape:  # the clock starts when it answers: a busy machine starts it late
                    runs = wait_until_serving(proc, port, log_tail)
                    t0 = time.perf_counter()
                    samples.append(Sample(0.0, runs, common.rss_mb(proc.pid),
                                          open_fds(proc.pid), common.loadavg()))
                while (elapsed := time.perf_counter() - t0) < minutes * 60:
                    time.sleep(min(sample_s, max(minutes * 60 - elapsed, 0.1)))
                    if proc.poll() is not None:
                        raise RuntimeError("monitor exited:\n" + "".join(log_tail[-20:]))
                    runs = scrape_runs(port) if scrape else _summed_runs(log_tail)
                    if runs is not None:
                        samples.append(Sample(time.perf_counter() - t0, runs,
                                              common.rss_mb(proc.pid), open_fds(proc.pid),
                                              common.loadavg()))
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
                reader.join(10)
            counted = _total_runs(log_tail)
            with sqlite3.connect(db) as conn:
                stored = int(conn.execute("select count(*) from probe_results").fetchone()[0])
    finally:
        proxies.stop()
        for sim in sims.values():
            sim.stop()
    return samples, counted, stored, "".join(log_tail[-3:])


def _tail(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stderr is not None
    summed = 0
    for line in proc.stderr:
        if m := re.search(r"last minute: runs=(\d+)", line):
            summed += int(m.group(1))
            line = f"{line.rstrip()} summed={summed}\n"
        lines.append(line)
        del lines[:-200]


def _summed_runs(lines: Sequence[str]) -> float | None:
    """Runs so far from the per-minute summary lines (to the last whole minute)."""
    for line in reversed(lines):
        if m := re.search(r" summed=(\d+)$", line.rstrip()):
            return float(m.group(1))
    return None


def _total_runs(lines: Sequence[str]) -> int:
    for line in reversed(lines):
        m = re.search(r"\btotal runs=(\d+)", line)
        if m:
            return int(m.group(1))
    return -1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="how long the monitor runs")
    p.add_argument("--interval", type=float, default=1.0, help="each schedule's interval (s)")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--monitor-src", type=Path, default=ROOT,
                   help="checkout whose monitor runs (default: this one), e.g. the commit "
                        "before a fix, for a before/after figure")
    p.add_argument("--no-scrape", action="store_true",
                   help="never read /metrics (runs from the per-minute log lines)")
    p.add_argument("--memwatch", metavar="OUT.jsonl",
                   help="run the monitor inside benchmarks/memwatch.py, which writes where "
                        "its memory is every --sample s into this file")
    p.add_argument("--trace", type=int, default=0, metavar="N",
                   help="with --memwatch: tracemalloc with N frames, diffed from warm-up on")
    p.add_argument("--quick", action="store_true", help="smoke run (~20 s)")
    args = p.parse_args(argv)
    if args.quick:
        args.minutes, args.sample = 0.3, 3.0
    print(f"# soak: {common.machine()}")
    print(f"# command: {' '.join(['python', *sys.argv])}")
    print(f"# monitor from: {args.monitor_src}")
    warm_s = max(args.minutes * 60 / 6, 60.0)
    memwatch = None if args.memwatch is None else [
        str(Path(args.memwatch).resolve()), f"{args.sample:g}", "--trace", str(args.trace),
        "--from", f"{warm_s if not args.quick else 0:g}"]
    samples, counted, stored, last = soak(args.minutes, args.interval, args.sample,
                                          args.monitor_src.resolve(), memwatch,
                                          scrape=not args.no_scrape)
    if not samples:
        print("no samples: the monitor never answered /metrics\n" + last)
        return 1
    warm_s = warm_s if not args.quick else samples[0].t_s
    warm = [s for s in samples if s.t_s >= warm_s] or samples[-1:]
    shown = samples[::max(1, len(samples) // 12)]
    if shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    print(f"## samples (every {args.sample:g} s; {len(NETWORKS)} networks x {len(JOBS)} jobs "
          f"every {args.interval:g} s)")
    print(common.table(["minute", "runs", "RSS MB", "open fds", "load"],
                       [[f"{s.t_s / 60:.1f}", f"{s.runs:,.0f}", f"{s.rss_mb:.1f}", s.fds, s.load]
                        for s in shown]))
    first, end = warm[0], samples[-1]
    rate = (end.runs - samples[0].runs) / max(end.t_s - samples[0].t_s, 1e-9)
    print()
    print(f"## summary (warm from minute {first.t_s / 60:.1f})")
    second_half = [s for s in samples if s.t_s >= end.t_s / 2]
    print(common.table(
        ["minutes", "runs/s", "runs counted", "rows stored", "lost", "RSS warm MB",
         "RSS end MB", "KB/run after warm-up", "KB/run 2nd half", "fds min-max after warm-up"],
        [[f"{end.t_s / 60:.1f}", f"{rate:.1f}", f"{counted:,}", f"{stored:,}",
          f"{counted - stored:,}" if counted >= 0 else "?", f"{first.rss_mb:.1f}",
          f"{end.rss_mb:.1f}", f"{slope_kb_per_run(warm):.3f}",
          f"{slope_kb_per_run(second_half):.3f}",
          f"{min(s.fds for s in warm)}-{max(s.fds for s in warm)}"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
