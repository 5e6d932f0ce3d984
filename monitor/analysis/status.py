"""What the status page shows of each network, from the store: its state now, daily
availability bars and a TTFT sparkline (definitions in docs/api.md, "Definitions"). Incidents
come from monitor.analysis.incidents, this month's SLA from monitor.analysis.sla."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.analysis.incidents import (
    MIN_FAILURES,
    TargetKey,
    failing_now,
    read_streaks,
    set_aside,
)
from monitor.analysis.queries import daily_outcomes, ttft_by_interval
from monitor.core.result import Outcome
from monitor.core.slaprofile import MaintenanceWindow
from monitor.core.times import format_duration
from monitor.storage.filters import RunFilter
from monitor.storage.reads import last_run_times

DAY_S = 86400

UP, DEGRADED, DOWN, UNKNOWN = "up", "degraded", "down", "unknown"
STATES = (UP, DEGRADED, DOWN, UNKNOWN)


def day_label(day: int) -> str:
    """A UTC day number (unix seconds // 86400) as YYYY-MM-DD."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


# -- daily availability bars -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DayBar:
    """One network's runs on one UTC day."""

    day: int  # UTC day number
    ok: int = 0
    failed: int = 0  # the network's failures
    set_aside: Mapping[str, int] = field(default_factory=dict)  # rate_limited, buyer-side
    maintenance: int = 0  # runs inside a declared maintenance window (any outcome)

    @property
    def runs(self) -> int:
        return self.ok + self.failed + sum(self.set_aside.values()) + self.maintenance

    @property
    def availability(self) -> float | None:
        """ok / (ok + failed): runs set aside and maintenance runs are left out."""
        judged = self.ok + self.failed
        return self.ok / judged if judged else None


def _bar(day: int, kept: Counter[str], excluded: Counter[str]) -> DayBar:
    ok = kept.get(Outcome.OK.value, 0)
    aside = {o: n for o, n in sorted(kept.items()) if set_aside(o) and n}
    failed = sum(kept.values()) - ok - sum(aside.values())
    return DayBar(day=day, ok=ok, failed=failed, set_aside=aside,
                  maintenance=sum(excluded.values()))


def daily_bars(paths: Sequence[str | Path], networks: Sequence[str], *, days: int, now: float,
               maintenance: Sequence[MaintenanceWindow] = ()) -> dict[str, list[DayBar]]:
    """network -> one bar per UTC day, the last `days` days up to today (today so far), oldest
    first; a day without runs has runs == 0."""
    today = math.floor(now / DAY_S)
    first = today - days + 1
    counts = daily_outcomes(paths, since=first * DAY_S, until=now, networks=networks,
                            maintenance=maintenance)
    empty: Counter[str] = Counter()
    out: dict[str, list[DayBar]] = {}
    for network in networks:
        bars = []
        for day in range(first, today + 1):
            c = counts.get((network, day))
            bars.append(_bar(day, c.kept, c.excluded) if c else _bar(day, empty, empty))
        out[network] = bars
    return out


# -- TTFT sparkline ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """The TTFTs of the runs started in [start, start + step)."""

    start: float
    runs: int
    p50_s: float | None
    p95_s: float | None


def ttft_series(paths: Sequence[str | Path], networks: Sequence[str], *, since: float,
                until: float, step_s: float) -> dict[str, list[SeriesPoint]]:
    """network -> one point per step from since to until (nearest-rank p50 and p95 of the
    TTFTs; None where no run had a first token)."""
    samples = ttft_by_interval(paths, since=since, until=until, step_s=step_s,
                               networks=networks)
    steps = max(1, math.ceil((until - since) / step_s))
    out: dict[str, list[SeriesPoint]] = {}
    for network in networks:
        points = []
        for i in range(steps):
            s = samples.get((network, i))
            points.append(SeriesPoint(start=since + i * step_s, runs=s.count() if s else 0,
                                      p50_s=s.quantile(0.5) if s else None,
                                      p95_s=s.quantile(0.95) if s else None))
        out[network] = points
    return out


# -- the state now -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Plan:
    """What the config expects of a network: its targets and how often each job runs."""

    targets: tuple[str, ...]
    interval_s: float


@dataclass(frozen=True, slots=True)
class NetworkState:
    network: str
    state: str  # one of STATES
    reason: str  # one line a person reads
    last_run_at: float | None
    failing: Mapping[str, int]  # target -> failed runs since its last ok run


def stale_after_s(interval_s: float) -> float:
    """A target with no run for this long is `unknown`: three missed intervals, at least 60 s."""
    return max(3 * interval_s, 60.0)


def lookback_s(interval_s: float) -> float:
    """How far back the state looks for a target's latest runs: an hour, or 20 intervals."""
    return max(3600.0, 20 * interval_s)


def _last_runs(paths: Sequence[str | Path], since: float, networks: Sequence[str]
               ) -> dict[tuple[str, str], float]:
    return last_run_times(paths, RunFilter(since=since, networks=networks))


def network_states(paths: Sequence[str | Path], plans: Mapping[str, Plan], *, now: float,
                   min_failures: int = MIN_FAILURES) -> dict[str, NetworkState]:
    """Each planned network's state now (docs/api.md, "Definitions"):

    unknown   a target has no run within stale_after_s (or the network none at all)
    down      every target failed its latest `min_failures` judged runs (an ongoing incident)
    degraded  some target's latest judged run failed
    up        every target's latest judged run was ok (or set aside)
    """
    lookback = max((lookback_s(p.interval_s) for p in plans.values()), default=3600.0)
    since = now - lookback
    last = _last_runs(paths, since, list(plans))
    streak_of: dict[TargetKey, int] = failing_now(read_streaks(paths, since=since,
                                                               networks=list(plans)))
    failing: dict[str, dict[str, int]] = {}
    for (network, target, _location), n in streak_of.items():
        row = failing.setdefault(network, {})
        row[target] = max(n, row.get(target, 0))
    out: dict[str, NetworkState] = {}
    for network, plan in plans.items():
        seen = [last[(network, t)] for t in plan.targets if (network, t) in last]
        last_run = max(seen) if seen else None
        stale = [t for t in plan.targets
                 if now - last.get((network, t), -math.inf) > stale_after_s(plan.interval_s)]
        bad = {t: n for t, n in sorted(failing.get(network, {}).items()) if t in plan.targets}
        if stale:
            state = UNKNOWN
            reason = (f"no run in the last {format_duration(lookback)}" if last_run is None
                      else f"no recent run of {', '.join(stale)}")
        elif plan.targets and all(bad.get(t, 0) >= min_failures for t in plan.targets):
            state, reason = DOWN, "every target failing"
        elif bad:
            state = DEGRADED
            reason = "failing: " + ", ".join(f"{t} ({n} in a row)" for t, n in bad.items())
        else:
            state, reason = UP, "latest runs ok"
        out[network] = NetworkState(network, state, reason, last_run, bad)
    return out
