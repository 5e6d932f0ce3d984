"""Counts and aggregates of runs over a period, per group (network, tier, job or location): what
the buyer's report, the SLA maths and the scrape-time SLA figures read.

Whether stored runs come from the rollups or from raw rows is decided here, once
(`aggregate_stores`): when every file has rollups, whole days come from them (the timing
histograms of whole weeks from the weekly tier: monitor.storage.rollups.read_hist) and the
rest is read raw (the period's edge days, days a maintenance window touches, rows not folded
yet), with quantiles within 0.5 % of the exact ones; otherwise every row is read raw and
exact. Runs in memory (`aggregate_rows`) are always exact. Runs inside a maintenance window are
kept apart (`Aggregate.excluded`): the report shows them, the SLA leaves them out.
"""

from __future__ import annotations

import bisect
import itertools
import math
import sqlite3
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from monitor.analysis.stats import quantile_ci_ranks, quantile_rank
from monitor.core.result import Outcome, ProbeResult, completed, counts_toward_availability
from monitor.core.slaprofile import MaintenanceWindow
from monitor.storage import domain, rollups
from monitor.storage.domain import Ignored
from monitor.storage.filters import RunFilter
from monitor.storage.reads import open_readonly, read_rows, select_rows, ttft_points

# The columns an aggregate reads of a stored run (ProbeResult field names).
COLUMNS = ("network", "target", "job", "location", "started_at", "outcome", "ttft_s",
           "duration_s", "tokens_per_s", "output_tokens", "input_tokens", "node")
GROUPINGS = rollups.KEY  # what runs can be grouped by: network, target, job, location
GroupKey = tuple[str, ...]
Run = Mapping[str, Any] | ProbeResult  # a stored row (COLUMNS at least) or a result


# -- distributions of one timing -------------------------------------------------------------

class Distribution(ABC):
    """The values of one timing (TTFT, end-to-end, decode rate) of a group: exact or bucketed,
    read with the nearest-rank rule of monitor.analysis.stats."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def at_rank(self, rank: int) -> float:
        """The rank-th smallest value (1-based)."""

    @abstractmethod
    def count_where(self, keep: Callable[[float], bool]) -> int: ...

    @abstractmethod
    def add(self, value: float) -> None: ...

    @abstractmethod
    def merged(self, other: Distribution) -> Distribution: ...

    def quantile(self, q: float) -> float | None:
        n = self.count()
        return self.at_rank(quantile_rank(n, q)) if n else None

    def quantile_from_top(self, q: float) -> float | None:
        """The q-quantile counted from the largest value: at least a share q of the values
        are this large or larger (the decode-rate SLI's median)."""
        n = self.count()
        return self.at_rank(n - quantile_rank(n, q) + 1) if n else None

    def quantile_ci(self, q: float) -> tuple[float, float] | None:
        n = self.count()
        if not n:
            return None
        lo, hi = quantile_ci_ranks(n, q)
        return self.at_rank(lo), self.at_rank(hi)

    def count_above(self, threshold: float) -> int:
        return self.count_where(lambda v: v > threshold)

    def count_below(self, threshold: float) -> int:
        return self.count_where(lambda v: v < threshold)


class Samples(Distribution):
    """Every value, exactly."""

    def __init__(self, values: Iterable[float] = ()) -> None:
        self.values = list(values)
        self._ordered = False

    def count(self) -> int:
        return len(self.values)

    def at_rank(self, rank: int) -> float:
        if not self._ordered:
            self.values.sort()
            self._ordered = True
        return self.values[rank - 1]

    def count_where(self, keep: Callable[[float], bool]) -> int:
        return sum(1 for v in self.values if keep(v))

    def add(self, value: float) -> None:
        self.values.append(value)
        self._ordered = False

    def merged(self, other: Distribution) -> Distribution:
        assert isinstance(other, Samples)
        return Samples([*self.values, *other.values])


class Buckets(Distribution):
    """Counts per 1 %-wide log bucket (the rollups' histograms); a value reads as its bucket's
    geometric middle."""

    def __init__(self, hist: Mapping[int, int] | None = None) -> None:
        self.hist: Counter[int] = Counter(hist or {})
        self._ranks: tuple[list[int], list[int]] | None = None  # (buckets, cumulative counts)

    def count(self) -> int:
        return sum(self.hist.values())

    def at_rank(self, rank: int) -> float:
        if self._ranks is None:  # kept until the next add: a bootstrap reads many ranks
            keys = sorted(self.hist)
            self._ranks = keys, list(itertools.accumulate(self.hist[k] for k in keys))
        keys, cumulative = self._ranks
        return rollups.bucket_value(keys[bisect.bisect_left(cumulative, rank)])

    def count_where(self, keep: Callable[[float], bool]) -> int:
        return sum(n for b, n in self.hist.items() if keep(rollups.bucket_value(b)))

    def add(self, value: float) -> None:
        self.hist[rollups.bucket(value)] += 1
        self._ranks = None

    def changed(self) -> None:
        """`hist` was (or is about to be) changed directly: forget the ranks read off it."""
        self._ranks = None

    def merged(self, other: Distribution) -> Distribution:
        assert isinstance(other, Buckets)
        return Buckets(self.hist + other.hist)


# -- aggregates -------------------------------------------------------------------------------

class Tally:
    """Outcome counts and timing distributions of some runs."""

    def __init__(self, exact: bool = True) -> None:
        self.exact = exact
        self.outcomes: Counter[str] = Counter()
        make: Callable[[], Distribution] = Samples if exact else Buckets
        self.ttft = make()  # runs with a TTFT
        self.e2e = make()  # completed runs
        self.tps = make()  # completed runs

    def metric(self, name: str) -> Distribution:
        """The distribution stored under a rollups.METRICS name."""
        return {"ttft": self.ttft, "e2e": self.e2e, "tps": self.tps}[name]

    def add(self, outcome: str, ttft_s: float | None, duration_s: float | None,
            tokens_per_s: float | None) -> None:
        self.outcomes[outcome] += 1
        if ttft_s is not None:
            self.ttft.add(float(ttft_s))
        if completed(outcome):
            if duration_s is not None:
                self.e2e.add(float(duration_s))
            if tokens_per_s is not None:
                self.tps.add(float(tokens_per_s))

    def count(self, outcome: Outcome) -> int:
        return self.outcomes.get(outcome.value, 0)

    @property
    def runs(self) -> int:
        return sum(self.outcomes.values())

    @property
    def judged_runs(self) -> int:
        """Runs that count toward the network's availability."""
        return sum(n for o, n in self.outcomes.items() if counts_toward_availability(o))

    @property
    def completed(self) -> int:
        return sum(n for o, n in self.outcomes.items() if completed(o))

    def merged(self, other: Tally) -> Tally:
        out = Tally(self.exact)
        out.outcomes = self.outcomes + other.outcomes
        out.ttft = self.ttft.merged(other.ttft)
        out.e2e = self.e2e.merged(other.e2e)
        out.tps = self.tps.merged(other.tps)
        return out


class Aggregate:
    """Everything the report and the SLA read of one group's runs; mergeable from rollups and
    raw rows. `kept` are the runs outside maintenance windows, `excluded` those inside."""

    def __init__(self, exact: bool = True) -> None:
        self.kept = Tally(exact)
        self.excluded = Tally(exact)
        self.output_tokens = 0
        self.input_tokens = 0
        self.good_output_tokens = 0  # of ok runs
        self.first_at = math.inf
        self.last_at = -math.inf
        self.nodes: set[str] = set()

    @property
    def runs(self) -> int:
        return self.kept.runs + self.excluded.runs

    def every(self) -> Tally:
        """All runs, maintenance or not."""
        return self.kept.merged(self.excluded) if self.excluded.runs else self.kept

    def add_run(self, run: Run, in_maintenance: bool) -> None:
        outcome = str(run_field(run, "outcome"))
        (self.excluded if in_maintenance else self.kept).add(
            outcome, run_field(run, "ttft_s"), run_field(run, "duration_s"),
            run_field(run, "tokens_per_s"))
        self._add_tokens(outcome, int(run_field(run, "output_tokens") or 0),
                         int(run_field(run, "input_tokens") or 0))
        t = float(run_field(run, "started_at"))
        self.first_at = min(self.first_at, t)
        self.last_at = max(self.last_at, t)
        node = run_field(run, "node")
        if node:
            self.nodes.add(str(node))

    def add_rolled(self, outcome: str, runs: int, output_tokens: int, input_tokens: int,
                   first_at: float, last_at: float) -> None:
        """Runs of one outcome from the rollups (never inside a maintenance window)."""
        self.kept.outcomes[outcome] += runs
        self._add_tokens(outcome, output_tokens, input_tokens)
        self.first_at = min(self.first_at, first_at)
        self.last_at = max(self.last_at, last_at)

    def _add_tokens(self, outcome: str, output_tokens: int, input_tokens: int) -> None:
        self.output_tokens += output_tokens
        self.input_tokens += input_tokens
        if outcome == Outcome.OK.value:
            self.good_output_tokens += output_tokens

    def merged(self, other: Aggregate) -> Aggregate:
        """Both groups' runs as one (e.g. a network's model tiers into the network)."""
        out = Aggregate(self.kept.exact)
        out.kept = self.kept.merged(other.kept)
        out.excluded = self.excluded.merged(other.excluded)
        out.output_tokens = self.output_tokens + other.output_tokens
        out.input_tokens = self.input_tokens + other.input_tokens
        out.good_output_tokens = self.good_output_tokens + other.good_output_tokens
        out.first_at = min(self.first_at, other.first_at)
        out.last_at = max(self.last_at, other.last_at)
        out.nodes = self.nodes | other.nodes
        return out


def regroup(groups: Mapping[GroupKey, Aggregate], by: Sequence[str], into: Sequence[str]
            ) -> dict[GroupKey, Aggregate]:
    """Groups keyed by the `by` fields merged into coarser groups keyed by `into` (a subset)."""
    where = [list(by).index(name) for name in into]
    out: dict[GroupKey, Aggregate] = {}
    for key, group in groups.items():
        coarse = tuple(key[i] for i in where)
        out[coarse] = out[coarse].merged(group) if coarse in out else group
    return out


class Daily:
    """Outcome counts per (network, UTC day number): `kept` outside maintenance windows,
    `excluded` inside. What the report's daily availability and monthly credits read, and
    (through daily_outcomes) the status page's daily bars."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, int], Counter[str]] = {}
        self.excluded: dict[tuple[str, int], Counter[str]] = {}

    def add(self, network: str, day: int, outcome: str, runs: int = 1,
            in_maintenance: bool = False) -> None:
        counts = self.excluded if in_maintenance else self.kept
        counts.setdefault((network, day), Counter())[outcome] += runs

    def add_run(self, run: Run, in_maintenance: bool) -> None:
        day = math.floor(float(run_field(run, "started_at")) / rollups.DAY_S)
        self.add(str(run_field(run, "network")), day, str(run_field(run, "outcome")),
                 in_maintenance=in_maintenance)

    def days(self) -> dict[tuple[str, int], DayOutcomes]:
        """(network, day) -> both counts of that day (empty where it had none of a kind)."""
        return {key: DayOutcomes(self.kept.get(key, Counter()),
                                 self.excluded.get(key, Counter()))
                for key in sorted({*self.kept, *self.excluded})}


@dataclass(frozen=True, slots=True)
class Aggregation:
    groups: dict[GroupKey, Aggregate]
    from_rollups: bool  # quantiles are the rollups' (within 0.5 %), not exact
    daily: Daily = field(default_factory=Daily)
    ignored: Ignored = field(default_factory=Ignored)  # stored rows out of domain, not read


def run_field(run: Run, name: str) -> Any:
    """A field of a stored row or a ProbeResult."""
    return run[name] if isinstance(run, Mapping) else getattr(run, name)


def group_key(run: Run, by: Sequence[str]) -> GroupKey:
    """The group a run belongs to: its `by` fields ("-" for an empty one)."""
    return tuple(str(run_field(run, k) or "-") for k in by)


def aggregate_rows(runs: Iterable[Run], *, by: Sequence[str] = ("network",),
                   maintenance: Sequence[MaintenanceWindow] = (), exact: bool = True,
                   daily: Daily | None = None) -> dict[GroupKey, Aggregate]:
    """Group runs (stored rows or ProbeResults) by the `by` fields; count them per network
    and day into `daily` too when given."""
    groups: dict[GroupKey, Aggregate] = {}
    for run in runs:
        key = group_key(run, by)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Aggregate(exact)
        network, t = str(run_field(run, "network")), float(run_field(run, "started_at"))
        in_maintenance = any(w.covers(network, t) for w in maintenance)
        group.add_run(run, in_maintenance)
        if daily is not None:
            daily.add_run(run, in_maintenance)
    return groups


def aggregate_stores(paths: Sequence[str | Path], *, by: Sequence[str] = ("network",),
                     runs: RunFilter | None = None,
                     maintenance: Sequence[MaintenanceWindow] = ()) -> Aggregation:
    """Group the stored runs `runs` selects across store files: from rollups when every file
    has them, else from raw rows. FileNotFoundError for a missing file, sqlite3.DatabaseError
    for a file that is not a store."""
    if not paths:
        raise ValueError("aggregate_stores needs at least one store file")
    runs = runs or RunFilter()
    daily = Daily()
    ignored = Ignored()
    if all(_has_rollups(p) for p in paths):
        groups: dict[GroupKey, Aggregate] = {}
        for path in paths:
            conn = open_readonly(path)
            try:
                _add_rolled_up(conn, groups, daily, by, runs, maintenance, ignored)
            finally:
                conn.close()
        return Aggregation({k: g for k, g in groups.items() if g.runs}, from_rollups=True,
                           daily=daily, ignored=ignored)
    rows = read_rows(paths, COLUMNS, since=runs.since, until=runs.until,
                     networks=runs.networks, jobs=runs.jobs, ignored=ignored)
    return Aggregation(aggregate_rows(rows, by=by, maintenance=maintenance, daily=daily),
                       from_rollups=False, daily=daily, ignored=ignored)


def _has_rollups(path: str | Path) -> bool:
    if not Path(path).is_file():
        return False
    conn = open_readonly(path)
    try:
        return rollups.usable(conn)
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


def _add_rolled_up(conn: sqlite3.Connection, groups: dict[GroupKey, Aggregate],
                   daily: Daily, by: Sequence[str], runs: RunFilter,
                   maintenance: Sequence[MaintenanceWindow], ignored: Ignored) -> None:
    """One file's runs into `groups`: whole days from the rollups, the rest raw."""

    where = [rollups.KEY.index(name) for name in by]
    by_key: dict[rollups.RolledKey, Aggregate] = {}  # a rollup key -> the group it falls in

    def group(key: rollups.RolledKey) -> Aggregate:
        found = by_key.get(key)
        if found is None:
            k = tuple(key[i] or "-" for i in where)
            found = groups.get(k)
            if found is None:
                found = groups[k] = Aggregate(exact=False)
            by_key[key] = found
        return found

    def add_raw(selection: RunFilter) -> None:
        for row in select_rows(conn, COLUMNS, selection, ignored):
            network, t = str(row["network"]), float(row["started_at"])
            key = (network, str(row["target"]), str(row["job"]), str(row["location"] or ""))
            in_maintenance = any(w.covers(network, t) for w in maintenance)
            group(key).add_run(row, in_maintenance)
            daily.add_run(row, in_maintenance)

    rolled = rollups.rolled_rowid(conn)
    skip = _maintenance_days(maintenance, *_whole_days(runs.since, runs.until))
    whole, raw_ranges = split_period(runs.since, runs.until, skip)
    if whole is not None:
        days = RunFilter(since=whole[0], until=whole[1], networks=runs.networks,
                         jobs=runs.jobs)
        for key, outcome, n, out, inp, first, last in rollups.read_runs(conn, days, skip,
                                                                        ignored):
            group(key).add_rolled(outcome, n, out, inp, first, last)
        counts: dict[tuple[rollups.RolledKey, str], Counter[int]] = {}
        for key, metric, bucket, n in rollups.read_hist(conn, days, skip, ignored):
            hist = counts.get((key, metric))
            if hist is None:
                values = group(key).kept.metric(metric)
                assert isinstance(values, Buckets)
                values.changed()  # nothing reads a rank until these are all in
                hist = counts[(key, metric)] = values.hist
            hist[bucket] += n
        for key, node in rollups.read_nodes(conn, days, skip, ignored):
            group(key).nodes.add(node)
        rollups.read_ignored(conn, days, ignored, skip)
        for network, day, outcome, n in rollups.read_daily(conn, days, skip):
            daily.add(network, day, outcome, n)
    # Folded rows outside those days, network by network (the (network, started_at) index) ...
    for network in rollups.rolled_networks(conn):
        if runs.networks and network not in runs.networks:
            continue
        for lo, hi in raw_ranges:
            add_raw(RunFilter(since=lo, until=hi, networks=(network,), jobs=runs.jobs,
                              upto_rowid=rolled))
    # ... and every row not folded yet.
    add_raw(replace(runs, after_rowid=rolled))


Period = tuple[float | None, float | None]  # [since, until), None: unbounded


def split_period(since: float | None, until: float | None, maintenance_days: set[int]
                 ) -> tuple[tuple[int | None, int | None] | None, list[Period]]:
    """What of [since, until) is read from the daily rollups and what from raw rows, for
    every reader of a store with rollups: the whole UTC days [d0, d1) (None when the period
    holds none), and the raw ranges: a partial first day, a partial last day, and the
    maintenance days among the whole ones (a window covers part of a day; rollups do not
    know which runs it covered)."""
    d0, d1 = _whole_days(since, until)
    if d0 is not None and d1 is not None and d0 >= d1:
        return None, [(since, until)]  # no whole day in the period
    raw: list[Period] = []
    if d0 is not None and since is not None and since < d0 * rollups.DAY_S:
        raw.append((since, d0 * rollups.DAY_S))
    if d1 is not None and (until is None or d1 * rollups.DAY_S < until):
        raw.append((d1 * rollups.DAY_S, until))
    raw += [(d * rollups.DAY_S, (d + 1) * rollups.DAY_S) for d in sorted(maintenance_days)
            if (d0 is None or d >= d0) and (d1 is None or d < d1)]
    return (d0, d1), raw


def _whole_days(since: float | None, until: float | None) -> tuple[int | None, int | None]:
    """The whole UTC days inside [since, until): [d0, d1) (None: unbounded)."""
    d0 = None if since is None else math.ceil(since / rollups.DAY_S)
    d1 = None if until is None else math.floor(until / rollups.DAY_S)
    return d0, d1


def _maintenance_days(windows: Sequence[MaintenanceWindow], d0: int | None = None,
                      d1: int | None = None) -> set[int]:
    """The UTC days the windows touch, within [d0, d1) and the days a run may start on
    (monitor.storage.domain): never more than those, whatever the windows say."""
    lo = max(domain.MIN_DAY, d0) if d0 is not None else domain.MIN_DAY
    hi = min(domain.MAX_DAY + 1, d1) if d1 is not None else domain.MAX_DAY + 1
    days: set[int] = set()
    for w in windows:
        if not (math.isfinite(w.start) and math.isfinite(w.end)):
            continue
        first = max(lo, math.floor(w.start / rollups.DAY_S))
        last = min(hi, math.ceil(w.end / rollups.DAY_S))
        days.update(range(first, last))
    return days


# -- outcome counts per day --------------------------------------------------------------------

@dataclass(slots=True)
class DayOutcomes:
    """Outcome counts of one network's runs on one UTC day: `kept` outside maintenance
    windows, `excluded` inside one."""

    kept: Counter[str]
    excluded: Counter[str]


def daily_outcomes(paths: Sequence[str | Path], *, since: float,
                   until: float | None = None, networks: Sequence[str] = (),
                   maintenance: Sequence[MaintenanceWindow] = (),
                   ignored: Ignored | None = None) -> dict[tuple[str, int], DayOutcomes]:
    """(network, UTC day number) -> outcome counts of the runs started in [since, until), across
    store files: the whole days from the rollups when every file has them (exact: counts need
    no buckets), the rest raw, split as `split_period` splits every read; else every row raw.
    The same counts as the report's (`aggregate_stores(...).daily`), without its groups."""
    if not paths:
        raise ValueError("daily_outcomes needs at least one store file")
    daily = Daily()
    columns = ("network", "started_at", "outcome")

    def add_raw(rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            network, t = str(row["network"]), float(row["started_at"])
            daily.add_run(row, any(w.covers(network, t) for w in maintenance))

    if not all(_has_rollups(p) for p in paths):
        add_raw(read_rows(paths, columns, since=since, until=until, networks=networks,
                          ignored=ignored))
        return daily.days()
    skip = _maintenance_days(maintenance, *_whole_days(since, until))
    whole, raw = split_period(since, until, skip)
    for path in paths:
        conn = open_readonly(path)
        try:
            rolled = rollups.rolled_rowid(conn)
            if whole is not None:
                days = RunFilter(since=whole[0], until=whole[1], networks=networks)
                for network, d, outcome, n in rollups.read_daily(conn, days, skip, ignored):
                    daily.add(network, d, outcome, n)
            for lo, hi in raw:
                add_raw(select_rows(conn, columns, RunFilter(
                    since=lo, until=hi, networks=networks, upto_rowid=rolled), ignored))
            add_raw(select_rows(conn, columns, RunFilter(  # rows not folded yet
                since=since, until=until, networks=networks, after_rowid=rolled), ignored))
        finally:
            conn.close()
    return daily.days()


def ttft_by_interval(paths: Sequence[str | Path], *, since: float, until: float, step_s: float,
                     networks: Sequence[str] = (), column: str = "ttft_s"
                     ) -> dict[tuple[str, int], Samples]:
    """(network, i) -> the TTFTs (or another of storage.reads.POINT_COLUMNS: `tokens_per_s`,
    the decode rate) of the runs started in [since + i step, since + (i+1) step), from raw
    rows (exact; the rollups are daily). For short periods: a few days of runs at most."""
    out: dict[tuple[str, int], Samples] = {}
    runs = RunFilter(since=since, until=until, networks=networks)
    for network, t, value in ttft_points(paths, runs, column):
        key = (network, int((t - since) // step_s))
        samples = out.get(key)
        if samples is None:
            samples = out[key] = Samples()
        samples.add(value)
    return out
