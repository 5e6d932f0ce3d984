"""Incidents, derived from stored runs: unbroken streaks of a target's failed runs.

A target is one model tier of one network seen from one location. Its runs, every job together,
are taken in start order. A run is

    ok         outcome ok
    failed     any other outcome that counts against the network (wrong_output, timeout, ...)
    set aside  rate_limited, and the buyer-side outcomes (core.result.NOT_THE_NETWORKS_FAULT):
               they neither extend nor end a streak (shown beside availability, not in it)

An incident is a streak of at least `min_failures` (default 3) failed runs with no ok run among
them. It starts at its first failed run's start and ends at the start of the target's next ok
run; with no ok run yet it is ongoing. Only streaks whose first failure falls inside the period
read are seen (docs/api.md, "Definitions").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.analysis.queries import Run, run_field
from monitor.core.result import NOT_THE_NETWORKS_FAULT, Outcome
from monitor.storage.filters import RunFilter
from monitor.storage.reads import streak_rows

MIN_FAILURES = 3
SET_ASIDE: frozenset[str] = frozenset({Outcome.RATE_LIMITED.value,
                                       *(o.value for o in NOT_THE_NETWORKS_FAULT)})
"""Outcomes shown beside availability, not in it: neither ok nor the network's failure."""

TargetKey = tuple[str, str, str]  # (network, target, location)


def set_aside(outcome: str) -> bool:
    """The run says nothing about whether the network served it (see SET_ASIDE)."""
    return outcome in SET_ASIDE


@dataclass(frozen=True, slots=True)
class Streak:
    """Consecutive failed runs of one target (the unit incidents are made of)."""

    target: TargetKey
    started_at: float  # the first failed run's start
    last_failure_at: float
    ended_at: float | None  # the next ok run's start; None while it goes on
    outcomes: Counter[str]  # failure outcome -> runs

    @property
    def failures(self) -> int:
        return sum(self.outcomes.values())


@dataclass(frozen=True, slots=True)
class Incident:
    """A streak of at least `min_failures` failed runs of one target."""

    network: str
    target: str
    location: str
    started_at: float
    ended_at: float | None  # None: ongoing
    last_failure_at: float
    failures: int
    outcomes: dict[str, int]  # failure outcome -> runs, most frequent first

    @property
    def ongoing(self) -> bool:
        return self.ended_at is None

    @property
    def outcome(self) -> str:
        """The most frequent failure outcome (ties: the first seen)."""
        return next(iter(self.outcomes))

    def duration_s(self, now: float) -> float:
        """First failure -> the ending ok run (or `now`, while it goes on)."""
        return (now if self.ended_at is None else self.ended_at) - self.started_at


def streaks(runs: Iterable[Run]) -> Iterator[Streak]:
    """Every streak of failed runs in `runs` (stored rows or ProbeResults, any order), per
    target in start order; a streak still open at the end has ended_at None."""
    by_target: dict[TargetKey, list[tuple[float, str]]] = {}
    for run in runs:
        outcome = str(run_field(run, "outcome"))
        if set_aside(outcome):
            continue
        key = (str(run_field(run, "network")), str(run_field(run, "target")),
               str(run_field(run, "location") or ""))
        by_target.setdefault(key, []).append((float(run_field(run, "started_at")), outcome))
    for key, seq in by_target.items():
        seq.sort(key=lambda item: item[0])
        first = last = 0.0
        failed: Counter[str] = Counter()
        for t, outcome in seq:
            if outcome == Outcome.OK.value:
                if failed:
                    yield Streak(key, first, last, t, failed)
                    failed = Counter()
                continue
            if not failed:
                first = t
            failed[outcome] += 1
            last = t
        if failed:
            yield Streak(key, first, last, None, failed)


def incidents_of(found: Iterable[Streak], min_failures: int = MIN_FAILURES) -> list[Incident]:
    """The streaks of at least `min_failures` failed runs, newest first."""
    out = [Incident(network=s.target[0], target=s.target[1], location=s.target[2],
                    started_at=s.started_at, ended_at=s.ended_at,
                    last_failure_at=s.last_failure_at, failures=s.failures,
                    outcomes=dict(s.outcomes.most_common()))
           for s in found if s.failures >= min_failures]
    out.sort(key=lambda i: (-i.started_at, i.network, i.target, i.location))
    return out


def failing_now(found: Iterable[Streak]) -> dict[TargetKey, int]:
    """Target -> failed runs since its last ok run, for targets whose latest judged run failed."""
    return {s.target: s.failures for s in found if s.ended_at is None}


def read_streaks(paths: Sequence[str | Path], *, since: float, until: float | None = None,
                 networks: Sequence[str] = ()) -> list[Streak]:
    """The streaks among the stored runs started in [since, until), across store files.

    SQLite hands back only what a streak is made of, the failed runs and the ok run right
    after each: a lag() over each target's runs in start order, in C. The rest (nearly every
    ok run) never reaches Python, which keeps this cheap while the probes share the process.
    Each file is filtered on its own: files are one agent's each, so their locations differ."""
    runs = RunFilter(since=since, until=until, networks=networks)
    rows = [{"network": network, "target": target, "location": location,
             "started_at": started_at, "outcome": outcome}
            for network, target, location, started_at, outcome
            in streak_rows(paths, runs, set_aside=sorted(SET_ASIDE))]
    return list(streaks(rows))
