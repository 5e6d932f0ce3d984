"""The monitor's HTTP server on a real loopback socket, read with real HTTP requests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest

from monitor.analysis.sla import SLAFigure
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.core.warmup import WarmUp
from monitor.exporter.metrics import MetricsSink
from monitor.exporter.sla_collector import SLACollector
from monitor.storage.store import StoreHealth
from monitor.web.server import attach, bound_port, parse_listen, start_server


def result(outcome: Outcome = Outcome.OK, network: str = "akash") -> ProbeResult:
    return ProbeResult(network=network, target="small", job="chat-short-v1", model="m",
                       outcome=outcome, started_at=1_700_000_000.0, ttft_s=0.3, duration_s=1.0,
                       tokens_per_s=60.0, max_gap_s=0.02, output_tokens=12,
                       scheduled_at=1_700_000_000.0 - 0.01)


@pytest.fixture
def sink() -> MetricsSink:
    s = MetricsSink({"akash": BUILTIN_PROFILES["enterprise"],
                     "io<net>": BUILTIN_PROFILES["standard"]})
    s.init_targets([("akash", "small", "chat-short-v1"), ("io<net>", "small", "chat-short-v1")])
    for _ in range(3):
        s.on_result(result())
    s.on_result(result(Outcome.DISCONNECT))
    s.observe_loop_lag(0.003)
    s.add_collector(SLACollector(lambda: [SLAFigure("akash", 10, 0.9, 0.95, {"availability": False},
                                                    {"availability": -99.0},
                                                    {"availability": 100.0})]))
    return s


@pytest.fixture
async def server(sink: MetricsSink) -> AsyncIterator[tuple[str, object]]:
    runner = await start_server("127.0.0.1", 0, registry=sink.registry)
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}", runner
    finally:
        await runner.cleanup()


async def test_metrics_endpoint_serves_the_registry(server: tuple[str, object]) -> None:
    url, _ = server
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{url}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'depin_probe_runs_total{network="akash",target="small",workload="chat-short-v1"} 4.0' \
        in r.text
    assert 'depin_probe_ttft_seconds_bucket{le="2.0",network="akash"' in r.text
    assert "depin_sla_month_availability_ratio" in r.text
    assert "depin_monitor_build_info" in r.text


async def test_openmetrics_is_negotiated(server: tuple[str, object]) -> None:
    url, _ = server
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{url}/metrics",
                             headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


async def test_healthz_and_readyz_follow_the_components(server: tuple[str, object]) -> None:
    url, runner = server

    class Scheduler:
        running = False

    class Store:
        is_open = True

        def health(self) -> StoreHealth:
            return StoreHealth(writable=True, problem="", failing_for_s=0.0, buffered=0,
                               buffer_limit=10, dropped=0, written=0, write_errors=0)

    sched = Scheduler()
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/healthz")).status_code == 200
        r = await client.get(f"{url}/readyz")
        assert r.status_code == 503 and "scheduler not started" in r.text
        attach(runner, scheduler=sched, store=Store())
        assert (await client.get(f"{url}/readyz")).status_code == 503
        sched.running = True
        r = await client.get(f"{url}/readyz")
        assert r.status_code == 200 and r.text == "ready\n"
        # After a start the alert windows fill: ready, with each network's runs so far
        now = [0.0]
        warmup = WarmUp({"akash": 60, "busy": 600}, clock=lambda: now[0])
        for _ in range(23):
            warmup.on_result(result(network="akash"))
        attach(runner, warmup=warmup)
        r = await client.get(f"{url}/readyz")
        assert r.status_code == 200
        assert r.text == ("ready\nakash: warming up: 23 of 60 runs (1h page window)\n"
                          "busy: warming up: 0 of 600 runs (1h page window)\n")
        for _ in range(37):
            warmup.on_result(result(network="akash"))
        assert (await client.get(f"{url}/readyz")).text == \
            "ready\nbusy: warming up: 0 of 600 runs (1h page window)\n"
        now[0] = 3600.0  # a whole page window since the start: warm, whatever the runs
        assert (await client.get(f"{url}/readyz")).text == "ready\n"


async def test_without_a_store_the_page_loads_and_the_api_says_why_it_is_empty(
        server: tuple[str, object]) -> None:
    url, _ = server
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{url}/")
        api = await client.get(f"{url}/api/v1/networks")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/status.js"' in page.text
    assert api.status_code == 503 and api.json() == {"error": "no store attached to this server"}


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (apt-get install prometheus)")
async def test_promtool_check_metrics_passes_on_live_output(server: tuple[str, object]) -> None:
    url, _ = server
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics")).text
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen(":0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen("localhost:http")
