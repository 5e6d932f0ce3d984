"""Capacity ladders as Prometheus metrics (`depin_capacity_*`, docs/metrics.md): the last
ladder's figures per step (label `streams`, bounded by the configured ladder), the sustained
concurrency per network tier, and counters of ladders and the requests they sent. Capacity runs
never reach the canaries' `depin_probe_*` series: a ladder loads the network on purpose.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.core.capacity import STOPS, Ladder, Step
from monitor.core.slaprofile import SLAProfile

LABELS = ("network", "target", "workload")
STEP_LABELS = (*LABELS, "streams")

# (name, help, the step's value) of each per-step gauge
_STEP_GAUGES = (
    ("depin_capacity_step_output_tokens_per_second",
     "Aggregate output tokens/s of ok runs at this concurrency (last ladder).",
     lambda s: s.tokens_per_s),
    ("depin_capacity_step_stream_tokens_per_second",
     "Median decode rate of one stream at this concurrency (last ladder).",
     lambda s: s.stream_tps_p50),
    ("depin_capacity_step_ttft_p50_seconds",
     "Median time to first token at this concurrency (last ladder).", lambda s: s.ttft_p50_s),
    ("depin_capacity_step_ttft_p95_seconds",
     "Nearest-rank p95 time to first token at this concurrency (last ladder).",
     lambda s: s.ttft_p95_s),
    ("depin_capacity_step_error_ratio",
     "Share of the step's runs that were not ok (last ladder).", lambda s: s.error_rate),
    ("depin_capacity_step_disconnect_ratio",
     "Share of the step's runs that ended in a disconnect (last ladder).",
     lambda s: s.disconnect_rate),
    ("depin_capacity_step_runs", "Runs the step sent (last ladder).", lambda s: s.runs),
    ("depin_capacity_step_held",
     "1 if the step met the capacity criteria, 0 if it broke them (absent: not judged).",
     lambda s: None if s.held is None else int(s.held)),
)


class CapacityMetrics:
    """Sink of finished ladders into a registry (the MetricsSink's, so one /metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.step_gauges = [(Gauge(name, doc, STEP_LABELS, registry=r), value)
                            for name, doc, value in _STEP_GAUGES]
        self.sustained = Gauge("depin_capacity_sustained_streams",
                               "Concurrent streams the last ladder sustained (0: its first step "
                               "broke; absent: no step judged).", LABELS, registry=r)
        self.knee = Gauge("depin_capacity_knee_streams",
                          "Streams of the first step that broke the criteria in the last ladder "
                          "(absent: none broke).", LABELS, registry=r)
        self.last = Gauge("depin_capacity_last_ladder_timestamp_seconds",
                          "When the last ladder started (unix; 0: none since start).", LABELS,
                          registry=r)
        self.ladders = Counter("depin_capacity_ladders", "Ladders climbed, by why they stopped.",
                               (*LABELS, "stopped"), registry=r)
        self.requests = Counter("depin_capacity_requests",
                                "Requests the ladders sent (what they cost).", LABELS,
                                registry=r)
        self.objective = Gauge("depin_capacity_objective_streams",
                               "The SLA capacity item: concurrent streams the network must "
                               "sustain.", ("network",), registry=r)
        self._steps: dict[tuple[str, str, str], set[int]] = {}

    def init(self, series: Iterable[tuple[str, str, str]],
             profiles: Mapping[str, SLAProfile]) -> None:
        """Known (network, target, workload) ladders at 0, and each network's capacity item."""
        for labels in series:
            self.last.labels(*labels).set(0)
            self.requests.labels(*labels)
            for stop in STOPS:
                self.ladders.labels(*labels, stop)
        for network, profile in profiles.items():
            if profile.capacity is not None:
                self.objective.labels(network).set(profile.capacity.streams)

    def on_ladder(self, ladder: Ladder) -> None:
        labels = (ladder.network, ladder.target, ladder.job)
        self.last.labels(*labels).set(ladder.started_at)
        self.ladders.labels(*labels, ladder.stopped.value).inc()
        self.requests.labels(*labels).inc(ladder.requests)
        for gauge, value in ((self.sustained, ladder.sustained), (self.knee, ladder.knee)):
            if value is None:
                _remove(gauge, labels)
            else:
                gauge.labels(*labels).set(value)
        before = self._steps.get(labels, set())
        now = {step.streams for step in ladder.steps}
        for streams in before - now:  # a step the last ladder did not reach shows nothing
            for gauge, _ in self.step_gauges:
                _remove(gauge, (*labels, str(streams)))
        for step in ladder.steps:
            self._set_step(labels, step)
        self._steps[labels] = now

    def _set_step(self, labels: tuple[str, str, str], step: Step) -> None:
        for gauge, value in self.step_gauges:
            v = value(step)
            if v is None:
                _remove(gauge, (*labels, str(step.streams)))
            else:
                gauge.labels(*labels, str(step.streams)).set(v)


def _remove(gauge: Gauge, labels: tuple[str, ...]) -> None:
    with contextlib.suppress(KeyError):  # never set: nothing to remove
        gauge.remove(*labels)
