"""SLA maths: judge a network's runs against its SLA profile (docs/sla.md). Owns the SLI names.

Every SLI is event-based, like Prometheus' recording rules: each run is good or bad for it, the
objective is the share of good runs, the error budget is 1 - objective.

    availability       bad: outcome is not ok                      objective: profile.availability
    ttft_p95           bad: TTFT > ttft_p95_s (runs with a TTFT)   objective: 0.95
    e2e_p99            bad: duration > e2e_p99_s (completed runs)  objective: 0.99
    disconnect_rate    bad: outcome is disconnect                  objective: 1 - disconnect_rate
    decode_tps         bad: tokens/s < floor (completed runs)      objective: 0.5 (the median)
    wrong_output_rate  bad: wrong_output (completed runs)          objective: 1 - wrong_output_rate

Availability and disconnect rate are judged on the runs that count toward availability
(monitor.core.result: all but auth_error and quota_exhausted, the buyer's problem).
"p95 <= 2 s" is the same statement as "at most 5 % of runs slower than 2 s" for the
nearest-rank percentile, so the verdict, the budget and the burn rate agree.
Pure functions: the runs come aggregated by monitor.analysis.queries (or as rows in memory).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from monitor.analysis.queries import Aggregate, Run, aggregate_rows, run_field
from monitor.core.result import Outcome
from monitor.core.slaprofile import MaintenanceWindow, SLAProfile

DAY_S = 86400.0

# The `sli` label values: depin_sla_objective, the month SLA figures, the rules and the report.
SLI_AVAILABILITY = "availability"
SLI_TTFT = "ttft_p95"
SLI_E2E = "e2e_p99"
SLI_DISCONNECT = "disconnect_rate"
SLI_DECODE = "decode_tps"
SLI_WRONG_OUTPUT = "wrong_output_rate"
SLIS = (SLI_AVAILABILITY, SLI_TTFT, SLI_E2E, SLI_DISCONNECT, SLI_DECODE, SLI_WRONG_OUTPUT)


def targets(profile: SLAProfile) -> dict[str, float]:
    """sli -> the configured target of each enabled SLI, in its natural unit (a ratio, seconds
    or tokens/s; see docs/metrics.md)."""
    values = {
        SLI_AVAILABILITY: profile.availability,
        SLI_TTFT: profile.ttft_p95_s,
        SLI_E2E: profile.e2e_p99_s,
        SLI_DISCONNECT: profile.disconnect_rate,
        SLI_DECODE: profile.decode_tps_min,
        SLI_WRONG_OUTPUT: profile.wrong_output_rate,
    }
    return {sli: v for sli, v in values.items() if v is not None}


# A percentile SLI's objective is its percentile: "p95 <= 2 s" = 95 % of runs within 2 s.
_PERCENTILE_SHARES = {SLI_TTFT: 0.95, SLI_E2E: 0.99, SLI_DECODE: 0.5}


def objectives(profile: SLAProfile) -> dict[str, float]:
    """sli -> objective (the required share of good events) of each enabled SLI."""
    out: dict[str, float] = {}
    for sli, target in targets(profile).items():
        if sli in _PERCENTILE_SHARES:
            out[sli] = _PERCENTILE_SHARES[sli]
        elif sli == SLI_AVAILABILITY:
            out[sli] = target
        else:  # a largest tolerated rate of bad runs
            out[sli] = 1.0 - target
    return out


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
class SLAFigure:
    """One network's SLA figures as the exporter shows them (only SLIs with data)."""

    network: str
    runs: int
    availability: float | None
    availability_excl_rate_limited: float | None
    attained: Mapping[str, bool]  # sli -> verdict
    budget_remaining: Mapping[str, float]  # sli -> 1 - bad / allowed bad (negative: overspent)
    burn_rate: Mapping[str, float]  # sli -> error ratio / error budget


@dataclass(frozen=True, slots=True)
class SLAReport:
    """One network judged against its profile over [start, end)."""

    network: str
    profile: str
    start: float
    end: float
    runs: int  # runs judged for availability (maintenance excluded)
    excluded_runs: int  # runs that fell into a maintenance window
    ok: int
    rate_limited: int
    slis: tuple[SLIResult, ...]
    buyer_side: int = 0  # runs left out as the buyer's problem (auth_error, quota_exhausted)

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


def month_bounds(t: float) -> tuple[float, float]:
    """[start, end) of the UTC calendar month containing unix time t."""
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    start = dt.datetime(d.year, d.month, 1, tzinfo=dt.UTC)
    days = calendar.monthrange(d.year, d.month)[1]
    return start.timestamp(), start.timestamp() + days * DAY_S


def judge(runs: Aggregate, profile: SLAProfile, *, network: str, start: float,
          end: float) -> SLAReport:
    """The SLA report of one network's aggregated runs; maintenance runs are left out."""
    kept = runs.kept
    judged = kept.judged_runs
    ok = kept.count(Outcome.OK)
    disconnects = kept.count(Outcome.DISCONNECT)
    done, wrong = kept.completed, kept.count(Outcome.WRONG_OUTPUT)
    events: dict[str, tuple[int, int, float | None]] = {  # sli -> (total, bad, value)
        SLI_AVAILABILITY: (judged, judged - ok, ok / judged if judged else None),
        SLI_DISCONNECT: (judged, disconnects, disconnects / judged if judged else None),
        SLI_WRONG_OUTPUT: (done, wrong, wrong / done if done else None),
    }
    if profile.ttft_p95_s is not None:
        events[SLI_TTFT] = (kept.ttft.count(), kept.ttft.count_above(profile.ttft_p95_s),
                            kept.ttft.quantile(0.95))
    if profile.e2e_p99_s is not None:
        events[SLI_E2E] = (kept.e2e.count(), kept.e2e.count_above(profile.e2e_p99_s),
                           kept.e2e.quantile(0.99))
    if profile.decode_tps_min is not None:
        events[SLI_DECODE] = (kept.tps.count(), kept.tps.count_below(profile.decode_tps_min),
                              kept.tps.quantile_from_top(0.5))
    wanted = targets(profile)
    slis = tuple(SLIResult(sli, wanted[sli], objective, *events[sli])
                 for sli, objective in objectives(profile).items())
    return SLAReport(network=network, profile=profile.name, start=start, end=end, runs=judged,
                     excluded_runs=runs.excluded.runs, ok=ok,
                     rate_limited=kept.count(Outcome.RATE_LIMITED), slis=slis,
                     buyer_side=kept.runs - judged)


def evaluate(
    rows: Iterable[Run],
    profile: SLAProfile,
    *,
    network: str,
    start: float,
    end: float,
    maintenance: Iterable[MaintenanceWindow] = (),
) -> SLAReport:
    """Judge `network`'s runs started in [start, end) against `profile`, maintenance excluded.

    `rows` (ProbeResults or stored rows) may hold other networks' runs and runs outside the
    period: they are skipped.
    """
    ours = (r for r in rows if run_field(r, "network") == network
            and start <= float(run_field(r, "started_at")) < end)
    groups = aggregate_rows(ours, by=(), maintenance=tuple(maintenance))
    return judge(groups.get((), Aggregate()), profile, network=network, start=start, end=end)


def evaluate_rolling(rows: Iterable[Run], profile: SLAProfile, *, network: str,
                     now: float | None = None,
                     maintenance: Iterable[MaintenanceWindow] = ()) -> SLAReport:
    """The profile's rolling window (window_days) ending now."""
    end = time.time() if now is None else now
    return evaluate(rows, profile, network=network, start=end - profile.window_days * DAY_S,
                    end=end, maintenance=maintenance)


def evaluate_month(rows: Iterable[Run], profile: SLAProfile, *, network: str,
                   at: float | None = None,
                   maintenance: Iterable[MaintenanceWindow] = ()) -> SLAReport:
    """The UTC calendar month containing `at` (default now), maintenance windows excluded."""
    start, end = month_bounds(time.time() if at is None else at)
    return evaluate(rows, profile, network=network, start=start, end=end,
                    maintenance=maintenance)
