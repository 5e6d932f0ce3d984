"""The store-owned SLA figures on /metrics: this calendar month per network (attainment,
error budget left, burn rate), evaluated at scrape time through monitor.analysis.queries (the
store's daily rollups) and cached for a few seconds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.analysis.queries import Aggregate, aggregate_stores
from monitor.analysis.sla import SLAFigure, SLAReport, judge, month_bounds
from monitor.core.logs import OncePer
from monitor.core.slaprofile import MaintenanceWindow, SLAProfile
from monitor.storage.filters import RunFilter

log = logging.getLogger(__name__)
log.addFilter(OncePer(60.0))  # a broken store fails every scrape: say so once a minute


def month_reports(paths: Sequence[str | Path], profiles: Mapping[str, SLAProfile], *,
                  at: float | None = None, maintenance: Sequence[MaintenanceWindow] = ()
                  ) -> list[SLAReport]:
    """Each network (network -> its profile) judged over the UTC calendar month containing
    `at` (default now), maintenance windows excluded, from store files."""
    start, end = month_bounds(time.time() if at is None else at)
    month = aggregate_stores(paths, by=("network",), maintenance=maintenance,
                             runs=RunFilter(since=start, until=end, networks=list(profiles)))
    return [judge(month.groups.get((network,), Aggregate()), profile, network=network,
                  start=start, end=end)
            for network, profile in profiles.items()]


def month_figures_source(path: str | Path, profiles: Mapping[str, SLAProfile],
                         maintenance: Iterable[MaintenanceWindow] = ()
                         ) -> Callable[[], list[SLAFigure]]:
    """A zero-argument callable for SLACollector: this month's figures from a store file. Each
    call opens its own read-only connections, so a scrape may run it in another thread."""
    windows = tuple(maintenance)

    def source() -> list[SLAFigure]:
        return [r.figure() for r in month_reports([path], profiles, maintenance=windows)]

    return source


class SLACollector(Collector):
    """Exposes `source()` (the month's SLA figures) at scrape time, cached for `ttl_s` seconds.

    A failing source keeps the previous figures (and logs); the scrape never fails because of it.
    """

    def __init__(self, source: Callable[[], Iterable[SLAFigure]], ttl_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.ttl_s = ttl_s
        self.clock = clock
        self._figures: list[SLAFigure] = []
        self._at: float | None = None
        self._duration_s = 0.0
        self.evaluations = 0

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def _refresh(self) -> None:
        now = self.clock()
        if self._at is not None and now - self._at < self.ttl_s:
            return
        start = time.perf_counter()
        try:
            self._figures = list(self.source())
            self.evaluations += 1
        except Exception:  # a broken store must not break /metrics
            log.exception("SLA evaluation for /metrics failed; keeping the previous figures")
        self._duration_s = time.perf_counter() - start
        self._at = now

    def collect(self) -> Iterator[Metric]:
        self._refresh()
        runs = GaugeMetricFamily("depin_sla_month_runs",
                                 "Runs counted this calendar month (maintenance excluded).",
                                 labels=["network"])
        avail = GaugeMetricFamily("depin_sla_month_availability_ratio",
                                  "Share of ok runs this calendar month.", labels=["network"])
        avail_x = GaugeMetricFamily(
            "depin_sla_month_availability_excluding_rate_limited_ratio",
            "Share of ok runs this calendar month, rate-limited runs left out.",
            labels=["network"])
        attained = GaugeMetricFamily("depin_sla_month_attained",
                                     "1 if the SLI meets its target this calendar month, else 0.",
                                     labels=["network", "sli"])
        budget = GaugeMetricFamily("depin_sla_month_error_budget_remaining_ratio",
                                   "Share of the month's error budget left (negative: overspent).",
                                   labels=["network", "sli"])
        burn = GaugeMetricFamily("depin_sla_month_burn_rate",
                                 "Month-to-date error ratio divided by the error budget.",
                                 labels=["network", "sli"])
        for f in self._figures:
            runs.add_metric([f.network], f.runs)
            if f.availability is not None:
                avail.add_metric([f.network], f.availability)
            if f.availability_excl_rate_limited is not None:
                avail_x.add_metric([f.network], f.availability_excl_rate_limited)
            for sli, ok in f.attained.items():
                attained.add_metric([f.network, sli], 1.0 if ok else 0.0)
            for sli, value in f.budget_remaining.items():
                budget.add_metric([f.network, sli], value)
            for sli, value in f.burn_rate.items():
                burn.add_metric([f.network, sli], value)
        took = GaugeMetricFamily("depin_sla_evaluation_duration_seconds",
                                 "How long the last month SLA evaluation from the store took.")
        took.add_metric([], self._duration_s)
        yield from (runs, avail, avail_x, attained, budget, burn, took)
