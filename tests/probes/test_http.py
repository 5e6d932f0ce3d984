"""The plain HTTP health check against the reference network's /health and small loopback
servers: every outcome it can produce, and its timings."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from aiohttp import web

from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import http
from probes.session import SessionPool
from tests.conftest import free_port, quick_job
from tests.probes.capture import capture_server


async def probe(url: str, deadline_s: float = 2.0, **params: object):
    """One health check; the deadline is generous unless a test is about the deadline, so a
    loaded machine cannot turn another outcome into a timeout."""
    target = Target(network="gw", name="health", kind="http", base_url=url, model="-")
    pool = SessionPool()
    try:
        job = quick_job("health-v1", deadline_s=deadline_s, params=params)
        return await http.run(target, job, pool.for_target(target))
    finally:
        await pool.close()


async def test_ok_with_timings(start_sim) -> None:
    net = await start_sim()
    r = await probe(net.url + "/health", body_regex=r'"status":\s*"ok"')
    assert r.outcome is Outcome.OK, r.error
    assert r.http_status == 200 and r.bytes > 0
    assert r.connect_s is not None and 0 < r.ttfb_s <= r.duration_s < 2.0
    assert r.job == "health-v1" and r.kind == "http"


async def test_body_mismatch_is_wrong_output(start_sim) -> None:
    net = await start_sim()
    r = await probe(net.url + "/health", body_regex="degraded")
    assert r.outcome is Outcome.WRONG_OUTPUT and "does not match" in r.error


async def test_cold_start_503_is_http_error(start_sim) -> None:
    net = await start_sim(cold_start_s=5.0)
    r = await probe(net.url + "/health")
    assert r.outcome is Outcome.HTTP_ERROR and r.http_status == 503
    assert "Service Initializing" in r.error


async def test_expected_status_can_be_configured(start_sim) -> None:
    net = await start_sim()
    assert (await probe(net.url + "/missing", expect_status=[404])).outcome is Outcome.OK
    r = await probe(net.url + "/health", expect_status=204)
    assert r.outcome is Outcome.HTTP_ERROR and "expected 204" in r.error


async def test_429_is_rate_limited_with_retry_after() -> None:
    async def limited(_r: web.Request) -> web.Response:
        return web.Response(status=429, text="slow down", headers={"Retry-After": "7"})

    async with capture_server({("GET", "/"): limited}) as cap:
        r = await probe(cap.url + "/")
    assert r.outcome is Outcome.RATE_LIMITED and r.retry_after_s == 7


async def test_slow_answer_is_timeout() -> None:
    async def slow(_r: web.Request) -> web.Response:
        await asyncio.sleep(0.5)  # past the 0.3 s deadline
        return web.Response(text="late")

    async with capture_server({("GET", "/"): slow}) as cap:
        r = await probe(cap.url + "/", deadline_s=0.3)
    assert r.outcome is Outcome.TIMEOUT and r.duration_s == pytest.approx(0.3, abs=0.1)


async def test_body_cut_short_is_disconnect() -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b"x" * 10)
        assert request.transport is not None
        request.transport.close()
        return resp

    async with capture_server({("GET", "/"): cut}) as cap:
        r = await probe(cap.url + "/")
    assert r.outcome is Outcome.DISCONNECT


async def test_refused_connection_is_connect_error() -> None:
    r = await probe(f"http://127.0.0.1:{free_port()}/health")
    assert r.outcome is Outcome.CONNECT_ERROR and r.http_status is None


@pytest.mark.parametrize("keep_alive", [True, False])
async def test_health_truth_and_connection_policy_of_the_reference_network(
        start_sim, keep_alive: bool) -> None:
    """The benchmarks' ground truth for health checks: each answer's (received, written)
    stamps in arrival order, inside the probe's own span; `keep_alive=False` makes every
    probe open a new connection (Connection: close), as blackbox_exporter always does."""
    net = await start_sim(keep_alive=keep_alive)
    target = Target(network="gw", name="health", kind="http", base_url=net.url + "/health",
                    model="-")
    pool = SessionPool()
    spans, results = [], []
    try:
        session = pool.for_target(target)
        for _ in range(3):
            before = time.perf_counter()
            results.append(await http.run(target, quick_job("health-v1"), session))
            spans.append((before, time.perf_counter()))
    finally:
        await pool.close()
    async with httpx.AsyncClient() as client:
        log = (await client.get(net.url + "/sim/health-log")).json()
    assert [r.outcome for r in results] == [Outcome.OK] * 3
    assert len(log) == 3
    for (before, after), (received, written) in zip(spans, log, strict=True):
        assert before < received <= written < after
    fresh = [r.connect_s is not None for r in results]
    assert fresh == ([True, False, False] if keep_alive else [True, True, True])
