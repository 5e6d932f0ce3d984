"""Model equality verdicts on /metrics (docs/metrics.md, "Model equality").

Labels: `network`, `model` (the network's configured model id for the tier) and `reference`
(the reference network's name or the sample file's name): all configured values, so the
series are bounded by the config's `equality.compare` entries; `verdict` (three values) on
the tests counter only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.core.comparison import Comparison
from monitor.core.equality import EqualityResult, EqualitySettings, Verdict

LABELS = ("network", "model", "reference")


class EqualityMetrics:
    """A verdict sink (monitor.runtime.equality.VerdictSink) into the monitor's registry."""

    def __init__(self, registry: CollectorRegistry, settings: EqualitySettings) -> None:
        self.settings = settings
        self.p_value = Gauge(
            "depin_model_equality_p_value",
            "Permutation p-value of the latest model equality test (NaN: not enough samples); "
            "small means the network's completions differ from the reference's.",
            LABELS, registry=registry)
        self.samples = Gauge("depin_model_equality_samples",
                             "Completions the latest test used from the network.", LABELS,
                             registry=registry)
        self.in_a_row = Gauge("depin_model_equality_differs_in_a_row",
                              "Latest tests in a row whose verdict was 'differs'.", LABELS,
                              registry=registry)
        self.alarm = Gauge("depin_model_equality_alarm",
                           "1 when the last `equality.consecutive` tests all said 'differs' "
                           "(the alert's condition; false alarms <= alpha^consecutive a test).",
                           LABELS, registry=registry)
        self.last_test = Gauge("depin_model_equality_last_test_timestamp_seconds",
                               "When the latest test's sampling started (0: none yet).", LABELS,
                               registry=registry)
        self.tests = Counter("depin_model_equality_tests",
                             "Model equality tests, by verdict.", (*LABELS, "verdict"),
                             registry=registry)
        self.alpha = Gauge("depin_model_equality_alpha",
                           "The configured level of one test: a p-value below it is "
                           "'differs'.", registry=registry)
        self.alpha.set(settings.alpha)

    def init(self, comparisons: Iterable[Comparison]) -> None:
        """Known series at start: no test yet."""
        for c in comparisons:
            labels = c.key
            self.p_value.labels(*labels).set(math.nan)
            self.samples.labels(*labels).set(0)
            self.in_a_row.labels(*labels).set(0)
            self.alarm.labels(*labels).set(0)
            self.last_test.labels(*labels).set(0)
            for verdict in Verdict:
                self.tests.labels(*labels, verdict.value)

    def on_verdict(self, result: EqualityResult) -> None:
        labels = (result.network, result.model, result.reference)
        self.p_value.labels(*labels).set(math.nan if result.p_value is None
                                         else result.p_value)
        self.samples.labels(*labels).set(result.samples)
        self.in_a_row.labels(*labels).set(result.consecutive_differs)
        self.alarm.labels(*labels).set(
            1 if result.consecutive_differs >= self.settings.consecutive else 0)
        self.last_test.labels(*labels).set(result.started_at)
        self.tests.labels(*labels, result.verdict.value).inc()
