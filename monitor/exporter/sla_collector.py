"""The store-owned SLA figures on /metrics: this calendar month per network (attainment,
error budget left, burn rate), evaluated through monitor.analysis.queries (the store's daily
rollups) and cached. Only the collector's creation (the monitor's start-up) waits for an
evaluation; a scrape serves the cached figures and, when they are stale, starts a refresh in
the background: in a helper process when asked (`processes=True`, what `run` does), so that
judging a month of hundreds of series (seconds, benchmarks/RESULTS.md) never competes with
the probes for the interpreter, and no more often than keeps that helper 5 % busy."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
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

BUSY_FACTOR = 20  # refresh no sooner than 20x the last evaluation took: <= 5 % busy


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


@dataclass(frozen=True)
class MonthFigures:
    """A zero-argument callable for SLACollector: this month's figures from a store file. Each
    call opens its own read-only connections; it pickles, so it can run in another process."""

    path: str
    profiles: Mapping[str, SLAProfile]
    maintenance: tuple[MaintenanceWindow, ...] = ()

    def __call__(self) -> list[SLAFigure]:
        return [r.figure() for r in month_reports([self.path], self.profiles,
                                                  maintenance=self.maintenance)]


def month_figures_source(path: str | Path, profiles: Mapping[str, SLAProfile],
                         maintenance: Iterable[MaintenanceWindow] = ()) -> MonthFigures:
    """This month's figures from a store file (see MonthFigures)."""
    return MonthFigures(str(path), dict(profiles), tuple(maintenance))


def _listed(source: Callable[[], Iterable[SLAFigure]]) -> list[SLAFigure]:
    return list(source())


class SLACollector(Collector):
    """Exposes `source()` (the month's SLA figures), refreshed when older than `ttl_s` seconds.

    It evaluates once when created; a scrape then serves the cached figures and, when they are
    stale, starts one refresh in the background: a thread, or with `processes=True` a helper
    process (the source must then pickle, as MonthFigures does). Stale means older than
    `ttl_s`, or than 20 times the last evaluation took, so that refreshing a big store keeps
    its helper busy at most 5 % of the time. `wait()` joins a refresh in
    progress; `close()` stops the helper process. A failing source keeps the previous figures
    (and logs); the scrape never fails because of it.
    """

    def __init__(self, source: Callable[[], Iterable[SLAFigure]], ttl_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, processes: bool = False) -> None:
        self.source = source
        self.ttl_s = ttl_s
        self.clock = clock
        self.processes = processes
        self._figures: list[SLAFigure] = []
        self._duration_s = 0.0
        self._lock = threading.Lock()
        self._idle = threading.Event()  # no refresh in progress
        self._idle.set()
        self._pool: ProcessPoolExecutor | None = None
        self.evaluations = 0
        self._at = self.clock()
        self._evaluated(self._timed())

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def _timed(self) -> Future[list[SLAFigure]]:
        """The source's figures, evaluated in this thread, as a finished future (an error
        included)."""
        done: Future[list[SLAFigure]] = Future()
        start = time.perf_counter()
        try:
            done.set_result(list(self.source()))
        except Exception as exc:  # a broken store must not break /metrics
            done.set_exception(exc)
        self._duration_s = time.perf_counter() - start
        return done

    def _evaluated(self, done: Future[list[SLAFigure]]) -> None:
        try:
            figures = done.result()
        except Exception:
            log.exception("SLA evaluation for /metrics failed; keeping the previous figures")
            return
        with self._lock:
            self._figures = figures
            self.evaluations += 1

    def _refresh_if_stale(self) -> None:
        now = self.clock()
        with self._lock:
            if now - self._at < max(self.ttl_s, BUSY_FACTOR * self._duration_s) \
                    or not self._idle.is_set():
                return
            self._at = now
            self._idle.clear()
        started = time.perf_counter()
        refresh: Future[list[SLAFigure]]
        if self.processes:
            if self._pool is None:
                # spawn: a fresh interpreter that imports only what the evaluation needs
                self._pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"))
            refresh = self._pool.submit(_listed, self.source)
        else:
            refresh = Future()
            threading.Thread(target=self._in_thread, args=(refresh,), daemon=True,
                             name="sla-figures").start()
        refresh.add_done_callback(lambda done: self._finished(done, started))

    def _in_thread(self, result: Future[list[SLAFigure]]) -> None:
        done = self._timed()
        error = done.exception()
        if error is not None:
            result.set_exception(error)
        else:
            result.set_result(done.result())

    def _finished(self, done: Future[list[SLAFigure]], started: float) -> None:
        try:
            if self.processes:  # the helper's time, as seen from here
                self._duration_s = time.perf_counter() - started
            self._evaluated(done)
        finally:
            self._idle.set()

    def wait(self, timeout_s: float | None = None) -> None:
        """Until a background refresh in progress has finished and stored its figures."""
        self._idle.wait(timeout_s)

    def close(self) -> None:
        """Stop the helper process (a refresh in progress is abandoned)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def exposition_token(self) -> tuple[int, float]:
        """Changes whenever `collect` would yield something else (monitor.exporter.exposition
        keeps the encoded text until then); starts a refresh when the figures are stale."""
        self._refresh_if_stale()
        with self._lock:
            return self.evaluations, self._duration_s

    def collect(self) -> Iterator[Metric]:
        """The figures, a family at a time (the exposition hands the loop back between
        them: at hundreds of networks each takes milliseconds to build)."""
        self._refresh_if_stale()
        with self._lock:
            figures, duration_s = list(self._figures), self._duration_s
        runs = GaugeMetricFamily("depin_sla_month_runs",
                                 "Runs counted this calendar month (maintenance excluded).",
                                 labels=["network"])
        for f in figures:
            runs.add_metric([f.network], f.runs)
        yield runs
        avail = GaugeMetricFamily("depin_sla_month_availability_ratio",
                                  "Share of ok runs this calendar month.", labels=["network"])
        for f in figures:
            if f.availability is not None:
                avail.add_metric([f.network], f.availability)
        yield avail
        avail_x = GaugeMetricFamily(
            "depin_sla_month_availability_excluding_rate_limited_ratio",
            "Share of ok runs this calendar month, rate-limited runs left out.",
            labels=["network"])
        for f in figures:
            if f.availability_excl_rate_limited is not None:
                avail_x.add_metric([f.network], f.availability_excl_rate_limited)
        yield avail_x
        attained = GaugeMetricFamily("depin_sla_month_attained",
                                     "1 if the SLI meets its target this calendar month, else 0.",
                                     labels=["network", "sli"])
        for f in figures:
            for sli, ok in f.attained.items():
                attained.add_metric([f.network, sli], 1.0 if ok else 0.0)
        yield attained
        budget = GaugeMetricFamily("depin_sla_month_error_budget_remaining_ratio",
                                   "Share of the month's error budget left (negative: overspent).",
                                   labels=["network", "sli"])
        for f in figures:
            for sli, value in f.budget_remaining.items():
                budget.add_metric([f.network, sli], value)
        yield budget
        burn = GaugeMetricFamily("depin_sla_month_burn_rate",
                                 "Month-to-date error ratio divided by the error budget.",
                                 labels=["network", "sli"])
        for f in figures:
            for sli, value in f.burn_rate.items():
                burn.add_metric([f.network, sli], value)
        yield burn
        took = GaugeMetricFamily("depin_sla_evaluation_duration_seconds",
                                 "How long the last month SLA evaluation from the store took.")
        took.add_metric([], duration_s)
        yield took
