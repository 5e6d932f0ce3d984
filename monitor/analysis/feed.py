"""What the status feed announces (docs/api.md, "Feed"): events read from the store, each with
a key that names the same event on every read, so a feed reader sees it once.

    incident opened / resolved   monitor.analysis.incidents (marked when it began in maintenance)
    SLA verdict changed          the calendar month's verdict as judged at each UTC day's end
                                 differs from the day before's
    model equality changed       a comparison's verdict differs from its previous test's
    capacity moved               a tier's sustained concurrency differs from its previous ladder's
    fingerprint                  a model's first test, a run that says the model changed, a
                                 verdict that differs from the run before's (`discovered` runs
                                 test nothing and are skipped)
    quality                      a comparison's first audit and each whose verdict differs
                                 from the audit before's
    contract                     a parameter honoured in the model's previous measuring run
                                 (within CONTRACT_MEMORY_S) and ignored or rejected now, or
                                 the reverse; the tool calls' paired comparison with the
                                 reference over the week up to a run differs from the week
                                 up to the run before

An event holds only what the monitor itself decided (names from the config, outcomes, figures):
never a network's free text, so nothing a network writes reaches a feed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Protocol, TypeVar

from monitor.analysis.capacity import MEASURED
from monitor.analysis.contract import Paired, paired_with_reference
from monitor.analysis.incidents import Incident
from monitor.analysis.maintenance import began_in_maintenance
from monitor.analysis.queries import Aggregate, aggregate_stores
from monitor.analysis.sla import SLAReport, judge, month_bounds
from monitor.analysis.status import utc_minute
from monitor.core.capacity import Ladder
from monitor.core.contract import Cell, ContractRun
from monitor.core.equality import EqualityResult
from monitor.core.fingerprint import FingerprintResult
from monitor.core.fingerprint import Verdict as Fingerprinted
from monitor.core.numbers import significant
from monitor.core.quality import QualityResult
from monitor.core.slaprofile import MaintenanceWindow, SLAProfile
from monitor.storage.filters import RunFilter

DAY_S = 86400

INCIDENT, SLA, EQUALITY, CAPACITY = "incident", "sla", "model-equality", "capacity"
FINGERPRINT, QUALITY, CONTRACT = "fingerprint", "quality", "contract"
# the feed's categories; a new verdict family adds its own
KINDS = (INCIDENT, SLA, EQUALITY, CAPACITY, FINGERPRINT, QUALITY, CONTRACT)
# A parameter's cell is compared with its previous measurement only within this long (the
# memory of the alert DepinParameterNoLongerHonoured), and the tool calls' paired comparison
# is judged over the runs of this long up to each run (as /api/v1/contract's default week).
CONTRACT_MEMORY_S = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One thing that happened to one network."""

    key: str  # the same event -> the same key, on every read and after restarts
    at: float  # when it happened (unix seconds)
    network: str
    kind: str  # one of KINDS (or a verdict family's own)
    title: str
    summary: str
    maintenance: bool = False  # it began inside a declared maintenance window


def spoken(seconds: float) -> str:
    """A duration as a person reads it: `45 s`, `12 min`, `3.5 h`, `2.1 d`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def newest_first(events: Iterable[FeedEvent], limit: int) -> list[FeedEvent]:
    return sorted(events, key=lambda e: (-e.at, e.key))[:limit]


# -- incidents ------------------------------------------------------------------------------

def incident_events(incidents: Iterable[Incident],
                    maintenance: Sequence[MaintenanceWindow] = ()) -> list[FeedEvent]:
    """An `opened` event per incident at its first failed run, a `resolved` one at the ok run
    that ended it."""
    out: list[FeedEvent] = []
    for i in incidents:
        planned = began_in_maintenance(maintenance, i.network, i.started_at)
        where = f"{i.network} {i.target}" + (f" from {i.location}" if i.location else "")
        note = " (during planned maintenance)" if planned else ""
        key = f"incident/{i.network}/{i.target}/{i.location}/{i.started_at!r}"
        out.append(FeedEvent(
            key=f"{key}/opened", at=i.started_at, network=i.network, kind=INCIDENT,
            title=f"Incident: {where} failing{note}",
            summary=f"{i.network}'s {i.target} target failed every run from "
                    f"{utc_minute(i.started_at)}, seen from {i.location or 'this monitor'}; "
                    f"outcome {i.outcome}.",
            maintenance=planned))
        if i.ended_at is not None:
            outcomes = ", ".join(f"{o} {n}" for o, n in i.outcomes.items())
            out.append(FeedEvent(
                key=f"{key}/resolved", at=i.ended_at, network=i.network, kind=INCIDENT,
                title=f"Resolved: {where}{note}",
                summary=f"{i.network}'s {i.target} target answered again at "
                        f"{utc_minute(i.ended_at)} after "
                        f"{spoken(i.ended_at - i.started_at)}: {i.failures} failed "
                        f"runs ({outcomes}).",
                maintenance=planned))
    return out


# -- the SLA's monthly verdict, judged at each day's end -----------------------------------

@dataclass(frozen=True, slots=True)
class DayVerdict:
    """A network's calendar-month SLA verdict as it stood at the end of one UTC day."""

    network: str
    day_end: float  # the instant it was judged at
    month_start: float
    profile: str
    missed: tuple[str, ...]  # the SLIs missed so far
    attained: bool | None  # None: no runs judged yet this month
    availability: float | None

    @property
    def state(self) -> str:
        if self.attained is None:
            return "no data"
        return "met" if self.attained else "missed: " + ", ".join(self.missed)


def day_verdicts(paths: Sequence[str | Path], profiles: Mapping[str, SLAProfile], *,
                 day: int, maintenance: Sequence[MaintenanceWindow] = ()) -> list[DayVerdict]:
    """Each network's month-so-far verdict at the end of UTC day `day` (its runs up to then,
    maintenance excluded, as monitor.analysis.sla judges the month)."""
    end = (day + 1) * DAY_S
    start, month_end = month_bounds(end - 1)
    month = aggregate_stores(paths, by=("network",), maintenance=maintenance,
                             runs=RunFilter(since=start, until=end, networks=list(profiles)))
    out = []
    for network, profile in profiles.items():
        r: SLAReport = judge(month.groups.get((network,), Aggregate()), profile,
                             network=network, start=start, end=month_end)
        missed = tuple(s.sli for s in r.slis if s.attained is False)
        out.append(DayVerdict(network, end, start, r.profile, missed,
                              None if r.runs == 0 else r.attained, r.availability))
    return out


def sla_events(verdicts: Iterable[DayVerdict]) -> list[FeedEvent]:
    """An event each time a network's verdict differs from the one the day before (days
    without runs judged are skipped; a new month is compared with the last one's end)."""
    by_network: dict[str, list[DayVerdict]] = {}
    for v in sorted(verdicts, key=lambda v: v.day_end):
        if v.attained is not None:
            by_network.setdefault(v.network, []).append(v)
    out = []
    for network, seq in by_network.items():
        for before, now in pairwise(seq):
            if now.state == before.state:
                continue
            month = utc_minute(now.month_start)[:7]
            figure = ("" if now.availability is None
                      else f"; availability {math.floor(now.availability * 1e4) / 100:.2f} %")
            out.append(FeedEvent(
                key=f"sla/{network}/{now.day_end!r}", at=now.day_end, network=network,
                kind=SLA, title=f"SLA {now.state}: {network} ({now.profile}, {month})",
                summary=f"{network}'s {now.profile} SLA for {month}, judged at "
                        f"{utc_minute(now.day_end)}: {now.state} (was {before.state}){figure}."))
    return out


class _Timed(Protocol):
    @property
    def started_at(self) -> float: ...


T = TypeVar("T", bound=_Timed)
V = TypeVar("V")


def _with_previous(items: Iterable[T], key: Callable[[T], Hashable], value: Callable[[T], V]
                   ) -> Iterator[tuple[T, V | None]]:
    """Each item in time order with the value of the item before it of the same key (None
    for a key's first)."""
    last: dict[Hashable, V] = {}
    for item in sorted(items, key=lambda x: x.started_at):
        k = key(item)
        yield item, last.get(k)
        last[k] = value(item)


# -- model equality ---------------------------------------------------------------------------

def equality_events(verdicts: Iterable[EqualityResult]) -> list[FeedEvent]:
    """An event for a comparison's first verdict and each that differs from the one before."""
    out = []
    for v, was in _with_previous(verdicts, lambda v: (v.network, v.tier, v.reference),
                                 lambda v: v.verdict.value):
        if was == v.verdict.value:
            continue
        p = "" if v.p_value is None else f", p = {v.p_value:.2g}"
        out.append(FeedEvent(
            key=f"model-equality/{v.network}/{v.tier}/{v.reference}/{v.started_at!r}",
            at=v.started_at, network=v.network, kind=EQUALITY,
            title=f"Model equality: {v.network} {v.tier} {v.verdict.value}"
                  + (f" {v.reference}" if v.verdict.value == "differs" else ""),
            summary=f"{v.network}'s {v.model} ({v.tier}) compared with {v.reference}: "
                    f"{v.verdict.value} (was {was or 'not tested'}{p}, "
                    f"{v.samples}/{v.reference_samples} samples, alpha {v.alpha:g})."))
    return out


# -- capacity ------------------------------------------------------------------------------------

def capacity_events(ladders: Iterable[Ladder]) -> list[FeedEvent]:
    """An event when a tier's ladder sustained a different concurrency from its previous
    measuring ladder (ladders stopped early measure nothing and are skipped)."""
    measuring = (x for x in ladders if x.stopped.value in MEASURED and x.sustained is not None)
    out = []
    for ladder, was in _with_previous(measuring, lambda x: (x.network, x.target, x.job),
                                      lambda x: x.sustained):
        held = ladder.sustained
        if held is None or was is None or was == held:
            continue
        at = ladder.started_at + ladder.elapsed_s
        out.append(FeedEvent(
            key=f"capacity/{ladder.id}", at=at, network=ladder.network, kind=CAPACITY,
            title=f"Capacity {'up' if held > was else 'down'}: {ladder.network} "
                  f"{ladder.target} sustains {held} streams",
            summary=f"{ladder.network}'s {ladder.target} ({ladder.job}) sustained {held} "
                    f"concurrent streams in the ladder that ended {utc_minute(at)} "
                    f"(the previous ladder: {was})."))
    return out


# -- fingerprint -----------------------------------------------------------------------------

def fingerprint_events(results: Iterable[FingerprintResult]) -> list[FeedEvent]:
    """An event for a model's first tested run, each run that says the model behind the name
    changed, and a verdict that differs from the previous tested run's (docs/fingerprint.md)."""
    tested = (r for r in results if r.verdict is not Fingerprinted.DISCOVERED)
    out = []
    for r, was in _with_previous(tested, lambda r: (r.network, r.model),
                                 lambda r: r.verdict.value):
        if r.verdict is not Fingerprinted.CHANGED and was == r.verdict.value:
            continue
        title = ("model behind the name changed" if r.verdict is Fingerprinted.CHANGED
                 else r.verdict.value)
        tv = "" if r.distance is None else f"TV distance {r.distance:.3f}, "
        out.append(FeedEvent(
            key=f"fingerprint/{r.network}/{r.model}/{r.started_at!r}", at=r.started_at,
            network=r.network, kind=FINGERPRINT,
            title=f"Fingerprint: {r.network} {r.model} {title}",
            summary=f"{r.network}'s {r.model} ({r.tier}) fingerprinted at "
                    f"{utc_minute(r.started_at)}: {r.verdict.value} (was "
                    f"{was or 'not tested'}; {tv}{r.samples} samples)."))
    return out


# -- quality ---------------------------------------------------------------------------------

def _share(value: float | None, low: float | None, high: float | None) -> str:
    """`66.7 % [56.4-75.6 %]`, or `-` without pairs."""
    if value is None:
        return "-"
    ci = "" if low is None or high is None else f" [{100 * low:.1f}-{100 * high:.1f} %]"
    return f"{100 * value:.1f} %{ci}"


def quality_events(results: Iterable[QualityResult]) -> list[FeedEvent]:
    """An event for a comparison's first audit and each whose verdict differs from the one
    before (docs/quality.md)."""
    out = []
    for r, was in _with_previous(results, lambda r: (r.network, r.model, r.reference),
                                 lambda r: r.verdict.value):
        if was == r.verdict.value:
            continue
        p = "" if r.p_value is None else f", p = {r.p_value:.2g}"
        out.append(FeedEvent(
            key=f"quality/{r.network}/{r.model}/{r.reference}/{r.started_at!r}",
            at=r.started_at, network=r.network, kind=QUALITY,
            title=f"Quality: {r.network} {r.model} {r.verdict.value} ({r.reference})",
            summary=f"{r.network}'s {r.model} ({r.tier}) audited against {r.reference} at "
                    f"{utc_minute(r.started_at)}: {r.verdict.value} (was "
                    f"{was or 'not audited'}); accuracy "
                    f"{_share(r.accuracy, r.accuracy_low, r.accuracy_high)} vs "
                    f"{_share(r.reference_accuracy, r.reference_low, r.reference_high)} on "
                    f"{r.pairs} of {r.items} {r.suite} items{p}, alpha {r.alpha:g}."))
    return out


# -- contract ----------------------------------------------------------------------------------

_JUDGED = (Cell.HONOURED, Cell.IGNORED, Cell.REJECTED)  # a cell that measured something
NO_DIFFERENCE = "no difference shown"


def paired_verdict(paired: Paired | None, alpha: float) -> str:
    """The tool calls against the reference: `worse than reference` / `better than reference`
    when McNemar's exact p is below alpha, else no difference shown (docs/contract.md)."""
    if paired is None or paired.p_value is None or paired.p_value >= alpha:
        return NO_DIFFERENCE
    return "worse than reference" if paired.worse > paired.better else "better than reference"


def _param_events(mine: Sequence[ContractRun], memory_s: float) -> list[FeedEvent]:
    last: dict[str, tuple[Cell, float]] = {}
    out = []
    for run in mine:
        for c in run.cells:
            if c.cell not in _JUDGED:
                continue
            before = last.get(c.param.value)
            last[c.param.value] = (c.cell, run.started_at)
            if before is None or run.started_at - before[1] > memory_s:
                continue
            was = before[0]
            if was is Cell.HONOURED and c.cell is not Cell.HONOURED:
                said = f"no longer honoured ({c.cell.value})"
            elif was is not Cell.HONOURED and c.cell is Cell.HONOURED:
                said = "honoured again"
            else:
                continue
            out.append(FeedEvent(
                key=f"contract/{run.network}/{run.model}/{c.param.value}/{run.started_at!r}",
                at=run.started_at, network=run.network, kind=CONTRACT,
                title=f"Contract: {run.network} {run.model} {c.param.value} {said}",
                summary=f"{run.network}'s {run.model} ({run.tier}), contract run at "
                        f"{utc_minute(run.started_at)}: {c.param.value} {c.cell.value} (was "
                        f"{was.value} at {utc_minute(before[1])})."))
    return out


def _paired_events(mine: Sequence[ContractRun], references: Sequence[ContractRun],
                   memory_s: float, alpha: float) -> list[FeedEvent]:
    before: tuple[str, float] | None = None  # (verdict, run time) of the previous run
    out = []
    for i, run in enumerate(mine):
        if run.reference is None:
            continue
        week = [r for r in mine[:i + 1] if run.started_at - r.started_at < memory_s]
        refs = {r.run_id: r for r in references if r.network == run.reference
                and run.started_at - memory_s - 60 < r.started_at <= run.started_at + 60}
        paired = paired_with_reference(week, refs)
        now = paired_verdict(paired, alpha)
        was = (NO_DIFFERENCE if before is None or run.started_at - before[1] > memory_s
               else before[0])
        before = (now, run.started_at)
        if now == was or paired is None:
            continue
        pv = significant(paired.p_value, 2)
        out.append(FeedEvent(
            key=f"contract/{run.network}/{run.model}/tool-calls/{run.reference}/"
                f"{run.started_at!r}",
            at=run.started_at, network=run.network, kind=CONTRACT,
            title=f"Contract: {run.network} {run.model} tool calls {now} ({run.reference})",
            summary=f"{run.network}'s {run.model} ({run.tier}) tool calls against "
                    f"{run.reference} over the week to {utc_minute(run.started_at)}: {now} "
                    f"(was {was}); {paired.pairs} pairs, {paired.worse} worse, "
                    f"{paired.better} better, p = {pv}, alpha {alpha:g}."))
    return out


def contract_events(runs: Iterable[ContractRun], *, alpha: float = 0.05,
                    memory_s: float = CONTRACT_MEMORY_S) -> list[FeedEvent]:
    """Each (network, model)'s parameter changes and tool-call comparison changes (see the
    module's docstring); `runs` holds the reference's runs too. docs/contract.md."""
    ordered = sorted(runs, key=lambda r: r.started_at)
    groups: dict[tuple[str, str], list[ContractRun]] = {}
    for run in ordered:
        groups.setdefault((run.network, run.model), []).append(run)
    out = []
    for mine in groups.values():
        out += _param_events(mine, memory_s)
        out += _paired_events(mine, ordered, memory_s, alpha)
    return out
