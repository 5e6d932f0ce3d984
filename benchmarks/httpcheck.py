"""HTTP checks: where the CPU of one check goes (peer.py section 2 compares the total with
blackbox_exporter's).

This process (core 0) checks the simulator's /health (`depin-monitor simulate`, core 1) on one
kept-alive connection, the same code paths as `run` at each layer, and reports the CPU per
check (process time: this process only) of:
- a bare aiohttp `ClientSession.get` and body read (the floor of any aiohttp prober);
- the `http` probe kind (`probes.http.run`: request tracing, the job's check, the result);
- the scheduler dispatching it, with the sinks `run` feeds (MetricsSink, Store and its writer
  thread), every --gap seconds only;
each back to back and with --gap seconds of idle between checks (peer.py's rate: 0.1 s), and
the CPU of waking from that idle alone (an `asyncio.sleep`). A check that runs every 0.1 s
costs its code on cold caches, plus the wake-up: the difference between the two columns.

    python benchmarks/httpcheck.py            # ~1 min
    python benchmarks/httpcheck.py --quick    # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import common

from monitor.core.jobs import get_job
from monitor.core.target import Target
from monitor.exporter.metrics import MetricsSink, drop_created_series
from monitor.runtime.scheduler import Scheduler
from monitor.storage.store import Store
from probes import http
from probes.session import SessionPool


async def per_check(check: Callable[[], Awaitable[object]], n: int, gap: float) -> float:
    """CPU seconds per check over `n` checks, `gap` seconds of idle after each."""
    for _ in range(min(n, 20)):  # warm: connection open, caches filled
        await check()
    c0 = time.process_time()
    for _ in range(n):
        await check()
        if gap:
            await asyncio.sleep(gap)
    return (time.process_time() - c0) / n


class Count:
    """A sink that wakes the harness when the scheduler has handed it `until` results. The
    harness waits on it instead of polling: a poll every 0.05 s would wake this process twice
    a check, and count those wake-ups as the scheduler's."""

    def __init__(self) -> None:
        self.results, self.until = 0, 0
        self.reached = asyncio.Event()

    def on_result(self, result: object) -> None:
        self.results += 1
        if self.results >= self.until:
            self.reached.set()

    async def wait(self, until: int) -> None:
        self.until = until
        self.reached.clear()
        if self.results < until:
            await self.reached.wait()


async def scheduled(url: str, n: int, gap: float, sinks: bool) -> float:
    """CPU per check of the scheduler running the http kind every `gap` s, with or without
    the sinks `run` feeds; the store's writer thread is in this process's CPU too."""
    target = Target(network="gw", name="health", kind="http", base_url=url, model="-")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "checks.db") if sinks else None
        out = [MetricsSink(process_metrics=False), store] if store is not None else []
        count = Count()
        sched = Scheduler([(target, get_job("health-v1"), gap)], sinks=[*out, count],
                          jitter_s=0.0, concurrency=1)
        task = asyncio.create_task(sched.run())
        await count.wait(20)
        c0, r0 = time.process_time(), count.results
        await count.wait(r0 + n)
        cpu, runs = time.process_time() - c0, count.results - r0
        sched.stop()
        await task
        if store is not None:
            store.close()
    return cpu / runs


async def measure(url: str, n: int, gap: float) -> list[list[object]]:
    rows: list[list[object]] = []
    target = Target(network="gw", name="health", kind="http", base_url=url, model="-")
    job = get_job("health-v1")
    pool = SessionPool()
    session = pool.for_target(target)
    try:
        async with aiohttp.ClientSession() as client:

            async def bare() -> None:
                async with client.get(url) as response:
                    await response.read()

            async def kind() -> None:
                await http.run(target, job, session)

            for name, check in (("bare aiohttp GET", bare), ("http kind", kind)):
                rows.append([name, f"{await per_check(check, n, 0.0) * 1e6:.0f}",
                             f"{await per_check(check, n, gap) * 1e6:.0f}"])
    finally:
        await pool.close()
    # the scheduler only at the gap: at a tiny interval most of its ticks find the previous
    # run in flight and are skipped, which is not a check's cost
    for name, sinks in (("scheduler + http kind", False),
                        ("scheduler + http kind + MetricsSink + Store", True)):
        rows.append([name, "-",
                     f"{await scheduled(url, max(n // 3, 10), gap, sinks) * 1e6:.0f}"])

    async def nothing() -> None:
        return None

    rows.append([f"waking from {gap:g} s of idle alone (asyncio.sleep)", "-",
                 f"{await per_check(nothing, max(n // 3, 10), gap) * 1e6:.0f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checks", type=int, default=300, help="checks per row")
    p.add_argument("--gap", type=float, default=0.1, help="idle between checks (s)")
    p.add_argument("--quick", action="store_true", help="smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.checks, args.gap = 30, 0.02
    drop_created_series()
    common.pin([0])
    print(f"# httpcheck: {common.machine()}")
    print(f"# command: {' '.join(['python', *sys.argv])}")
    sim = common.start_sim("datacenter", cores=[1])
    try:
        rows = asyncio.run(measure(sim.url + "/health", args.checks, args.gap))
    finally:
        sim.stop()
    print(f"## CPU per HTTP check on one kept-alive connection (this process, core 0; "
          f"{args.checks} checks a row)")
    print(common.table(["what runs", "us/check back to back", f"us/check {args.gap:g} s apart"],
                       rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
