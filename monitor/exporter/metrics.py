"""The Prometheus exporter side of the monitor: a sink of ProbeResults into its own registry.

Metric names and labels are listed in docs/metrics.md.
Labels are bounded: `network`, `target` (the model tier), `workload` (the job's name), and
`outcome` on the failures counter only. Never a URL, a key, a free-text error or a request
id; `location` is a scrape-side label (Prometheus target label or external_labels), not
emitted here.

Every SLA latency threshold is a histogram bucket boundary, so a latency SLI is
`bucket{le="<threshold>"} / count` in PromQL; `MetricsSink` refuses thresholds it cannot honour.
"""

from __future__ import annotations

import math
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    Summary,
)
from prometheus_client import disable_created_metrics as _disable_created
from prometheus_client import enable_created_metrics as _enable_created
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor import __version__
from monitor.analysis.sla import targets
from monitor.core.errors import UserError
from monitor.core.result import FAILURE_OUTCOMES, PROBE_ERROR, Outcome, ProbeResult, completed
from monitor.core.slaprofile import SLAProfile
from monitor.storage.store import StoreHealth

# Classic buckets (prometheus_client has no native histograms; docs/scale.md says what they
# would save), as few as the readers need (docs/metrics.md, "The cardinality budget"): every
# SLA threshold of the config is added as an exact bound (`buckets_with`), the rest only
# keeps the dashboards' quantile panels and heatmaps within a factor of ~2-2.5 of the truth.
# TTFT spans ~50-100 ms (hot datacenter) to a minute or two (cold node, queueing; the
# built-in jobs' deadlines are 10-120 s); the built-in profiles' thresholds are 2 and 5 s.
TTFT_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
# End-to-end: a short answer (< 1 s) to long generations and job networks (minutes); the
# built-in profiles' thresholds are 30 and 60 s.
DURATION_BUCKETS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Decode rate of one stream: a loaded consumer GPU gives ~5-15 tok/s, an H100 small model
# 100+; the built-in floors are 10 and 20 tok/s.
TOKENS_PER_SECOND_BUCKETS: tuple[float, ...] = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
# Largest gap between two tokens of one run: ~10-50 ms is normal decode, seconds is a stall
# (the built-in jobs' stall limits are 10-120 s: beyond them the run is `stalled`).
GAP_BUCKETS: tuple[float, ...] = (0.05, 0.25, 1.0, 5.0, 10.0, 30.0)
# The prober itself: event-loop lag (ms matter; the overload alert's p99 bound is 0.1 s) and
# scheduling lateness (seconds matter; the overload alert's p90 bound is 5 s).
LOOP_LAG_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)
LATENESS_BUCKETS: tuple[float, ...] = (0.05, 0.25, 1.0, 5.0, 30.0, 120.0)
DEFAULT_LAG_THRESHOLD_S = 0.1  # a run measured while the loop lagged more than this is flagged

LABELS = ("network", "target", "workload")
# The phases' summary follows the tier's connections, not each workload (docs/metrics.md)
PHASE_LABELS = ("network", "target", "phase")


# prometheus_client's switches for `_created` samples (untyped upstream)
_no_created: Callable[[], None] = _disable_created
_created: Callable[[], None] = _enable_created
# client_python's formatting of a bucket boundary (untyped upstream; it returns str)
_go_float: Callable[[float], str] = floatToGoString


def drop_created_series() -> None:
    """What `run` and `demo` do at start (monitor.runtime.tuning): no `_created` sample
    beside each counter, histogram and summary (prometheus_client's switch, process-wide).
    Nothing reads them: Prometheus 2.x stores each as a series of its own (a sixth of the
    samples a scrape) and uses none of them for rate() (docs/metrics.md, "The cardinality
    budget")."""
    _no_created()


def restore_created_series() -> None:
    """prometheus_client's own setting back: `_created` samples unless the environment's
    PROMETHEUS_DISABLE_CREATED_SERIES switches them off (as prometheus_client reads it)."""
    if os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in (
            "true", "1", "t"):
        _created()


def le_label(value: float) -> str:
    """The `le` label value client_python writes for a bucket boundary (rules must match it)."""
    return _go_float(value)


def buckets_with(base: Sequence[float], thresholds: Iterable[float],
                 what: str) -> tuple[float, ...]:
    """`base` plus every threshold as a boundary; UserError for a threshold that cannot be one."""
    bounds = set(base)
    for t in thresholds:
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise UserError(
                f"SLA threshold {t!r} for {what} cannot be a histogram bucket boundary: it must be "
                "a finite number of seconds (or tokens/s) greater than 0"
            )
        # Two thresholds that print the same `le` would be one bucket: a rule could not tell.
        clash = [b for b in bounds if b != t and le_label(b) == le_label(t)]
        if clash:
            raise UserError(
                f"SLA threshold {t!r} for {what} prints as le={le_label(t)!r} like the boundary "
                f"{clash[0]!r}; round it (e.g. to milliseconds)"
            )
        bounds.add(float(t))
    return tuple(sorted(bounds))


@dataclass(frozen=True, slots=True)
class NetworkTLS:
    """What the runs so far showed of one network's TLS."""

    verified: bool  # False when its config turns verification off (tls.insecure)
    version: str | None  # the TLS version of the latest change any of its targets saw
    certificate_expires_at: float | None  # the earliest expiry among its targets' chains


class TLSSnapshot:
    """The TLS facts the sink exports, kept beside the gauges for readers in other threads
    (the status API), so that none of them needs to collect the registry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiry: dict[tuple[str, str], float] = {}  # (network, target) -> notAfter
        self._version: dict[str, str] = {}
        self._insecure: dict[str, bool] = {}

    def saw_expiry(self, network: str, target: str, expiry: float) -> None:
        with self._lock:
            self._expiry[network, target] = expiry

    def saw_version(self, network: str, version: str) -> None:
        with self._lock:
            self._version[network] = version

    def set_insecure(self, network: str, insecure: bool) -> None:
        with self._lock:
            self._insecure[network] = insecure

    def networks(self) -> dict[str, NetworkTLS]:
        """network -> its TLS, for networks probed over HTTPS (or with verification off)."""
        with self._lock:
            expiry: dict[str, float] = {}
            for (network, _), when in self._expiry.items():
                expiry[network] = min(when, expiry.get(network, when))
            version = dict(self._version)
            insecure = {n for n, on in self._insecure.items() if on}
        return {n: NetworkTLS(n not in insecure, version.get(n) or None, expiry.get(n))
                for n in sorted({*expiry, *version, *insecure})}


class SinkRegistry(CollectorRegistry):
    """A MetricsSink's registry, carrying the sink's TLS snapshot to whoever serves it."""

    def __init__(self, auto_describe: bool = True) -> None:
        super().__init__(auto_describe=auto_describe)
        self.tls = TLSSnapshot()


@dataclass
class MetricsSink:
    """Turns each ProbeResult into metric updates. Give it each network's SLA profile.

    `network_profiles` maps network name -> SLAProfile (the config's per-network `sla`); their
    latency and decode thresholds become bucket boundaries and `depin_sla_objective` gauges.
    `extra_profiles` are profiles whose thresholds must be boundaries too (e.g. every profile
    the config defines, so a later re-assignment keeps rules valid).
    """

    network_profiles: Mapping[str, SLAProfile] = field(default_factory=dict)
    extra_profiles: Iterable[SLAProfile] = ()
    registry: CollectorRegistry = field(default_factory=SinkRegistry)
    lag_threshold_s: float = DEFAULT_LAG_THRESHOLD_S
    process_metrics: bool = True

    def __post_init__(self) -> None:
        profiles = [*self.network_profiles.values(), *self.extra_profiles]
        ttft_t = [p.ttft_p95_s for p in profiles if p.ttft_p95_s is not None]
        e2e_t = [p.e2e_p99_s for p in profiles if p.e2e_p99_s is not None]
        tps_t = [p.decode_tps_min for p in profiles if p.decode_tps_min is not None]
        self.ttft_buckets = buckets_with(TTFT_BUCKETS, ttft_t, "TTFT (ttft_p95_s)")
        self.duration_buckets = buckets_with(DURATION_BUCKETS, e2e_t, "end-to-end (e2e_p99_s)")
        self.tps_buckets = buckets_with(TOKENS_PER_SECOND_BUCKETS, tps_t,
                                        "decode rate (decode_tps_min)")
        r = self.registry
        self.runs = Counter("depin_probe_runs", "Probe runs, every outcome.", LABELS,
                            registry=r)
        self.failures = Counter("depin_probe_failures", "Probe runs whose outcome is not ok.",
                                (*LABELS, "outcome"), registry=r)
        self.good = Counter("depin_probe_good",
                            "Runs that met every SLO of their network's profile at once.",
                            LABELS, registry=r)
        self.output_tokens = Counter("depin_probe_output_tokens",
                                     "Output tokens received (server usage, else counted).",
                                     LABELS, registry=r)
        self.ttft = Histogram("depin_probe_ttft_seconds",
                              "Request sent to first generated token (not the role-only chunk).",
                              LABELS, buckets=self.ttft_buckets, registry=r)
        self.duration = Histogram("depin_probe_duration_seconds",
                                  "End-to-end: request sent to terminal event, completed runs.",
                                  LABELS, buckets=self.duration_buckets, registry=r)
        self.tps = Histogram("depin_probe_tokens_per_second",
                             "Decode rate (n-1)/(t_last-t_first) of completed runs.",
                             LABELS, buckets=self.tps_buckets, registry=r)
        self.gap = Histogram("depin_probe_inter_token_gap_seconds",
                             "Largest gap between two consecutive tokens of a run.",
                             LABELS, buckets=GAP_BUCKETS, registry=r)
        # A summary without quantiles (sum and count: mean time per phase), not a histogram:
        # six phases of buckets would more than double the series of every target and the
        # scrape time (benchmarks/RESULTS.md); each run's phases are in the store. Per tier,
        # not per workload: its one panel sums the workloads (docs/metrics.md).
        self.phase = Summary("depin_probe_phase_seconds",
                             "Time in each phase of a run: resolve, connect, tls, processing, "
                             "first_token, transfer (docs/metrics.md).",
                             PHASE_LABELS, registry=r)
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}  # see `_child`
        self.cert_expiry = Gauge("depin_probe_tls_cert_expiry_timestamp_seconds",
                                 "Earliest expiry (notAfter, unix) of the certificate chain the "
                                 "last TLS run saw.", ("network", "target"), registry=r)
        self.tls_info = Gauge("depin_probe_tls_info",
                              "1 for the TLS version and cipher the last TLS run used.",
                              ("network", "target", "version", "cipher"), registry=r)
        self.ip_protocol = Gauge("depin_probe_ip_protocol",
                                 "IP version (4 or 6) of the connection the last run used.",
                                 ("network", "target"), registry=r)
        self.tls_insecure = Gauge("depin_probe_tls_insecure",
                                  "1 when the network's certificates are NOT verified "
                                  "(tls.insecure in the config).", ("network",), registry=r)
        self._tls_seen: dict[tuple[str, str], tuple[str, str]] = {}
        self.tls = self.registry.tls if isinstance(self.registry, SinkRegistry) \
            else TLSSnapshot()
        self.last_success = Gauge("depin_probe_last_success_timestamp_seconds",
                                  "Start time of the last ok run (0: none since start).",
                                  LABELS, registry=r)
        self.last_run = Gauge("depin_probe_last_run_timestamp_seconds",
                              "Start time of the last run (0: none since start).",
                              LABELS, registry=r)
        self.objective = Gauge("depin_sla_objective",
                               "Configured SLA target per SLI, in its unit (docs/metrics.md).",
                               ("network", "sli"), registry=r)
        self.loop_lag = Histogram("depin_monitor_event_loop_lag_seconds",
                                  "How late the prober's event loop ran a periodic wake-up.",
                                  buckets=LOOP_LAG_BUCKETS, registry=r)
        self.lateness = Histogram("depin_monitor_scheduling_lateness_seconds",
                                  "Actual start minus scheduled start of a run.",
                                  ("network",), buckets=LATENESS_BUCKETS, registry=r)
        self.lagged_runs = Counter("depin_monitor_lagged_runs",
                                   "Runs measured while the event loop lagged past the threshold.",
                                   ("network",), registry=r)
        self.probe_errors = Counter("depin_monitor_probe_errors",
                                    "Runs whose probe raised instead of returning an outcome (a "
                                    "bug in the probe); each is also a malformed run.",
                                    ("network",), registry=r)
        self.in_flight = Gauge("depin_monitor_runs_in_flight", "Probe runs currently running.",
                               registry=r)
        self.build_info = Gauge("depin_monitor_build_info", "Always 1; labels carry the build.",
                                ("version", "python_version"), registry=r)
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self.start_time = Gauge("depin_monitor_start_time_seconds",
                                "When this monitor process started its metrics (unix seconds).",
                                registry=r)
        self.start_time.set(time.time())
        if self.process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        for network, profile in self.network_profiles.items():
            self.set_objectives(network, profile)

    # -- wiring --------------------------------------------------------------------------

    def set_objectives(self, network: str, profile: SLAProfile) -> None:
        for sli, value in targets(profile).items():
            self.objective.labels(network, sli).set(value)

    def init_targets(self, series: Iterable[tuple[str, str, str]]) -> None:
        """Create the known (network, target, workload) series at 0 so rate() sees the first run."""
        for network, target, job in series:
            self.runs.labels(network, target, job)
            self.good.labels(network, target, job)
            self.output_tokens.labels(network, target, job)
            for outcome in FAILURE_OUTCOMES:
                self.failures.labels(network, target, job, outcome)
            self.last_success.labels(network, target, job).set(0)
            self.last_run.labels(network, target, job).set(0)
            self.lagged_runs.labels(network)
            self.probe_errors.labels(network)

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    # -- the sink ------------------------------------------------------------------------

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        """`metric.labels(*labels)`, kept: the sink's children are never removed (except
        tls_info's, which does not come here), and a dict lookup is a fraction of the cost of
        prometheus_client's `labels()`."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def on_result(self, result: ProbeResult) -> None:
        child = self._child
        labels = (result.network, result.target, result.job)
        child(self.runs, labels).inc()
        child(self.last_run, labels).set(result.started_at)
        if result.outcome is Outcome.OK:
            child(self.last_success, labels).set(result.started_at)
        else:
            child(self.failures, (*labels, result.outcome.value)).inc()
        done = completed(result.outcome)
        if result.ttft_s is not None:
            child(self.ttft, labels).observe(result.ttft_s)
        if done and result.duration_s is not None:
            child(self.duration, labels).observe(result.duration_s)
        if done and result.tokens_per_s is not None:
            child(self.tps, labels).observe(result.tokens_per_s)
        if result.max_gap_s is not None:
            child(self.gap, labels).observe(result.max_gap_s)
        if result.output_tokens:
            child(self.output_tokens, labels).inc(result.output_tokens)
        if is_good(result, self.network_profiles.get(result.network)):
            child(self.good, labels).inc()
        network = (result.network,)
        lateness = result.lateness_s
        if lateness is not None:
            child(self.lateness, network).observe(max(lateness, 0.0))
        if result.lagged:
            child(self.lagged_runs, network).inc()
        for phase, seconds in result.phases().items():
            child(self.phase, (result.network, result.target, phase)).observe(seconds)
        self._connection(result)
        if PROBE_ERROR in result.details:
            child(self.probe_errors, network).inc()

    def _connection(self, result: ProbeResult) -> None:
        """What the run's connection was: IP version, TLS version and cipher, cert expiry."""
        if result.ip_version is None and result.tls_version is None \
                and result.tls_cert_expiry is None:
            return  # plain HTTP on a pooled connection that never reported, or no connection
        where = (result.network, result.target)
        if result.ip_version is not None:
            self._child(self.ip_protocol, where).set(result.ip_version)
        if result.tls_cert_expiry is not None:
            self._child(self.cert_expiry, where).set(result.tls_cert_expiry)
            self.tls.saw_expiry(*where, result.tls_cert_expiry)
        if result.tls_version is not None:
            now = (result.tls_version, result.tls_cipher or "")
            before = self._tls_seen.get(where)
            if before != now:
                if before is not None:  # an info metric holds only the current label values
                    self.tls_info.remove(*where, *before)
                self._tls_seen[where] = now
                self.tls_info.labels(*where, *now).set(1)
                self.tls.saw_version(result.network, result.tls_version)

    def set_tls_insecure(self, network: str, insecure: bool) -> None:
        """Mark a network whose certificates are not verified (its config's tls.insecure)."""
        self.tls_insecure.labels(network).set(1 if insecure else 0)
        self.tls.set_insecure(network, insecure)

    # -- the prober watching itself ------------------------------------------------------

    def observe_loop_lag(self, lag_s: float) -> None:
        """An event-loop lag sample (monitor.runtime.loopwatch `on_sample` callback)."""
        self.loop_lag.observe(max(lag_s, 0.0))

    def watch_in_flight(self, count: Callable[[], float]) -> None:
        """Read the in-flight count from the scheduler at scrape time instead."""
        self.in_flight.set_function(count)

    def watch_store(self, health: Callable[[], StoreHealth]) -> None:
        """Export the store's health (read at scrape time): whether it can write, what it
        holds in memory, what it had to drop."""
        self.registry.register(StoreCollector(health))


class StoreCollector(Collector):
    """`depin_monitor_store_*` and `depin_monitor_results_dropped_total` from a StoreHealth."""

    def __init__(self, health: Callable[[], StoreHealth]) -> None:
        self.health = health

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        h = self.health()
        yield GaugeMetricFamily("depin_monitor_store_up",
                                "1 if the last write to the store succeeded, 0 while it fails "
                                "(disk full, read-only or locked database).", value=int(h.writable))
        yield GaugeMetricFamily("depin_monitor_store_buffered_results",
                                "Results held in memory, not yet written to the store.",
                                value=h.buffered)
        yield GaugeMetricFamily("depin_monitor_store_buffer_limit_results",
                                "Most results held in memory while the store fails; beyond it "
                                "the oldest are dropped (config store.buffer_results).",
                                value=h.buffer_limit)
        yield CounterMetricFamily("depin_monitor_results_dropped",
                                  "Results dropped unstored because the store failed for longer "
                                  "than its buffer lasts.", value=h.dropped)
        yield CounterMetricFamily("depin_monitor_results_stored",
                                  "Results written to the store.", value=h.written)
        yield CounterMetricFamily("depin_monitor_store_write_errors",
                                  "Failed attempts to write to the store.", value=h.write_errors)
        yield CounterMetricFamily("depin_monitor_store_rollup_errors",
                                  "Rollup refreshes that raised (a stored row they cannot fold, "
                                  "a bug); results are stored all the same.",
                                  value=h.rollup_errors)


def is_good(result: ProbeResult, profile: SLAProfile | None) -> bool:
    """A run that met every SLO of the profile at once: ok, fast enough, decoding fast enough."""
    if result.outcome is not Outcome.OK:
        return False
    if profile is None:
        return True
    if (profile.ttft_p95_s is not None and result.ttft_s is not None
            and result.ttft_s > profile.ttft_p95_s):
        return False
    if (profile.e2e_p99_s is not None and result.duration_s is not None
            and result.duration_s > profile.e2e_p99_s):
        return False
    return not (profile.decode_tps_min is not None and result.tokens_per_s is not None
                and result.tokens_per_s < profile.decode_tps_min)
