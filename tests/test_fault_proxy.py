"""Transport faults between the prober and a reference network (tests/faultproxy.py on
127.0.0.1): latency, a bandwidth limit, a reset after N bytes, a blackhole, a slow close and
flapping each give the outcome and the timings they should; a thousand targets failing at
once leave the monitor inside its fd, memory and concurrency bounds, and it recovers by itself
when they come back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.core.jobs import Job
from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from monitor.runtime.agent import monitor
from monitor.runtime.scheduler import Scheduler
from monitor.simulator.app import RunningNetwork
from monitor.storage.store import Store
from probes import openai
from probes.session import SessionPool
from tests.conftest import StartSim, quick_job
from tests.faultproxy import FaultProxy, Faults

JOB = quick_job(deadline_s=3.0, stall_s=2.0)


@pytest.fixture
async def net(start_sim: StartSim) -> RunningNetwork:
    return await start_sim()  # 50 ms to the first token, 200 tokens/s, no faults of its own


@pytest.fixture
async def proxy(net: RunningNetwork) -> AsyncIterator[FaultProxy]:
    p = await FaultProxy.start(net.host, net.port)
    try:
        yield p
    finally:
        await p.stop()


async def probe(proxy: FaultProxy, job: Job = JOB, pool: SessionPool | None = None
                ) -> ProbeResult:
    target = Target(network="sim", name="small", kind="openai", base_url=proxy.url + "/v1",
                    model="sim-model")
    own = pool is None
    pool = pool or SessionPool()
    try:
        return await openai.run(target, job, pool.for_target(target))
    finally:
        if own:
            await pool.close()


async def test_no_fault_passes_bytes_through(proxy: FaultProxy) -> None:
    r = await probe(proxy)
    assert r.outcome is Outcome.OK, r.error
    assert r.ttft_s is not None and r.ttft_s < 0.5


async def test_latency_delays_first_byte_and_token_but_not_the_decode_rate(
        proxy: FaultProxy) -> None:
    proxy.faults = Faults(latency_s=0.2)
    r = await probe(proxy, quick_job("chat-long-v1", deadline_s=10.0))
    assert r.outcome is Outcome.OK, r.error
    assert r.ttfb_s is not None and r.ttfb_s >= 0.4  # the request's leg and the answer's
    assert r.ttft_s is not None and r.ttft_s >= 0.4 + 0.05
    # a long link shifts every token by the same delay: the decode rate is the network's
    assert r.tokens_per_s == pytest.approx(200, rel=0.2)


async def test_a_bandwidth_limit_stretches_the_answer(proxy: FaultProxy) -> None:
    proxy.faults = Faults(bandwidth_bps=32768)  # ~70 KB of answer: about 2 s
    r = await probe(proxy, quick_job("chat-long-v1", deadline_s=30.0))
    assert r.outcome is Outcome.OK, r.error
    assert r.duration_s is not None and r.duration_s >= 0.8 * r.bytes / 32768
    assert r.tokens_per_s is not None and r.tokens_per_s < 150  # the link, not the GPU


async def test_a_reset_mid_answer_is_a_disconnect(proxy: FaultProxy) -> None:
    proxy.faults = Faults(reset_after_bytes=400)  # past the headers, inside the stream
    r = await probe(proxy, quick_job("chat-long-v1", deadline_s=10.0))
    assert r.outcome is Outcome.DISCONNECT, r.error
    assert "reset" in r.error or "closed" in r.error
    assert r.duration_s is not None and r.duration_s < 2.0  # noticed at once, not at a deadline
    assert proxy.stats.resets == 1


async def test_a_blackhole_is_a_timeout_at_the_deadline(proxy: FaultProxy) -> None:
    proxy.faults = Faults(blackhole=True)
    job = quick_job(deadline_s=1.5, stall_s=1.0)
    started = time.perf_counter()
    r = await probe(proxy, job)
    took = time.perf_counter() - started
    assert r.outcome is Outcome.TIMEOUT, r.error
    assert 1.4 <= took < 3.0
    assert r.ttfb_s is None  # nothing ever came back


async def test_a_slow_close_is_not_counted_in_the_run() -> None:
    """A server that ends the body by closing (no length, no chunks) and a link that delays
    the FIN: the run ends at [DONE], not at the close."""
    body = (b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n'
            b'data: {"choices":[{"delta":{"content":"4"},"finish_reason":"stop"}]}\n\n'
            b"data: [DONE]\n\n")

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = await FaultProxy.start("127.0.0.1", port, Faults(slow_close_s=3.0))
    try:
        started = time.perf_counter()
        r = await probe(proxy)
        took = time.perf_counter() - started
    finally:
        await proxy.stop()
        server.close()
    assert r.outcome in (Outcome.OK, Outcome.WRONG_OUTPUT), r.error
    assert r.duration_s is not None and r.duration_s < 1.0 and took < 2.0


async def test_flapping_gives_refusals_while_down_and_successes_while_up(
        proxy: FaultProxy) -> None:
    proxy.faults = Faults(flap=(0.6, 0.6))
    pool = SessionPool()
    outcomes: list[tuple[bool, Outcome, float]] = []  # (down when it ended, outcome, seconds)
    try:
        deadline = time.perf_counter() + 4.0
        while time.perf_counter() < deadline:
            r = await probe(proxy, pool=pool)
            outcomes.append((proxy.down, r.outcome, r.duration_s or 0.0))
            await asyncio.sleep(0.05)
    finally:
        await pool.close()
    seen = {o for _, o, _ in outcomes}
    assert Outcome.OK in seen and Outcome.CONNECT_ERROR in seen, outcomes
    assert seen <= {Outcome.OK, Outcome.CONNECT_ERROR, Outcome.DISCONNECT}, outcomes
    assert all(s < 0.5 for _, o, s in outcomes if o is Outcome.CONNECT_ERROR)  # refused fast
    proxy.faults = Faults()
    assert (await probe(proxy)).outcome is Outcome.OK  # back for good


# -- a thousand targets failing at once --------------------------------------------------

def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def sockets_to(port: int) -> int:
    """This process's sockets connected to 127.0.0.1:port: the prober's side only (the proxy
    and the network run in this process too, with sockets of their own)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    remote = f"0100007F:{port:04X}"
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[2] == remote and fields[9] in inodes:
                count += 1
    return count


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Last:
    """Sink: each target's last outcome, and when it ran."""

    def __init__(self) -> None:
        self.outcome: dict[str, Outcome] = {}
        self.at: dict[str, float] = {}
        self.runs = 0
        self.errors: set[str] = set()

    def on_result(self, r: ProbeResult) -> None:
        self.outcome[r.network] = r.outcome
        self.at[r.network] = time.perf_counter()
        self.runs += 1
        if r.outcome is not Outcome.OK:
            self.errors.add(r.error.split(":")[0])


async def test_a_thousand_targets_failing_at_once_stay_within_bounds_and_recover(
        tmp_path: Path, net: RunningNetwork, proxy: FaultProxy) -> None:
    targets, concurrency = 1000, 100
    config = parse_config(f"concurrency: {concurrency}\nnetworks:\n" + "".join(
        f"  - {{name: t{i:04d}, kind: http, base_url: '{proxy.url}/health', model: '-', "
        f"interval: 4s, concurrency: 1}}\n" for i in range(targets)))
    store = Store(tmp_path / "t.db")
    last = Last()
    schedulers: list[Scheduler] = []
    fds0, rss0 = open_fds(), rss_mb()
    peak = {"fds": fds0, "sockets": 0, "rss": rss0, "in_flight": 0}

    async def watch() -> None:
        while True:
            peak["fds"] = max(peak["fds"], open_fds())
            peak["sockets"] = max(peak["sockets"], sockets_to(proxy.port))
            peak["rss"] = max(peak["rss"], rss_mb())
            if schedulers:
                peak["in_flight"] = max(peak["in_flight"], schedulers[0].in_flight)
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    task = asyncio.create_task(monitor(
        config, store, listen="off", extra_sinks=[last], handle_signals=False, grace_s=1.0,
        on_ready=lambda s, _: schedulers.append(s)))
    try:
        await until(lambda: len(last.outcome) == targets, 120)  # every target ran once
        assert set(last.outcome.values()) == {Outcome.OK}, last.errors
        failing_from = time.perf_counter()
        proxy.faults = Faults(blackhole=True)  # every target hangs until its deadline ...
        await asyncio.sleep(3.0)
        proxy.set_down(True)  # ... then every connection is refused
        await asyncio.sleep(3.0)
        assert any(o is not Outcome.OK for o in last.outcome.values())
        back_at = time.perf_counter()
        proxy.faults = Faults()  # they come back
        await until(lambda: all(last.at[t] > back_at + 0.5 for t in last.at), 120)
    finally:
        if schedulers:
            schedulers[0].stop()
        await task
        watcher.cancel()
        store.close()
    failures = {o for t, o in last.outcome.items()}
    assert failures == {Outcome.OK}, last.errors  # recovered by itself, every one
    assert peak["in_flight"] <= concurrency
    # the prober's sockets: one per run in flight, one idle keep-alive connection per target
    assert peak["sockets"] <= concurrency + targets, peak
    # every fd of this process (the proxy's and the network's four a connection included)
    # stays far from the limit the monitor sets itself
    assert peak["fds"] < resource.getrlimit(resource.RLIMIT_NOFILE)[0] / 2, peak
    assert not any("Too many open files" in e for e in last.errors)
    assert peak["rss"] - rss0 < 200, peak  # MB, for 1,000 targets' sessions and runs
    assert time.perf_counter() - failing_from > 6  # the faults really lasted


async def until(check: object, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not check():  # type: ignore[operator]
        assert time.perf_counter() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_the_monitor_raises_its_open_file_limit_for_many_targets() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def usual_soft_limit() -> None:  # what systemd and most shells give a service
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    out = subprocess.run(
        [sys.executable, "-c", "import resource; from monitor.runtime.tuning import "
         "raise_fd_limit; raise_fd_limit(); print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"],
        capture_output=True, text=True, timeout=60, preexec_fn=usual_soft_limit)
    expected = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    assert int(out.stdout) == expected > 1024, out.stderr
