"""SLA evaluation: judge a network's runs against its SLA profile (docs/sla.md).

Every SLI is event-based, like Prometheus' recording rules: each run is good or bad for it, the
objective is the share of good runs, the error budget is 1 - objective.

    availability       bad: outcome is not ok                      objective: profile.availability
    ttft_p95           bad: TTFT > ttft_p95_s (runs with a TTFT)   objective: 0.95
    e2e_p99            bad: duration > e2e_p99_s (completed runs)  objective: 0.99
    disconnect_rate    bad: outcome is disconnect                  objective: 1 - disconnect_rate
    decode_tps         bad: tokens/s < floor (completed runs)      objective: 0.5 (the median)
    wrong_output_rate  bad: wrong_output (completed runs)          objective: 1 - wrong_output_rate

"p95 <= 2 s" is the same statement as "at most 5 % of runs slower than 2 s" for the nearest-rank
percentile, so the verdict, the budget and the burn rate agree. Pure functions over ProbeResults
(or store rows with the same field names); `evaluate_store_*` are thin adapters over the store.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.metrics import (
    SLI_AVAILABILITY,
    SLI_DECODE,
    SLI_DISCONNECT,
    SLI_E2E,
    SLI_TTFT,
    SLI_WRONG_OUTPUT,
    SLAFigure,
)
from monitor.result import Outcome
from monitor.slaprofile import MaintenanceWindow, SLAProfile
from monitor.stats import quantile

DAY_S = 86400.0
_COMPLETED = (Outcome.OK.value, Outcome.WRONG_OUTPUT.value)


@dataclass(frozen=True, slots=True)
class SLIResult:
    """One SLI over one period: counts, measured value, verdict, budget and burn."""

    sli: str
    target: float  # the configured target in the SLI's unit (ratio, seconds, tokens/s)
    objective: float  # required share of good events
    total: int  # events the SLI is judged on
    bad: int
    value: float | None  # measured in the SLI's unit: ratio, p95/p99 seconds, median tokens/s

    @property
    def error_budget(self) -> float:
        return 1.0 - self.objective

    @property
    def error_ratio(self) -> float | None:
        return self.bad / self.total if self.total else None

    @property
    def attained(self) -> bool | None:
        """None without data; else whether at most the budgeted share of events was bad."""
        ratio = self.error_ratio
        return None if ratio is None else ratio <= self.error_budget + 1e-12

    @property
    def burn_rate(self) -> float | None:
        return burn_rate(self.error_ratio, self.objective)

    @property
    def budget_remaining(self) -> float | None:
        return budget_remaining(self.error_ratio, self.objective)


@dataclass(frozen=True, slots=True)
class SLAReport:
    """One network judged against its profile over [start, end)."""

    network: str
    profile: str
    start: float
    end: float
    runs: int  # runs counted (maintenance excluded)
    excluded_runs: int  # runs that fell into a maintenance window
    ok: int
    rate_limited: int
    slis: tuple[SLIResult, ...]

    @property
    def availability(self) -> float | None:
        return self.ok / self.runs if self.runs else None

    @property
    def availability_excl_rate_limited(self) -> float | None:
        n = self.runs - self.rate_limited
        return self.ok / n if n else None

    @property
    def attained(self) -> bool | None:
        """Every SLI with data attained; None if no SLI has data."""
        verdicts = [s.attained for s in self.slis if s.attained is not None]
        return all(verdicts) if verdicts else None

    def sli(self, name: str) -> SLIResult | None:
        return next((s for s in self.slis if s.sli == name), None)

    def figure(self) -> SLAFigure:
        """The scrape-time figures the metrics' SLACollector exposes."""
        return SLAFigure(
            network=self.network, runs=self.runs, availability=self.availability,
            availability_excl_rate_limited=self.availability_excl_rate_limited,
            attained={s.sli: bool(s.attained) for s in self.slis if s.attained is not None},
            budget_remaining={s.sli: s.budget_remaining for s in self.slis
                              if s.budget_remaining is not None},
            burn_rate={s.sli: s.burn_rate for s in self.slis if s.burn_rate is not None},
        )


# -- the maths ---------------------------------------------------------------------------


def burn_rate(error_ratio: float | None, objective: float) -> float | None:
    """How fast the budget burns: 1.0 spends exactly the budget over the SLO window."""
    if error_ratio is None:
        return None
    budget = 1.0 - objective
    if budget <= 0:
        return math.inf if error_ratio > 0 else 0.0
    return error_ratio / budget


def budget_remaining(error_ratio: float | None, objective: float) -> float | None:
    """Share of the error budget left: 1 - error_ratio / budget (negative once overspent)."""
    rate = burn_rate(error_ratio, objective)
    return None if rate is None else 1.0 - rate


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank q-quantile (the ceil(q*n)-th smallest value); None for no values."""
    return quantile(sorted(values), q)


def month_bounds(t: float) -> tuple[float, float]:
    """[start, end) of the UTC calendar month containing unix time t."""
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    start = dt.datetime(d.year, d.month, 1, tzinfo=dt.UTC)
    days = calendar.monthrange(d.year, d.month)[1]
    return start.timestamp(), start.timestamp() + days * DAY_S


def _get(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, Mapping) else getattr(row, name)


def _outcome(row: Any) -> str:
    value = _get(row, "outcome")
    return value.value if isinstance(value, Outcome) else str(value)


@dataclass(slots=True)
class Counts:
    """The event counts every SLI verdict is made of (from rows, or from SQL aggregates)."""

    runs: int = 0
    excluded: int = 0
    ok: int = 0
    rate_limited: int = 0
    disconnects: int = 0
    completed: int = 0  # ok or wrong_output: reached the terminal event
    wrong: int = 0
    ttft_n: int = 0
    ttft_slow: int = 0
    e2e_n: int = 0
    e2e_slow: int = 0
    decode_n: int = 0
    decode_slow: int = 0


def report_from_counts(c: Counts, profile: SLAProfile, *, network: str, start: float,
                       end: float, values: Mapping[str, float | None] | None = None
                       ) -> SLAReport:
    """The SLA report from counts; `values` are the measured quantiles when known."""
    values = values or {}
    slis: list[SLIResult] = []
    if profile.availability is not None:
        slis.append(SLIResult(SLI_AVAILABILITY, profile.availability, profile.availability,
                              c.runs, c.runs - c.ok, c.ok / c.runs if c.runs else None))
    if profile.ttft_p95_s is not None:
        slis.append(SLIResult(SLI_TTFT, profile.ttft_p95_s, 0.95, c.ttft_n, c.ttft_slow,
                              values.get(SLI_TTFT)))
    if profile.e2e_p99_s is not None:
        slis.append(SLIResult(SLI_E2E, profile.e2e_p99_s, 0.99, c.e2e_n, c.e2e_slow,
                              values.get(SLI_E2E)))
    if profile.disconnect_rate is not None:
        slis.append(SLIResult(SLI_DISCONNECT, profile.disconnect_rate,
                              1.0 - profile.disconnect_rate, c.runs, c.disconnects,
                              c.disconnects / c.runs if c.runs else None))
    if profile.decode_tps_min is not None:
        slis.append(SLIResult(SLI_DECODE, profile.decode_tps_min, 0.5, c.decode_n,
                              c.decode_slow, values.get(SLI_DECODE)))
    if profile.wrong_output_rate is not None:
        slis.append(SLIResult(SLI_WRONG_OUTPUT, profile.wrong_output_rate,
                              1.0 - profile.wrong_output_rate, c.completed, c.wrong,
                              c.wrong / c.completed if c.completed else None))
    return SLAReport(network=network, profile=profile.name, start=start, end=end, runs=c.runs,
                     excluded_runs=c.excluded, ok=c.ok, rate_limited=c.rate_limited,
                     slis=tuple(slis))


def evaluate(
    rows: Iterable[Any],
    profile: SLAProfile,
    *,
    network: str,
    start: float,
    end: float,
    maintenance: Iterable[MaintenanceWindow] = (),
) -> SLAReport:
    """Judge `network`'s runs started in [start, end) against `profile`, maintenance excluded.

    `rows` may hold other networks' runs and runs outside the period: they are skipped.
    """
    windows = [w for w in maintenance if not w.networks or network in w.networks]
    c = Counts()
    ttfts: list[float] = []
    durations: list[float] = []
    rates: list[float] = []
    for row in rows:
        if _get(row, "network") != network:
            continue
        t = float(_get(row, "started_at"))
        if not start <= t < end:
            continue
        if any(w.covers(network, t) for w in windows):
            c.excluded += 1
            continue
        c.runs += 1
        outcome = _outcome(row)
        c.ok += outcome == Outcome.OK.value
        c.rate_limited += outcome == Outcome.RATE_LIMITED.value
        c.disconnects += outcome == Outcome.DISCONNECT.value
        ttft = _get(row, "ttft_s")
        if ttft is not None:
            ttfts.append(float(ttft))
        if outcome in _COMPLETED:
            c.completed += 1
            c.wrong += outcome == Outcome.WRONG_OUTPUT.value
            duration = _get(row, "duration_s")
            if duration is not None:
                durations.append(float(duration))
            tps = _get(row, "tokens_per_s")
            if tps is not None:
                rates.append(float(tps))
    values: dict[str, float | None] = {}
    if profile.ttft_p95_s is not None:
        c.ttft_n, c.ttft_slow = len(ttfts), sum(v > profile.ttft_p95_s for v in ttfts)
        values[SLI_TTFT] = nearest_rank(ttfts, 0.95)
    if profile.e2e_p99_s is not None:
        c.e2e_n, c.e2e_slow = len(durations), sum(v > profile.e2e_p99_s for v in durations)
        values[SLI_E2E] = nearest_rank(durations, 0.99)
    if profile.decode_tps_min is not None:
        c.decode_n, c.decode_slow = len(rates), sum(v < profile.decode_tps_min for v in rates)
        # the median from the top: at least half the runs decode at this rate or faster
        median = nearest_rank([-v for v in rates], 0.5)
        values[SLI_DECODE] = None if median is None else -median
    return report_from_counts(c, profile, network=network, start=start, end=end, values=values)


def evaluate_rolling(rows: Iterable[Any], profile: SLAProfile, *, network: str,
                     now: float | None = None,
                     maintenance: Iterable[MaintenanceWindow] = ()) -> SLAReport:
    """The profile's rolling window (window_days) ending now."""
    end = time.time() if now is None else now
    return evaluate(rows, profile, network=network, start=end - profile.window_days * DAY_S,
                    end=end, maintenance=maintenance)


def evaluate_month(rows: Iterable[Any], profile: SLAProfile, *, network: str,
                   at: float | None = None,
                   maintenance: Iterable[MaintenanceWindow] = ()) -> SLAReport:
    """The UTC calendar month containing `at` (default now), maintenance windows excluded."""
    start, end = month_bounds(time.time() if at is None else at)
    return evaluate(rows, profile, network=network, start=start, end=end,
                    maintenance=maintenance)


# -- thin adapters over the store --------------------------------------------------------
# SQL aggregates (no row leaves SQLite), so a month of runs is cheap enough for a scrape.

_DONE = "outcome in ('ok', 'wrong_output')"
_COUNTS_SQL = f"""
select count(*), sum(outcome = 'ok'), sum(outcome = 'rate_limited'),
  sum(outcome = 'disconnect'), sum({_DONE}), sum(outcome = 'wrong_output'),
  sum(ttft_s is not null), sum(ttft_s > :ttft),
  sum({_DONE} and duration_s is not null), sum({_DONE} and duration_s > :e2e),
  sum({_DONE} and tokens_per_s is not null), sum({_DONE} and tokens_per_s < :tps)
from probe_results
where network = :network and started_at >= :start and started_at < :end
"""


def _db(store: Any) -> Any:
    return getattr(store, "db", store)


def store_counts(store: Any, profile: SLAProfile, network: str, start: float, end: float,
                 maintenance: Iterable[MaintenanceWindow] = ()) -> Counts:
    """Counts of one network in [start, end) from monitor.store (or a sqlite-utils Database)."""
    db = _db(store)
    # Not Table.exists(): a merged store (store.open_stores) is a temporary view.
    if not db.execute("select 1 from sqlite_master where name = 'probe_results' union all "
                      "select 1 from sqlite_temp_master where name = 'probe_results'"
                      ).fetchone():
        return Counts()
    params: dict[str, Any] = {"network": network, "start": start, "end": end,
                              "ttft": profile.ttft_p95_s, "e2e": profile.e2e_p99_s,
                              "tps": profile.decode_tps_min}
    inside = []
    for i, w in enumerate(m for m in maintenance if not m.networks or network in m.networks):
        params[f"m{i}s"], params[f"m{i}e"] = w.start, w.end
        inside.append(f"(started_at >= :m{i}s and started_at < :m{i}e)")
    in_maintenance = " or ".join(inside) or "0"
    row = db.execute(f"{_COUNTS_SQL} and not ({in_maintenance})", params).fetchone()
    excluded = db.execute(
        f"select count(*) from probe_results where network = :network and started_at >= :start"
        f" and started_at < :end and ({in_maintenance})", params).fetchone()[0]
    n = [int(v or 0) for v in row]
    return Counts(runs=n[0], excluded=int(excluded or 0), ok=n[1], rate_limited=n[2],
                  disconnects=n[3], completed=n[4], wrong=n[5], ttft_n=n[6], ttft_slow=n[7],
                  e2e_n=n[8], e2e_slow=n[9], decode_n=n[10], decode_slow=n[11])


def evaluate_store(store: Any, profiles: Mapping[str, SLAProfile], *, start: float, end: float,
                   maintenance: Iterable[MaintenanceWindow] = ()) -> list[SLAReport]:
    """Each network (network -> its profile) judged over [start, end) from the store.

    Verdicts, budgets and burn rates only: the measured quantiles are left out (None).
    """
    windows = list(maintenance)
    return [report_from_counts(store_counts(store, prof, net, start, end, windows), prof,
                               network=net, start=start, end=end)
            for net, prof in profiles.items()]


def evaluate_store_month(store: Any, profiles: Mapping[str, SLAProfile], *,
                         at: float | None = None,
                         maintenance: Iterable[MaintenanceWindow] = ()) -> list[SLAReport]:
    """Each network judged over the UTC calendar month containing `at` (default now)."""
    start, end = month_bounds(time.time() if at is None else at)
    return evaluate_store(store, profiles, start=start, end=end, maintenance=maintenance)


def evaluate_store_rolling(store: Any, profiles: Mapping[str, SLAProfile], *,
                           now: float | None = None,
                           maintenance: Iterable[MaintenanceWindow] = ()) -> list[SLAReport]:
    """Each network judged over its profile's rolling window ending now."""
    end = time.time() if now is None else now
    windows = list(maintenance)
    return [evaluate_store(store, {net: prof}, start=end - prof.window_days * DAY_S, end=end,
                           maintenance=windows)[0]
            for net, prof in profiles.items()]


def month_figures_source(store: Any, profiles: Mapping[str, SLAProfile],
                         maintenance: Iterable[MaintenanceWindow] = ()
                         ) -> Callable[[], list[SLAFigure]]:
    """A zero-argument callable for metrics.SLACollector: this month's figures from the store.

    For a store file (anything with a `path`) each call opens its own read-only connection, so
    the scrape may run off the event loop, in another thread (monitor.server does that)."""
    windows = list(maintenance)
    path = getattr(store, "path", None)

    def source() -> list[SLAFigure]:
        if path is not None and _rolled_up(path):
            reports = _month_from_rollups(path, profiles, windows)
        elif path is None:
            reports = evaluate_store_month(store, profiles, maintenance=windows)
        else:
            from monitor.store import open_store

            reader = open_store(path)
            try:
                reports = evaluate_store_month(reader, profiles, maintenance=windows)
            finally:
                reader.close()
        return [r.figure() for r in reports]

    return source


def _rolled_up(path: Any) -> bool:
    import sqlite3
    from pathlib import Path

    from monitor import rollup

    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        return rollup.has_rollups(conn)
    finally:
        conn.close()


def _month_from_rollups(path: Any, profiles: Mapping[str, SLAProfile],
                        windows: Sequence[MaintenanceWindow]) -> list[SLAReport]:
    """This month per network from the store's daily rollups: ~30 rows a series instead of
    every run (latency counts at a threshold are those of 1 %-wide buckets)."""
    from monitor import rollup

    start, end = month_bounds(time.time())
    groups = rollup.aggregate([path], by=("network",), since=start, until=end,
                              networks=list(profiles), maintenance=windows)
    reports = []
    for net, profile in profiles.items():
        g = groups.get((net,))
        counts, values = rollup.sla_counts(g, profile) if g is not None else (Counts(), {})
        reports.append(report_from_counts(counts, profile, network=net, start=start, end=end,
                                          values=values))
    return reports
