"""Shared helpers for the benchmarks: simulator subprocesses, CPU/RSS readings from /proc,
an event-loop lag sampler, ground-truth fetching, quantiles and the machine description.

Not a benchmark itself. Every benchmark imports it as `common` (scripts run from anywhere:
`python benchmarks/<name>.py` puts benchmarks/ first on sys.path).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.runtime.loopwatch import LoopWatch


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the `finally:`s that stop child processes


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _terminated)

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
HOST = "127.0.0.1"


# -- the machine -------------------------------------------------------------------------


def machine() -> str:
    """`nproc`, CPU model, Python version and the date: the header of every result."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"nproc={os.cpu_count()} cpu={model!r} python={platform.python_version()} "
            f"date={now} loadavg={loadavg()}")


def loadavg() -> str:
    """1-minute load average: other work on the machine (tests, builds) distorts figures."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def pin(cores: Iterable[int]) -> set[int]:
    """Pin this process to `cores` (those that exist); returns the set actually used."""
    wanted = {c for c in cores if c < (os.cpu_count() or 1)}
    if wanted and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, wanted)
        return wanted
    return set(range(os.cpu_count() or 1))


# -- /proc readings ----------------------------------------------------------------------


def proc_cpu_s(pid: int | None = None) -> float:
    """user + system CPU seconds of a process (self by default), from /proc/<pid>/stat."""
    if pid is None:
        return time.process_time()  # ns resolution; /proc/<pid>/stat counts 10 ms ticks
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or 'self'}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def peak_rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or 'self'}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- statistics --------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default); nan for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def ms(x: float) -> str:
    return "n/a" if x != x else f"{x * 1e3:.2f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-markdown table (printed as is; RESULTS.md quotes it)."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in rows]
    return "\n".join([line, sep, *body])


def tune_gc(mode: str) -> None:
    """`tuned`: what a long-running monitor should do once started (RESULTS.md): move every
    object alive after start-up out of the collector's sight (gc.freeze) and collect the young
    generation 70x less often, so no full collection walks a thousand streams' objects
    while they are being timed. `default`: Python as it starts."""
    import gc

    if mode == "tuned":
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)


# -- the event loop watching itself ------------------------------------------------------


class LagSampler(LoopWatch):
    """The monitor's own LoopWatch, waking every 5 ms and keeping every lag sample for
    percentiles."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.lags: list[float] = []
        super().__init__(interval_s, on_sample=[self.lags.append])

    def start(self) -> LagSampler:
        self.lags.clear()
        super().start()
        return self

    def p(self, q: float) -> float:
        return quantile(self.lags, q)


# -- reference networks in their own processes -------------------------------------------


@dataclass
class SimProcess:
    """`depin-monitor simulate` in a child process (its CPU never counts as the prober's)."""

    proc: subprocess.Popen
    url: str

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_sim(profile: str = "datacenter", *, seed: int = 0, cores: Iterable[int] | None = None,
              gc_mode: str = "default", **overrides: object) -> SimProcess:
    """Start one reference network as `depin-monitor simulate` on a free loopback port
    (`gc_mode="tuned"`: the same command with the collector tuned as tune_gc does)."""
    argv = ["simulate", "--profile", profile, "--seed", str(seed), "--host", HOST,
            "--port", "0"]
    for key, value in overrides.items():
        argv += ["--set", f"{key}={value}"]
    if gc_mode == "tuned":
        cmd = [sys.executable, "-c", "import gc, sys; gc.freeze(); gc.set_threshold(50000, 50, "
               "100); from monitor.cli import main; sys.exit(main(sys.argv[1:]))", *argv]
    else:
        cmd = [sys.executable, "-m", "monitor.cli", *argv]
    if cores is not None and os.cpu_count() and os.cpu_count() > 1:
        mask = ",".join(str(c) for c in cores if c < os.cpu_count())
        if mask:
            cmd = ["taskset", "-c", mask, *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"at (http://[\d.]+:\d+)/v1", line)
    if not m:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"simulator did not start: {line!r} {err[-500:]}")
    return SimProcess(proc, m.group(1))


async def fetch_truths(url: str, request_ids: Sequence[str], parallel: int = 32
                       ) -> dict[str, dict]:
    """The simulator's ground truth for each request id (after the runs: never during)."""
    import aiohttp

    out: dict[str, dict] = {}
    sem = asyncio.Semaphore(parallel)
    # a connection per request: a simulator with keep_alive=false closes each after answering
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        async def one(rid: str) -> None:
            async with sem, s.get(f"{url}/sim/truth/{rid}") as r:
                if r.status == 200:
                    out[rid] = await r.json()

        await asyncio.gather(*(one(r) for r in request_ids))
    return out


def steady_profile(ttft_s: float = 0.1, ttft_sigma: float = 0.3, tokens_per_s: float = 50.0,
                   decode_sigma: float = 0.1) -> dict[str, object]:
    """Overrides of `datacenter` for a fault-free network with varied latencies."""
    return {"ttft_s": ttft_s, "ttft_sigma": ttft_sigma, "tokens_per_s": tokens_per_s,
            "decode_sigma": decode_sigma, "p_http_5xx": 0.0}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def elapsed(start: float) -> float:
    return time.perf_counter() - start
