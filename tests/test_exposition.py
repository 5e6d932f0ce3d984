"""/metrics from the fast renderer is byte for byte prometheus_client's own exposition of the same
registry, in the text format and OpenMetrics, scrape after scrape while the values change."""

from __future__ import annotations

import asyncio
import math
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client import metrics as client_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics.exposition import ALLOWUTF8, UNDERSCORES

from monitor.analysis.sla import SLAFigure
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.exporter import exposition
from monitor.exporter.exposition import SHARE_OF_AWAY, Exposition, Format, negotiate, stock_encoder
from monitor.exporter.metrics import MetricsSink
from monitor.exporter.sla_collector import SLACollector
from monitor.web.server import WRITE_BATCH, bound_port, start_server

FORMATS = [Format("text"), Format("openmetrics"), Format("text", ALLOWUTF8),
           Format("openmetrics", ALLOWUTF8)]
ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def assert_same(x: Exposition, fmt: Format) -> bytes:
    fast = x.render(fmt)
    stock = stock_encoder(fmt)(x.registry)
    assert fast.decode().splitlines() == stock.decode().splitlines()
    assert fast == stock
    return fast


def result(network: str, job: str, outcome: Outcome = Outcome.OK, **kw: object) -> ProbeResult:
    fields: dict[str, object] = dict(
        network=network, target="small", job=job, model="m", outcome=outcome,
        started_at=1_700_000_000.5, ttft_s=0.4, duration_s=3.2, tokens_per_s=48.0,
        max_gap_s=0.05, output_tokens=64, ttfb_s=0.1, dns_s=0.001, tcp_s=0.002, tls_s=0.01,
        scheduled_at=1_700_000_000.0)
    fields.update(kw)
    return ProbeResult(**fields)  # type: ignore[arg-type]


def monitor_sink() -> MetricsSink:
    """The monitor's own metrics (no process metrics: they change between two renders)."""
    profiles = {n: BUILTIN_PROFILES["enterprise"] for n in ("akash", "io.net", "chutes")}
    sink = MetricsSink(profiles, process_metrics=False)
    sink.init_targets((n, "small", j) for n in profiles for j in ("chat-short-v1", "json-v1"))
    sink.add_collector(_SLAFigures())
    return sink


class _SLAFigures:
    """A custom collector beside the monitor's metrics, as the SLA collector is."""

    def collect(self) -> list[GaugeMetricFamily]:
        g = GaugeMetricFamily("depin_sla_month_runs", "Runs this month.", labels=["network"])
        g.add_metric(["akash"], 1234.0)
        return [g]

    def describe(self) -> list[GaugeMetricFamily]:
        return []


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.kind}-{f.escaping}")
def test_the_monitors_metrics_render_as_prometheus_client_writes_them(fmt: Format) -> None:
    sink = monitor_sink()
    x = Exposition(sink.registry)
    assert_same(x, fmt)  # series initialised at 0
    sink.on_result(result("akash", "chat-short-v1"))
    sink.on_result(result("io.net", "json-v1", Outcome.DISCONNECT, duration_s=None))
    sink.on_result(result("chutes", "chat-short-v1", tls_version="TLSv1.3",
                          tls_cipher="TLS_AES_128_GCM_SHA256", tls_cert_expiry=1.8e9,
                          ip_version=6))
    sink.observe_loop_lag(0.003)
    first = assert_same(x, fmt)
    assert b'depin_probe_failures_total{network="io.net",outcome="disconnect"' in first
    # values change, a TLS label set is replaced, and a scrape without changes in between
    sink.on_result(result("akash", "chat-short-v1", ttft_s=12.5, output_tokens=2_000_000))
    sink.on_result(result("chutes", "chat-short-v1", tls_version="TLSv1.2",
                          tls_cipher="ECDHE-RSA-AES128-GCM-SHA256"))
    second = assert_same(x, fmt)
    assert second != first
    assert assert_same(x, fmt) == second


settings_ = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])
label_values = st.text(st.characters(codec="utf-8"), max_size=12)
numbers = st.floats(allow_nan=True, allow_infinity=True)
amounts = st.floats(min_value=0, max_value=1e12, allow_nan=False) | st.sampled_from(
    [0.0, 1.0, 999_999.0, 1_000_000.0, 1e15, 1e16, 1e-7, 12345678.9])


@settings_
@given(labels=st.lists(label_values, min_size=1, max_size=4, unique=True),
       gauge_values=st.lists(numbers, min_size=1, max_size=4),
       observations=st.lists(st.floats(min_value=-1e9, max_value=1e9) | numbers, max_size=8),
       increments=st.lists(amounts, max_size=4),
       bounds=st.lists(st.floats(min_value=-100, max_value=1e7, allow_nan=False), min_size=1,
                       max_size=5, unique=True),
       escaping=st.sampled_from([UNDERSCORES, ALLOWUTF8]))
def test_any_values_and_labels_render_identically(
        labels: list[str], gauge_values: list[float], observations: list[float],
        increments: list[float], bounds: list[float], escaping: str) -> None:
    """Label values with quotes, backslashes, newlines and '%'; values from -inf to NaN, big
    enough for Go's exponent form; negative bucket bounds (no _sum then)."""
    r = CollectorRegistry()
    c = Counter("c", "Help with \\ and\nnewline and \"quotes\".", ["l", "k"], registry=r)
    g = Gauge("g_seconds", "A gauge.", ["l"], unit="seconds", registry=r)
    h = Histogram("h", "A histogram.", ["l"], buckets=sorted(bounds), registry=r)
    s = Summary("s", "A summary.", ["zz", "a"], registry=r)
    x = Exposition(r)
    for fmt in (Format("text", escaping), Format("openmetrics", escaping)):
        for i, label in enumerate(labels):
            c.labels(label, "%s%%d").inc(increments[i % len(increments)] if increments else 0)
            g.labels(label).set(gauge_values[i % len(gauge_values)])
            for v in observations:
                h.labels(label).observe(v)
                s.labels(label, "x").observe(v)
            assert_same(x, fmt)
        assert_same(x, fmt)


def test_unusual_children_fall_back_and_still_match() -> None:
    """A gauge reading a function, exemplars (OpenMetrics shows them), labels removed and
    added again (a new _created), `_created` switched off, a collector unregistered."""
    r = CollectorRegistry()
    c = Counter("events", "Events.", ["kind"], registry=r)
    g = Gauge("in_flight", "Now.", ["pool"], registry=r)
    h = Histogram("latency_seconds", "Latency.", ["route"], registry=r)
    x = Exposition(r)
    g.labels("a").set_function(lambda: 7.0)
    c.labels("x").inc(2, exemplar={"trace_id": "abc"})
    c.labels("never")
    h.labels("/").observe(0.2, exemplar={"trace_id": "def"})
    for fmt in FORMATS:
        body = assert_same(x, fmt)
        if fmt.openmetrics:
            assert b'# {trace_id="abc"}' in body
    c.remove("x")
    c.remove("never")
    time.sleep(0.01)
    c.labels("x").inc()
    c.labels("never")  # the same value as before, but a new series (a new _created)
    for fmt in FORMATS:
        assert_same(x, fmt)
    client_metrics.disable_created_metrics()
    try:
        for fmt in FORMATS:
            assert b"_created" not in assert_same(x, fmt)
    finally:
        client_metrics.enable_created_metrics()
    r.unregister(h)
    for fmt in FORMATS:
        assert b"latency_seconds" not in assert_same(x, fmt)


def test_the_fast_path_runs_on_the_tested_releases_only() -> None:
    """Both ends of pyproject.toml's prometheus-client range are the tested ones (CI runs this
    file at the lowest, the main environment at the newest); one release outside either end
    is handed to prometheus_client's encoder."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    spec = next(d for d in pyproject["project"]["dependencies"]
                if d.startswith("prometheus-client"))
    lowest, above = exposition.TESTED_VERSIONS
    low, high = (".".join(map(str, v)) for v in (lowest, above))
    assert spec == f"prometheus-client>={low},<{high}"
    assert exposition.fast_path_tested()  # the installed release is a tested one
    assert exposition.fast_path_tested(lowest)
    assert exposition.fast_path_tested((0, 26, 0))
    assert not exposition.fast_path_tested((0, 23, 0))
    assert not exposition.fast_path_tested(above)
    assert not exposition.fast_path_tested(())


@pytest.mark.parametrize("error", [AttributeError, TypeError, KeyError, RuntimeError])
def test_any_failure_of_the_fast_path_hands_the_registry_to_prometheus_client(
        monkeypatch: pytest.MonkeyPatch, error: type[Exception]) -> None:
    sink = monitor_sink()
    sink.on_result(result("akash", "chat-short-v1"))
    x = Exposition(sink.registry)

    def broken(*_: object) -> Iterator[None]:
        raise error("internals moved")
        yield

    monkeypatch.setattr(exposition._Family, "render", broken)
    for fmt in FORMATS:
        assert x.render(fmt) == stock_encoder(fmt)(sink.registry)
    assert not x.fast


def test_an_untested_release_is_rendered_by_prometheus_client(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exposition, "client_version", lambda: (0, 27, 0))
    sink = monitor_sink()
    sink.on_result(result("akash", "chat-short-v1"))
    x = Exposition(sink.registry)
    assert not x.fast
    for fmt in FORMATS:
        assert x.render(fmt) == stock_encoder(fmt)(sink.registry)


@pytest.mark.parametrize("accept,kind", [
    ("", "text"), ("text/plain", "text"), (PROMETHEUS_ACCEPT, "openmetrics"),
    ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8", "openmetrics"),
    ("text/plain;version=1.0.0;escaping=allow-utf-8", "text"),
])
def test_negotiation_follows_prometheus_client(accept: str, kind: str) -> None:
    fmt, _, _ = negotiate(accept)
    assert fmt is not None and fmt.kind == kind


async def test_metrics_endpoint_serves_the_fast_body_for_prometheus() -> None:
    """What Prometheus 2.x asks for (its Accept header) and a plain `curl`, over HTTP: a body
    of several write batches, with its length announced (not chunked)."""
    sink = monitor_sink()
    for k in range(30):
        sink.on_result(result("akash", "chat-short-v1", ttft_s=0.05 * k))
    for n in range(60):
        sink.on_result(result(f"network-{n}", "chat-short-v1", Outcome.STALLED))
    runner = await start_server("127.0.0.1", 0, registry=sink.registry)
    try:
        url = f"http://127.0.0.1:{bound_port(runner)}/metrics"
        async with httpx.AsyncClient() as client:
            om = await client.get(url, headers={"Accept": PROMETHEUS_ACCEPT})
            text = await client.get(url)
    finally:
        await runner.cleanup()
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om.content == stock_encoder(Format("openmetrics"))(sink.registry)
    assert len(om.content) > 2 * WRITE_BATCH
    assert om.headers["content-length"] == str(len(om.content))
    assert "transfer-encoding" not in om.headers
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert text.content == stock_encoder(Format("text"))(sink.registry)
    line = next(ln for ln in text.text.splitlines()
                if ln.startswith('depin_probe_ttft_seconds_count{network="akash"'))
    assert math.isclose(float(line.rsplit(" ", 1)[1]), 30)


async def test_a_scrape_hands_the_event_loop_back_while_it_renders() -> None:
    """On the loop, a big render runs in slices: other tasks (the probes) run between them,
    at the first render (every child new), at a later one with every child changed, and at
    one with none changed (a family's change marks are read in chunks too); the body is
    prometheus_client's byte for byte each time. A slice of no time at all makes every
    hand-back point show: one per child formatted."""
    r = CollectorRegistry()
    h = Histogram("latency_seconds", "Latency.", ["network", "workload"], registry=r)
    c = Counter("runs", "Runs.", ["network", "workload", "outcome"], registry=r)
    for n in range(200):
        for w in range(5):
            h.labels(f"n{n}", f"w{w}").observe(0.1 * w)
            for o in range(5):
                c.labels(f"n{n}", f"w{w}", f"o{o}").inc()
    x = Exposition(r, slice_s=0.0, share_of_away=0.0)
    ticks = 0
    rendering = True

    async def probe_like() -> None:
        nonlocal ticks
        while rendering:
            ticks += 1
            await asyncio.sleep(0)

    async def render_counting_ticks() -> int:
        nonlocal ticks
        ticks = 0
        body = await x.render_async(Format("openmetrics"))
        assert body == stock_encoder(Format("openmetrics"))(r)
        return ticks

    ticker = asyncio.create_task(probe_like())
    await asyncio.sleep(0)
    try:
        first = await render_counting_ticks()
        for n in range(200):
            for w in range(5):
                h.labels(f"n{n}", f"w{w}").observe(1.0)
        all_histograms_changed = await render_counting_ticks()
        none_changed = await render_counting_ticks()
    finally:
        rendering = False
        await ticker
    assert first >= 1000 + 5000  # every child's template built in a slice of its own
    assert all_histograms_changed >= 1000
    assert none_changed >= 5000 // 2048  # the 5,000 counters' marks read in chunks


def test_a_bucket_bound_of_minus_zero_keeps_its_sign() -> None:
    """-0.0 == 0.0 as floats: bounds cached as floats once wrote le="0.0" for a -0.0 bound
    seen after a 0.0 one (found by the property test above)."""
    for bound in (0.0, -0.0):
        r = CollectorRegistry()
        Histogram("h", "H.", ["l"], buckets=[bound], registry=r).labels("a").observe(0.0)
        for fmt in (Format("text"), Format("openmetrics")):
            assert f'le="{bound}"'.encode() in assert_same(Exposition(r), fmt)


async def test_a_busy_loop_gives_a_scrape_longer_slices() -> None:
    """Each turn of a busy loop (here: another task holding it 20 ms) gives the render a slice
    of a third of that: it takes a quarter of the loop, so it ends in a few turns instead of
    stretching past Prometheus' scrape timeout, one millisecond slice per turn."""
    r = CollectorRegistry()
    h = Histogram("latency_seconds", "Latency.", ["network", "workload"], registry=r)

    async def turns_to_render(share_of_away: float) -> int:
        for n in range(400):  # new children each time: every template is built again
            h.labels(f"n{n}-{share_of_away}", "w").observe(0.5)
        x = Exposition(r, slice_s=0.001, share_of_away=share_of_away)
        turns, rendering = 0, True

        async def busy() -> None:
            nonlocal turns
            while rendering:
                turns += 1
                time.sleep(0.02)  # the point: a task holding the loop
                await asyncio.sleep(0)

        ticker = asyncio.create_task(busy())
        await asyncio.sleep(0)
        try:
            body = await x.render_async(Format("openmetrics"))
        finally:
            rendering = False
            await ticker
        assert body == stock_encoder(Format("openmetrics"))(r)
        return turns

    assert await turns_to_render(SHARE_OF_AWAY) * 3 < await turns_to_render(0.0)


def test_sla_figures_are_encoded_again_only_when_they_change() -> None:
    """The month SLA figures (thousands of samples at hundreds of networks, which change only
    when re-evaluated) are encoded once per evaluation, and the body shows each new
    evaluation, byte for byte prometheus_client's."""
    runs, now = [100], [0.0]
    collector = SLACollector(lambda: [SLAFigure("akash", runs[0], 0.99, 0.99, {}, {}, {})],
                             ttl_s=5.0, clock=lambda: now[0])
    sink = MetricsSink({}, process_metrics=False)
    sink.add_collector(collector)
    encoded = 0
    collect = collector.collect

    def counted() -> Iterator[Any]:
        nonlocal encoded
        encoded += 1
        return collect()

    collector.collect = counted  # type: ignore[method-assign]
    x = Exposition(sink.registry)
    fmt = Format("openmetrics")
    for _ in range(3):
        assert b'depin_sla_month_runs{network="akash"} 100.0' in x.render(fmt)
    assert encoded == 1
    runs[0], now[0] = 250, 60.0  # stale: the next scrape starts a refresh
    x.render(fmt)
    collector.wait(10)
    body = x.render(fmt)
    assert b'depin_sla_month_runs{network="akash"} 250.0' in body
    assert body == stock_encoder(fmt)(sink.registry)


class _Figures:
    """A custom collector of gauge families whose text the exposition keeps (as the SLA
    figures' is), with any labels and values."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def exposition_token(self) -> int:
        return id(self.families)

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families


@settings_
@given(rows=st.lists(st.tuples(label_values, label_values, numbers | st.integers(-10**6, 10**9)),
                     max_size=30, unique_by=lambda r: (r[0], r[1])),
       fmt=st.sampled_from(FORMATS))
def test_kept_gauge_families_render_identically(rows: list[tuple[str, str, float]],
                                                fmt: Format) -> None:
    """The kept custom families are written here sample by sample: the same bytes as
    prometheus_client's, labels with quotes, backslashes, newlines and '%', values from -inf
    to NaN and integers, a family without labels, one with a unit."""
    labelled = GaugeMetricFamily("depin_sla_month_burn_rate", 'Burn "rate" \\ and\nmore.',
                                 labels=["network", "sli"])
    for network, sli, value in rows:
        labelled.add_metric([network, sli], value)
    plain = GaugeMetricFamily("depin_sla_evaluation_duration", "Took.", unit="seconds")
    plain.add_metric([], rows[0][2] if rows else 0.25)
    r = CollectorRegistry()
    r.register(_Figures([labelled, plain]))
    x = Exposition(r, slice_s=0.0, share_of_away=0.0)
    body = asyncio.run(x.render_async(fmt))
    assert body == stock_encoder(fmt)(r)
