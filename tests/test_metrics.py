"""The exporter: what a Prometheus scrape of the monitor shows after some runs."""

from __future__ import annotations

import os
import threading

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.analysis.sla import SLAFigure
from monitor.core.errors import UserError
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import BUILTIN_PROFILES, SLAProfile
from monitor.exporter.metrics import LATENCY_BUCKETS, MetricsSink, is_good
from monitor.exporter.sla_collector import SLACollector

ENTERPRISE = BUILTIN_PROFILES["enterprise"]


def run(outcome: Outcome = Outcome.OK, **kw: object) -> ProbeResult:
    base: dict[str, object] = dict(network="akash", target="small", job="chat-short-v1",
                                   model="m", outcome=outcome, started_at=1_700_000_000.0,
                                   ttft_s=0.4, duration_s=1.2, tokens_per_s=50.0,
                                   max_gap_s=0.03, output_tokens=16)
    base.update(kw)
    return ProbeResult(**base)  # type: ignore[arg-type]


def samples(sink: MetricsSink) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(sink.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(sink: MetricsSink, name: str, **labels: str) -> float | None:
    return samples(sink).get((name, tuple(sorted(labels.items()))))


L = dict(network="akash", target="small", workload="chat-short-v1")


def test_runs_failures_and_availability_from_counters() -> None:
    sink = MetricsSink({"akash": ENTERPRISE}, process_metrics=False)
    for _ in range(3):
        sink.on_result(run())
    sink.on_result(run(Outcome.DISCONNECT, ttft_s=0.3, duration_s=0.9))
    assert value(sink, "depin_probe_runs_total", **L) == 4
    assert value(sink, "depin_probe_failures_total", **L, outcome="disconnect") == 1
    assert value(sink, "depin_probe_output_tokens_total", **L) == 64
    # the disconnected run's TTFT counts, its duration is not an end-to-end latency
    assert value(sink, "depin_probe_ttft_seconds_count", **L) == 4
    assert value(sink, "depin_probe_duration_seconds_count", **L) == 3
    assert value(sink, "depin_probe_good_total", **L) == 3


def test_every_sla_threshold_is_a_bucket_boundary() -> None:
    odd = SLAProfile(name="odd", ttft_p95_s=1.7, e2e_p99_s=33.0, decode_tps_min=12.5)
    sink = MetricsSink({"akash": odd}, extra_profiles=[ENTERPRISE], process_metrics=False)
    sink.on_result(run(ttft_s=1.6, duration_s=32.0, tokens_per_s=12.0))
    assert value(sink, "depin_probe_ttft_seconds_bucket", **L, le="1.7") == 1
    assert value(sink, "depin_probe_ttft_seconds_bucket", **L, le="2.0") == 1  # enterprise
    assert value(sink, "depin_probe_duration_seconds_bucket", **L, le="33.0") == 1
    assert value(sink, "depin_probe_tokens_per_second_bucket", **L, le="12.5") == 1
    assert set(LATENCY_BUCKETS) <= set(sink.ttft_buckets)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_a_threshold_that_cannot_be_a_boundary_is_refused(bad: float) -> None:
    with pytest.raises(UserError, match="cannot be a histogram bucket boundary"):
        MetricsSink({"x": SLAProfile(name="x", ttft_p95_s=bad)}, process_metrics=False)


def test_init_targets_exposes_zero_series_before_the_first_run() -> None:
    sink = MetricsSink({"akash": ENTERPRISE}, process_metrics=False)
    sink.init_targets([("akash", "small", "chat-short-v1")])
    assert value(sink, "depin_probe_runs_total", **L) == 0
    assert value(sink, "depin_probe_failures_total", **L, outcome="timeout") == 0
    assert value(sink, "depin_probe_last_run_timestamp_seconds", **L) == 0
    assert value(sink, "depin_probe_last_success_timestamp_seconds", **L) == 0


def test_timestamps_and_objectives() -> None:
    sink = MetricsSink({"akash": ENTERPRISE}, process_metrics=False)
    sink.on_result(run(started_at=100.0))
    sink.on_result(run(Outcome.TIMEOUT, started_at=200.0, ttft_s=None, duration_s=30.0))
    assert value(sink, "depin_probe_last_success_timestamp_seconds", **L) == 100.0
    assert value(sink, "depin_probe_last_run_timestamp_seconds", **L) == 200.0
    assert value(sink, "depin_sla_objective", network="akash", sli="availability") == 0.999
    assert value(sink, "depin_sla_objective", network="akash", sli="ttft_p95") == 2.0
    assert value(sink, "depin_sla_objective", network="akash", sli="decode_tps") == 20.0


def test_goodput_needs_every_slo_at_once() -> None:
    assert is_good(run(), ENTERPRISE)
    assert not is_good(run(ttft_s=2.5), ENTERPRISE)
    assert not is_good(run(duration_s=31.0), ENTERPRISE)
    assert not is_good(run(tokens_per_s=19.0), ENTERPRISE)
    assert not is_good(run(Outcome.WRONG_OUTPUT), ENTERPRISE)
    assert is_good(run(ttft_s=2.5), None)


def test_prober_self_monitoring() -> None:
    sink = MetricsSink({}, process_metrics=False)
    sink.observe_loop_lag(0.002)
    sink.observe_loop_lag(0.3)
    sink.on_result(run(scheduled_at=1_700_000_000.0 - 1.5, lagged=True))
    sink.watch_in_flight(lambda: 1)
    assert value(sink, "depin_monitor_event_loop_lag_seconds_count") == 2
    assert value(sink, "depin_monitor_event_loop_lag_seconds_bucket", le="0.25") == 1
    assert value(sink, "depin_monitor_scheduling_lateness_seconds_sum", network="akash") == 1.5
    assert value(sink, "depin_monitor_lagged_runs_total", network="akash") == 1
    assert value(sink, "depin_monitor_runs_in_flight") == 1
    builds = [k for k in samples(sink) if k[0] == "depin_monitor_build_info"]
    assert len(builds) == 1


def test_no_unbounded_label_is_ever_emitted() -> None:
    sink = MetricsSink({"akash": ENTERPRISE}, process_metrics=False)
    sink.on_result(run(Outcome.HTTP_ERROR, error="500 from https://key@host/v1 req-123",
                       location="eu-west-1", http_status=500))
    allowed = {"network", "target", "workload", "outcome", "le", "sli", "version", "python_version"}
    # `job` and `instance` are Prometheus' own target labels: we must never emit them
    assert not any(k in ("job", "instance") for _, labels in samples(sink) for k, _ in labels)
    for _, labels in samples(sink):
        assert {k for k, _ in labels} <= allowed
    assert "https://" not in generate_latest(sink.registry).decode()


def test_sla_collector_is_cached_and_survives_a_failing_store() -> None:
    calls = []
    now = [0.0]

    def source() -> list[SLAFigure]:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("store gone")
        return [SLAFigure("akash", 1000, 0.998, 0.999, {"availability": False},
                          {"availability": -1.0}, {"availability": 2.0})]

    sink = MetricsSink({}, process_metrics=False)
    collector = SLACollector(source, ttl_s=5.0, clock=lambda: now[0])
    sink.add_collector(collector)
    assert value(sink, "depin_sla_month_availability_ratio", network="akash") == 0.998
    assert value(sink, "depin_sla_month_attained", network="akash", sli="availability") == 0
    value(sink, "depin_sla_month_runs", network="akash")
    assert len(calls) == 1  # the second scrape within 5 s used the cache
    now[0] = 10.0
    assert value(sink, "depin_sla_month_burn_rate", network="akash", sli="availability") == 2.0
    collector.wait()
    assert len(calls) == 2  # refreshed, failed, kept the previous figures
    assert value(sink, "depin_sla_month_burn_rate", network="akash", sli="availability") == 2.0


def test_a_slow_sla_evaluation_never_holds_up_a_scrape() -> None:
    """After the first scrape, a stale cache is refreshed in the background: the scrape
    serves the previous month figures at once, the next one the new figures."""
    release = threading.Event()
    runs = [100]
    now = [0.0]

    def source() -> list[SLAFigure]:
        if runs[0] > 100:
            release.wait(10)  # a big store: seconds of reading rollups
        return [SLAFigure("akash", runs[0], 0.99, 0.99, {}, {}, {})]

    sink = MetricsSink({}, process_metrics=False)
    collector = SLACollector(source, ttl_s=5.0, clock=lambda: now[0])
    sink.add_collector(collector)
    assert value(sink, "depin_sla_month_runs", network="akash") == 100
    runs[0], now[0] = 250, 60.0
    # served at once from the cache: waiting for the evaluation would have given 250
    assert value(sink, "depin_sla_month_runs", network="akash") == 100
    release.set()
    collector.wait(10)
    assert value(sink, "depin_sla_month_runs", network="akash") == 250


class _WhereEvaluated:
    """A source that says which process evaluated it (it pickles: a helper process runs it)."""

    def __call__(self) -> list[SLAFigure]:
        return [SLAFigure(str(os.getpid()), 1, 1.0, 1.0, {}, {}, {})]


def test_the_month_figures_are_refreshed_in_a_helper_process() -> None:
    """What `run` does: the store is read by another process, so that judging the month
    never holds the interpreter the probes time with."""
    now = [0.0]
    collector = SLACollector(_WhereEvaluated(), ttl_s=60.0, clock=lambda: now[0],
                             processes=True)
    try:
        sink = MetricsSink({}, process_metrics=False)
        sink.add_collector(collector)
        assert value(sink, "depin_sla_month_runs", network=str(os.getpid())) == 1  # start-up
        now[0] = 61.0
        value(sink, "depin_sla_month_runs", network=str(os.getpid()))  # starts the refresh
        collector.wait(60)
        judged_by = {dict(labels)["network"] for name, labels in samples(sink)
                     if name == "depin_sla_month_runs"}
        assert len(judged_by) == 1 and str(os.getpid()) not in judged_by  # another process
    finally:
        collector.close()


def test_the_status_apis_tls_states_come_from_the_sinks_snapshot_not_the_registry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the status page shows of each network's TLS is what the gauges export, read
    without collecting the registry (which would hold the interpreter at thousands of
    series)."""
    from monitor.web.api import tls_states

    sink = MetricsSink(process_metrics=False)
    runs = [("a", "small", "TLSv1.3", 2_000_000_000.0), ("a", "large", "TLSv1.2", 1_900_000_000.0),
            ("b", "small", "TLSv1.3", 1_700_000_100.0), ("a", "small", "TLSv1.2", 2_100_000_000.0)]
    for network, target, version, expiry in runs:
        sink.on_result(ProbeResult(network=network, target=target, job="chat-short-v1",
                                   model="m", outcome=Outcome.OK, started_at=1_700_000_000.0,
                                   tls_version=version, tls_cipher="X",
                                   tls_cert_expiry=expiry))
    sink.set_tls_insecure("c", True)
    sink.set_tls_insecure("a", False)
    exported: dict[str, dict[str, object]] = {}
    for family in text_string_to_metric_families(generate_latest(sink.registry).decode()):
        for s in family.samples:
            net = s.labels.get("network")
            if s.name == "depin_probe_tls_cert_expiry_timestamp_seconds":
                seen = exported.setdefault(net, {}).get("expiry", s.value)
                exported[net]["expiry"] = min(s.value, seen)  # type: ignore[type-var]
            elif s.name == "depin_probe_tls_info":
                exported.setdefault(net, {})["version"] = s.labels["version"]
            elif s.name == "depin_probe_tls_insecure" and s.value:
                exported.setdefault(net, {})["insecure"] = True
    monkeypatch.setattr(sink.registry, "collect", lambda: pytest.fail("registry collected"))
    states = tls_states(sink.registry, now=1_700_000_000.0)
    assert sorted(states) == sorted(exported) == ["a", "b", "c"]
    for net, state in states.items():
        assert state.certificate_expires_at == exported[net].get("expiry")
        assert state.version == exported[net].get("version")
        assert state.verified is not exported[net].get("insecure", False)
    assert states["b"].expires_soon and not states["a"].expires_soon
