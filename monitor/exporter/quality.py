"""Quality audits on /metrics (docs/metrics.md, "Output quality").

Labels: `network`, `model` (the network's configured model id for the tier) and `reference`
(the reference network's name or the answer file's name): configured values, so the series
are bounded by the config's `quality.compare` entries; `family` (the suite's nine families)
on the per-family accuracy; `verdict` (three values) on the audits counter only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.core.comparison import Comparison
from monitor.core.quality import Answer, QualityResult, QualitySettings, Verdict

LABELS = ("network", "model", "reference")


def _value(v: float | None) -> float:
    return math.nan if v is None else v


class QualityMetrics:
    """An audit sink (monitor.runtime.quality.AuditSink) into the monitor's registry."""

    def __init__(self, registry: CollectorRegistry, settings: QualitySettings) -> None:
        self.settings = settings

        def gauge(name: str, doc: str, labels: Sequence[str] = LABELS) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        self.accuracy = gauge(
            "depin_quality_accuracy", "The network's share of correct answers in the latest "
            "audit, on the items both sides answered (NaN: none).")
        self.accuracy_low = gauge("depin_quality_accuracy_low",
                                  "Lower bound of its 95 % Wilson interval.")
        self.accuracy_high = gauge("depin_quality_accuracy_high",
                                   "Upper bound of its 95 % Wilson interval.")
        self.reference_accuracy = gauge(
            "depin_quality_reference_accuracy",
            "The reference's share of correct answers on the same items.")
        self.difference = gauge(
            "depin_quality_difference",
            "Accuracy minus the reference's, on the same items (negative: worse).")
        self.difference_low = gauge(
            "depin_quality_difference_low",
            "Lower bound of the difference's 95 % interval (Newcombe).")
        self.difference_high = gauge(
            "depin_quality_difference_high",
            "Upper bound of the difference's 95 % interval (Newcombe).")
        self.p_value = gauge(
            "depin_quality_p_value", "McNemar's one-sided exact p-value of the latest audit "
            "(NaN: not enough items); small means worse than the reference.")
        self.pairs = gauge("depin_quality_pairs",
                           "Items of the latest audit both sides answered.")
        self.family_accuracy = gauge(
            "depin_quality_family_accuracy",
            "The network's accuracy per task family in the latest audit.", (*LABELS, "family"))
        self.in_a_row = gauge(
            "depin_quality_worse_in_a_row",
            "Latest audits in a row whose verdict was 'worse than reference'.")
        self.alarm = gauge(
            "depin_quality_alarm", "1 when the last `quality.consecutive` audits all said "
            "'worse than reference' (the alert's condition).")
        self.last_audit = gauge("depin_quality_last_audit_timestamp_seconds",
                                "When the latest audit started (0: none yet).")
        self.audits = Counter("depin_quality_audits", "Quality audits, by verdict.",
                              (*LABELS, "verdict"), registry=registry)
        self.alpha = Gauge("depin_quality_alpha", "The configured one-sided level of an "
                           "audit's test.", registry=registry)
        self.alpha.set(settings.alpha)

    def init(self, comparisons: Iterable[Comparison]) -> None:
        """Known series at start: no audit yet."""
        for c in comparisons:
            for g in (self.accuracy, self.accuracy_low, self.accuracy_high,
                      self.reference_accuracy, self.difference, self.difference_low,
                      self.difference_high, self.p_value):
                g.labels(*c.key).set(math.nan)
            for g in (self.pairs, self.in_a_row, self.alarm, self.last_audit):
                g.labels(*c.key).set(0)
            for verdict in Verdict:
                self.audits.labels(*c.key, verdict.value)

    def on_audit(self, result: QualityResult,
                 answers: Sequence[tuple[str, str, str, str, Answer]] = ()) -> None:
        labels = (result.network, result.model, result.reference)
        for gauge, value in ((self.accuracy, result.accuracy),
                             (self.accuracy_low, result.accuracy_low),
                             (self.accuracy_high, result.accuracy_high),
                             (self.reference_accuracy, result.reference_accuracy),
                             (self.difference, result.difference),
                             (self.difference_low, result.difference_low),
                             (self.difference_high, result.difference_high),
                             (self.p_value, result.p_value)):
            gauge.labels(*labels).set(_value(value))
        self.pairs.labels(*labels).set(result.pairs)
        for family, cell in (result.by_family or {}).items():
            self.family_accuracy.labels(*labels, family).set(
                cell.correct / cell.pairs if cell.pairs else math.nan)
        self.in_a_row.labels(*labels).set(result.consecutive_worse)
        self.alarm.labels(*labels).set(
            1 if result.consecutive_worse >= self.settings.consecutive else 0)
        self.last_audit.labels(*labels).set(result.started_at)
        self.audits.labels(*labels, result.verdict.value).inc()
