"""Fingerprints on /metrics (docs/metrics.md, "Fingerprint").

Labels: `network` and `model` (the network's configured model id for the tier): configured
values, so the series are bounded by the config's `fingerprint.networks` entries; `verdict`
(five values) on the runs counter only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.core.fingerprint import FingerprintResult, FingerprintSettings, Target, Verdict

LABELS = ("network", "model")
ALARMING = (Verdict.CHANGED, Verdict.DIFFERS)


class FingerprintMetrics:
    """A verdict sink (monitor.runtime.fingerprint.VerdictSink) into the monitor's registry."""

    def __init__(self, registry: CollectorRegistry, settings: FingerprintSettings) -> None:
        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, LABELS, registry=registry)

        self.distance = gauge("depin_fingerprint_distance",
                              "Mean total-variation distance of the latest run's first-token "
                              "distributions from the trailing baseline's (NaN: no test).")
        self.p_value = gauge("depin_fingerprint_p_value",
                             "Permutation p-value of the latest run against the trailing "
                             "baseline (NaN: no test); below alpha: the model changed.")
        self.reference_distance = gauge(
            "depin_fingerprint_reference_distance",
            "Mean total-variation distance of the latest run from the reference's (the "
            "reference network's samples of that run, else the set's reference).")
        self.reference_p_value = gauge(
            "depin_fingerprint_reference_p_value",
            "Permutation p-value of the latest run against the reference (the reference "
            "network's samples of that run, else the set's reference).")
        self.alarm = gauge("depin_fingerprint_alarm",
                           "1 when the latest run said 'changed' or 'differs from reference' "
                           "(the alert's condition; false alarms <= 2 alpha a run).")
        self.changed = gauge("depin_fingerprint_last_change_timestamp_seconds",
                             "When the latest run that said 'changed' started (0: none "
                             "among the runs kept from the store).")
        self.last_run = gauge("depin_fingerprint_last_run_timestamp_seconds",
                              "When the latest fingerprint run started (0: none yet).")
        self.set_version = gauge("depin_fingerprint_set_version",
                                 "Version of the border-input set in use (0: none yet).")
        self.runs = Counter("depin_fingerprint_runs", "Fingerprint runs, by verdict.",
                            (*LABELS, "verdict"), registry=registry)
        self.requests = Counter("depin_fingerprint_requests",
                                "Requests the fingerprint sent (discoveries and a run's "
                                "requests to its reference network included).",
                                LABELS, registry=registry)
        self.failed = Counter("depin_fingerprint_failed",
                              "Fingerprint requests that did not complete (errors, "
                              "disconnects, no capacity, cut answers) and answers that were "
                              "no sample (without top_logprobs where the set needs them): "
                              "counted here, never read as a first token.",
                              LABELS, registry=registry)
        self.alpha = Gauge("depin_fingerprint_alpha", "The configured level of one test.",
                           registry=registry)
        self.alpha.set(settings.alpha)

    def init(self, targets: Iterable[Target]) -> None:
        """Known series at start: no run yet."""
        for t in targets:
            labels = t.key
            for g in (self.distance, self.p_value, self.reference_distance,
                      self.reference_p_value):
                g.labels(*labels).set(math.nan)
            for g in (self.alarm, self.changed, self.last_run, self.set_version):
                g.labels(*labels).set(0)
            self.requests.labels(*labels)
            self.failed.labels(*labels)
            for verdict in Verdict:
                self.runs.labels(*labels, verdict.value)

    def on_fingerprint(self, result: FingerprintResult) -> None:
        labels = (result.network, result.model)

        def nan(x: float | None) -> float:
            return math.nan if x is None else x

        self.distance.labels(*labels).set(nan(result.distance))
        self.p_value.labels(*labels).set(nan(result.p_value))
        self.reference_distance.labels(*labels).set(nan(result.reference_distance))
        self.reference_p_value.labels(*labels).set(nan(result.reference_p_value))
        self.alarm.labels(*labels).set(int(result.verdict in ALARMING))
        if result.verdict is Verdict.CHANGED:
            self.changed.labels(*labels).set(result.started_at)
        self.last_run.labels(*labels).set(result.started_at)
        self.set_version.labels(*labels).set(result.set_version)
        self.runs.labels(*labels, result.verdict.value).inc()
        self.requests.labels(*labels).inc(result.requests)
        self.failed.labels(*labels).inc(result.failed)
