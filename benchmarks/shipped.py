"""The monitor as shipped, for the benchmarks: `depin-monitor run -c CONFIG --db FILE` in its own
process (its scheduler, store writer, /metrics exporter and garbage-collector settings), scraped
over HTTP as Prometheus scrapes it, stopped with SIGTERM as an operator stops it, and its
results read back from the store it wrote.

Not a benchmark itself: accuracy.py, peer.py, exporter.py and growth.py drive it.

    with Monitor.start(config_text, cores=[0]) as mon:
        mon.wait_ready()
        seconds, body = mon.scrape()
        ...
    rows = mon.rows(since=t0)          # after stop(): every run it stored
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import common

# What Prometheus 2.x sends (so the monitor answers in OpenMetrics, as it does to Prometheus)
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
TEXT_ACCEPT = "text/plain"


def _untuned(*tunings: str) -> str:
    """`run` as shipped but for some of its start-up tunings (monitor.runtime.tuning.tune_gc,
    tune_threads): Python's defaults instead, to show what each buys."""
    patches = "".join(f"tuning.{t} = lambda: None; " for t in tunings)
    return ("import sys; import monitor.runtime.tuning as tuning; " + patches
            + "from monitor.cli import main; sys.exit(main(sys.argv[1:]))")

COLUMNS = ("network", "target", "job", "outcome", "started_at", "scheduled_at", "ttft_s",
           "ttfb_s", "duration_s", "connect_s", "tokens_per_s", "output_tokens", "lagged",
           "details", "error")


@dataclass
class Net:
    """One network of a generated config."""

    name: str
    base_url: str
    kind: str = "openai"
    jobs: Sequence[str] = ("chat-short-v1",)
    interval_s: float = 10.0
    models: dict[str, str] = field(default_factory=lambda: {
        "small": "sim-llama-3.1-8b-instruct"})
    sla: str | None = "enterprise"
    concurrency: int = 1


def config_yaml(nets: Iterable[Net], *, port: int, concurrency: int,
                jobs: Sequence[dict[str, Any]] = (), location: str = "bench") -> str:
    """A monitor config (YAML; JSON is YAML) for these networks, serving on 127.0.0.1:port."""
    doc: dict[str, Any] = {
        "location": location, "concurrency": concurrency, "listen": f"127.0.0.1:{port}",
        "jobs": list(jobs),
        "networks": [{k: v for k, v in {
            "name": n.name, "kind": n.kind, "base_url": n.base_url, "models": n.models,
            "jobs": list(n.jobs), "interval": f"{n.interval_s:g}s", "sla": n.sla,
            "concurrency": n.concurrency}.items() if v is not None} for n in nets],
    }
    return json.dumps(doc, indent=1)


@dataclass
class Monitor:
    """A running `depin-monitor run`."""

    proc: subprocess.Popen[str]
    port: int
    db: str
    workdir: tempfile.TemporaryDirectory[str]
    started: float  # unix time just before it was started

    @classmethod
    def start(cls, config: str, *, cores: Iterable[int] | None = (0,), gc: str = "shipped",
              threads: str = "shipped", port: int | None = None, db: str | None = None
              ) -> Monitor:
        """Write `config` (its listen port is `port`, see config_yaml) and start `run` on it,
        pinned to `cores`; `gc="default"` starts it without its collector tuning,
        `threads="default"` with CPython's 5 ms switch interval."""
        workdir = tempfile.TemporaryDirectory(prefix="depin-bench-")
        path = os.path.join(workdir.name, "monitor.yaml")
        with open(path, "w") as f:
            f.write(config)
        db = db or os.path.join(workdir.name, "results.db")
        if port is None:
            port = int(json.loads(config)["listen"].rsplit(":", 1)[1])
        untuned = [name for name, setting in (("tune_gc", gc), ("tune_threads", threads))
                   if setting == "default"]
        python = [sys.executable, "-c", _untuned(*untuned)] if untuned else \
            [sys.executable, "-m", "monitor.cli"]
        cmd = [*python, "run", "-c", path, "--db", db]
        if cores is not None and (os.cpu_count() or 1) > 1:
            cmd = ["taskset", "-c", ",".join(str(c) for c in cores), *cmd]
        started = time.time()
        # its log goes to a file: a pipe nobody reads fills up (64 KiB) and then blocks the
        # monitor's every log line, and with it the event loop
        log = open(os.path.join(workdir.name, "monitor.log"), "w")  # noqa: SIM115
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
        log.close()
        return cls(proc, port, db, workdir, started)

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str = "/metrics") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout_s: float = 120.0) -> float:
        """Until /readyz answers 200; seconds it took."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the monitor exited: {self.stderr_tail()}")
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(self.url("/readyz"), timeout=5) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
            time.sleep(0.1)
        raise TimeoutError(f"the monitor was not ready in {timeout_s:g} s")

    def scrape(self, accept: str = PROMETHEUS_ACCEPT) -> tuple[float, bytes]:
        """One /metrics scrape: (seconds from request to the last byte, body)."""
        req = urllib.request.Request(self.url(), headers={"Accept": accept})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=60) as r:
            body = r.read()
        return time.perf_counter() - t0, body

    def cpu_s(self) -> float:
        return common.proc_cpu_s(self.pid)

    def rss_mb(self) -> float:
        return common.rss_mb(self.pid)

    def peak_rss_mb(self) -> float:
        return common.peak_rss_mb(self.pid)

    def stderr_tail(self) -> str:
        """The end of the monitor's log."""
        try:
            with open(os.path.join(self.workdir.name, "monitor.log")) as f:
                return f.read()[-1500:]
        except OSError:
            return ""

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM (runs in flight get the grace period, the store is flushed), then wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rows(self, since: float = 0.0, until: float = float("inf")) -> list[dict[str, Any]]:
        """Every run the monitor stored that started in [since, until) (unix seconds)."""
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as conn:
            conn.row_factory = sqlite3.Row
            cur = conn.execute(
                f"select {', '.join(COLUMNS)} from probe_results "
                "where started_at >= ? and started_at < ? order by started_at", (since, until))
            out = []
            for row in cur:
                d = dict(row)
                d["details"] = json.loads(d["details"] or "{}")
                out.append(d)
            return out

    def cleanup(self) -> None:
        self.stop()
        self.workdir.cleanup()


def metric_values(body: bytes, name: str) -> Iterator[tuple[str, float]]:
    """(label text, value) of every sample named `name` in an exposition body."""
    prefix = name.encode()
    for line in body.splitlines():
        if line.startswith(prefix) and line[len(prefix):len(prefix) + 1] in (b"{", b" "):
            head, _, value = line.rpartition(b" ")
            yield head[len(prefix):].decode(), float(value)


def in_flight(rows: Sequence[dict[str, Any]], since: float, until: float) -> tuple[float, int]:
    """(mean, max) runs in flight over [since, until), from each run's start and duration."""
    events = []
    for r in rows:
        start = r["started_at"]
        end = start + (r["duration_s"] or 0.0) + (r["connect_s"] or 0.0)
        if end > since and start < until:
            events += [(max(start, since), 1), (min(end, until), -1)]
    events.sort()
    now = peak = 0
    area, last = 0.0, since
    for t, step in events:
        area += now * (t - last)
        now += step
        peak = max(peak, now)
        last = t
    return area / (until - since), peak


def wait_for(seconds: float, then: float | None = None) -> None:
    """Sleep until `then` (perf_counter) if given, else for `seconds`."""
    delay = seconds if then is None else then - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def histogram_delta_quantile(before: bytes, after: bytes, name: str, q: float) -> float:
    """histogram_quantile over what a histogram gained between two scrapes (upper bound of
    the bucket holding the quantile, a conservative reading; nan if nothing was observed)."""
    def buckets(body: bytes) -> dict[float, float]:
        out = {}
        for labels, value in metric_values(body, name + "_bucket"):
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            out[float(le.replace("+Inf", "inf"))] = value
        return out

    b0, b1 = buckets(before), buckets(after)
    gained = sorted((le, count - b0.get(le, 0.0)) for le, count in b1.items())
    if not gained or gained[-1][1] <= 0:
        return float("nan")
    rank = q * gained[-1][1]
    return next(le for le, count in gained if count >= rank)
