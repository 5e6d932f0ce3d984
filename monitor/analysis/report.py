"""The buyer's report: networks side by side from one or more stores, ranked with honest ties,
with 95 % confidence intervals, SLA verdicts, the model-tier ladder, daily availability,
monthly SLA credits and effective cost. One builder over the aggregates of
monitor.analysis.queries (from rollups, raw rows or runs in memory); the formats are rendered
by report_text, report_json and report_html from this one `Report`, so they agree.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from monitor.analysis import ranking, sla
from monitor.analysis.capacity import TierCapacity
from monitor.analysis.credits import MonthCredit, day_label, monthly_credits
from monitor.analysis.queries import (
    Aggregate,
    Daily,
    Distribution,
    GroupKey,
    Run,
    aggregate_rows,
    aggregate_stores,
    regroup,
)
from monitor.analysis.report_capacity import capacity_section
from monitor.analysis.stats import wilson
from monitor.core.quality import QualityResult
from monitor.core.quality import Verdict as QualityVerdict
from monitor.core.result import Outcome, counts_toward_availability
from monitor.core.slaprofile import ENTERPRISE, MaintenanceWindow, SLAProfile
from monitor.storage.filters import RunFilter
from monitor.storage.reads import read_audits

ROLLUP_NOTE = "quantiles from daily rollups: within 0.5 % of the exact values"
UNSURE_NOTE = ("? = the 95 % interval of the measured rate contains the target: "
               "more runs are needed before the verdict is certain.")
BUYER_SIDE_NOTE = ("key/credits = runs refused for the monitor's own account (auth_error: a bad "
                   "key; quota_exhausted: out of credits or quota): left out of availability, "
                   "disconnect rate and the SLA, not held against the network. Fix the account "
                   "(runbook DepinProbeMisconfigured): those runs measured nothing.")
RANKING_NOTE = ("rank: by availability, then TTFT p95, then median decode rate; a network is "
                "placed above another only when the difference is significant at 95 % "
                "(two-proportion interval for availability, bootstrap for percentiles); "
                "networks no criterion separates share a rank (tied).")
PERCENTILES = tuple(i / 100 for i in range(101))  # the distributions the charts draw
TIER_STATES = ("met", "missed", "no data")


@dataclass(frozen=True, slots=True)
class Verdict:
    sli: str
    target: float
    value: float | None
    verdict: str  # meets | misses | meets? | misses? | no data
    bad: int
    total: int


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """One row of the comparison: a network (or network x tier/job/location)."""

    key: tuple[str, ...]
    runs: int
    first_at: float
    last_at: float
    outcomes: dict[str, int]
    availability: float | None
    availability_ci: tuple[float, float] | None
    availability_excl_rate_limited: float | None
    buyer_side: int  # auth_error + quota_exhausted runs: left out of availability
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    ttft_p95_ci: tuple[float, float] | None
    e2e_p50_s: float | None
    e2e_p99_s: float | None
    e2e_p99_ci: tuple[float, float] | None
    decode_tps_median: float | None
    decode_tps_ci: tuple[float, float] | None
    disconnect_rate: float | None
    disconnect_ci: tuple[float, float] | None
    wrong_output_rate: float | None  # of completed runs
    wrong_output_ci: tuple[float, float] | None
    output_tokens: int
    good_output_tokens: int
    nodes: int
    profile: str
    verdicts: tuple[Verdict, ...]
    effective_usd_per_mtok: float | None  # what 1M *good* output tokens really cost
    list_usd_per_mtok: float | None
    # Ranking within the groups that differ only by network (see monitor.analysis.ranking):
    rank: int | None = None  # None: no run counts toward availability
    tied_with: tuple[str, ...] = ()
    beaten_by: tuple[tuple[str, str], ...] = ()  # (name, deciding criterion)
    # p0, p1, ..., p100 (nearest rank): what the charts draw
    ttft_percentiles_s: tuple[float, ...] = ()
    decode_percentiles: tuple[float, ...] = ()

    @property
    def sla_met(self) -> bool | None:
        judged = [v for v in self.verdicts if v.verdict != "no data"]
        return all(v.verdict.startswith("meets") for v in judged) if judged else None

    @property
    def label(self) -> str:
        return "/".join(self.key)


@dataclass(frozen=True, slots=True)
class TierCell:
    """One cell of the tier ladder: a network's model tier judged against its SLA profile."""

    network: str
    tier: str
    runs: int
    availability: float | None
    state: str  # met | missed | no data
    verdict: str  # MEETS, MEETS?, MISSES (slis), ... as in the comparison's SLA column
    # the tier's latest quality audit (docs/quality.md): its verdict against its reference;
    # None: not audited. A profile with quality_not_worse misses on "worse than reference".
    quality: str | None = None


@dataclass(frozen=True, slots=True)
class DayPoint:
    """A network's UTC day, maintenance windows excluded (as the monthly attainment)."""

    network: str
    day: str  # YYYY-MM-DD
    runs: int  # runs that count toward availability
    ok: int

    @property
    def availability(self) -> float | None:
        return self.ok / self.runs if self.runs else None


@dataclass(frozen=True, slots=True)
class Report:
    generated_at: float
    sources: tuple[str, ...]
    since: float | None
    until: float | None
    by: tuple[str, ...]
    groups: tuple[GroupSummary, ...]
    notes: tuple[str, ...] = field(default=())
    tiers: tuple[TierCell, ...] = ()
    days: tuple[DayPoint, ...] = ()
    months: tuple[MonthCredit, ...] = ()
    capacity: tuple[TierCapacity, ...] = ()  # from the capacity ladders (report_capacity)

    @property
    def runs(self) -> int:
        return sum(g.runs for g in self.groups)

    @property
    def first_at(self) -> float | None:
        return min((g.first_at for g in self.groups), default=None)

    @property
    def last_at(self) -> float | None:
        return max((g.last_at for g in self.groups), default=None)


@dataclass(frozen=True, slots=True)
class Judging:
    """What the groups are judged and priced by, by network name: SLA profiles, list prices
    and monthly spend (for the SLA credits)."""

    profiles: Mapping[str, SLAProfile] = field(default_factory=dict)
    default_profile: SLAProfile = ENTERPRISE
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    spends: Mapping[str, float] = field(default_factory=dict)

    def profile(self, network: str) -> SLAProfile:
        return self.profiles.get(network, self.default_profile)


def build_report(
    rows: Iterable[Run],
    *,
    by: Sequence[str] = ("network",),
    profiles: Mapping[str, SLAProfile] | None = None,
    default_profile: SLAProfile = ENTERPRISE,
    prices: Mapping[str, Mapping[str, float]] | None = None,
    spends: Mapping[str, float] | None = None,
    maintenance: Sequence[MaintenanceWindow] = (),
    sources: Sequence[str] = (),
    since: float | None = None,
    until: float | None = None,
) -> Report:
    """The report over runs in memory (stored rows or ProbeResults), exact."""
    daily = Daily()
    groups = aggregate_rows(rows, by=_finest(by), maintenance=maintenance, daily=daily)
    judging = Judging(profiles or {}, default_profile, prices or {}, spends or {})
    return _report(groups, daily, by, judging, sources=sources, since=since, until=until,
                   notes=())


def report_from_stores(
    paths: Sequence[str],
    *,
    by: Sequence[str] = ("network",),
    profiles: Mapping[str, SLAProfile] | None = None,
    default_profile: SLAProfile = ENTERPRISE,
    prices: Mapping[str, Mapping[str, float]] | None = None,
    spends: Mapping[str, float] | None = None,
    maintenance: Sequence[MaintenanceWindow] = (),
    since: float | None = None,
    until: float | None = None,
    networks: Sequence[str] = (),
    jobs: Sequence[str] = (),
) -> Report:
    """The report over store files (from their rollups when they all have them)."""
    aggregation = aggregate_stores(
        paths, by=_finest(by),
        runs=RunFilter(since=since, until=until, networks=networks, jobs=jobs),
        maintenance=maintenance)
    judging = Judging(profiles or {}, default_profile, prices or {}, spends or {})
    audits = read_audits(paths, since=since, until=until, networks=networks)
    ignored = aggregation.ignored
    capacity = capacity_section(paths, since=since, until=until, networks=networks,
                                profiles=profiles, default_profile=default_profile,
                                ignored=ignored)
    report = _report(aggregation.groups, aggregation.daily, by, judging,
                     sources=[str(p) for p in paths], since=since, until=until,
                     notes=((ROLLUP_NOTE,) if aggregation.from_rollups else ())
                     + ((ignored.describe(),) if ignored else ()), audits=audits)
    return replace(report, capacity=capacity)


def _finest(by: Sequence[str]) -> tuple[str, ...]:
    """The grouping read from the stores: the report's, plus network and tier for the ladder."""
    return tuple(dict.fromkeys((*by, "network", "target")))


def _report(fine: Mapping[GroupKey, Aggregate], daily: Daily, by: Sequence[str],
            judging: Judging, *, sources: Sequence[str], since: float | None,
            until: float | None, notes: Sequence[str],
            audits: Sequence[QualityResult] = ()) -> Report:
    finest = _finest(by)
    latest = latest_audits(audits)
    summaries = ranked_summaries(regroup(fine, finest, by), by, judging,
                                 accuracy_scores(audits))
    tiers = tier_ladder(regroup(fine, finest, ("network", "target")), judging, latest)
    days = tuple(DayPoint(network, day_label(day), *_judged_ok(counts))
                 for (network, day), counts in sorted(daily.kept.items()))
    months = tuple(monthly_credits(daily, judging.profiles, judging.default_profile,
                                   judging.spends))
    return Report(time.time(), tuple(sources), since, until, tuple(by), tuple(summaries),
                  (*notes, *notes_for(summaries)), tiers=tiers, days=days, months=months)


def latest_audits(audits: Sequence[QualityResult]) -> dict[tuple[str, str], QualityResult]:
    """(network, tier) -> its latest quality audit (whichever reference it was against)."""
    latest: dict[tuple[str, str], QualityResult] = {}
    for a in sorted(audits, key=lambda a: a.started_at):
        latest[(a.network, a.tier)] = a
    return latest


def accuracy_scores(audits: Sequence[QualityResult]
                    ) -> dict[tuple[str, str], tuple[int, int]]:
    """(network, tier) -> (correct, answered) in its latest quality audit, as the audited
    network or as the reference network (which answered the same items on the same tier);
    an answer file is no network and scores nothing."""
    scores: dict[tuple[str, str], tuple[int, int]] = {}
    for a in sorted(audits, key=lambda a: a.started_at):
        if a.pairs:
            scores[(a.reference, a.tier)] = (a.reference_correct, a.pairs)
            scores[(a.network, a.tier)] = (a.correct, a.pairs)
    return scores


def ranked_summaries(groups: Mapping[GroupKey, Aggregate], by: Sequence[str],
                     judging: Judging,
                     scores: Mapping[tuple[str, str], tuple[int, int]] | None = None
                     ) -> list[GroupSummary]:
    """The comparison's rows, ranked: one a group (keyed by the `by` fields), judged by its
    network's profile (groups that mix networks by the default) and priced by its price;
    `scores` (accuracy_scores) add accuracy as a ranking criterion."""
    where = list(by).index("network") if "network" in by else None
    tier_at = list(by).index("target") if "target" in by else None
    summaries = []
    by_group: dict[GroupKey, tuple[int, int]] = {}
    for key, group in groups.items():
        network = key[where] if where is not None else "-"
        summaries.append(summarise(key, group, judging.profile(network),
                                   judging.prices.get(network), network))
        mine = [score for (n, tier), score in (scores or {}).items() if n == network
                and (tier_at is None or key[tier_at] == tier)]
        if where is not None and mine:
            by_group[key] = (sum(k for k, _ in mine), sum(n for _, n in mine))
    return _ranked(summaries, groups, where, by_group)


def _judged_ok(counts: Mapping[str, int]) -> tuple[int, int]:
    judged = sum(n for o, n in counts.items() if counts_toward_availability(o))
    return judged, counts.get(Outcome.OK.value, 0)


def _ranked(summaries: list[GroupSummary], groups: Mapping[GroupKey, Aggregate],
            where: int | None, scores: Mapping[GroupKey, tuple[int, int]] | None = None
            ) -> list[GroupSummary]:
    """Rank the groups that differ only by network against each other (with --by
    network,target: the networks within each tier); order each such set by rank."""
    def name(key: GroupKey) -> str:
        return key[where] if where is not None else "/".join(key)

    def rest(key: GroupKey) -> GroupKey:
        return tuple(k for i, k in enumerate(key) if i != where) if where is not None else ()

    sets: dict[GroupKey, list[GroupSummary]] = {}
    for s in summaries:
        sets.setdefault(rest(s.key), []).append(s)
    out = []
    for _, members in sorted(sets.items()):
        placings = ranking.rank([_contender(name(s.key), groups[s.key],
                                            (scores or {}).get(s.key, (0, 0)))
                                 for s in members])
        placed = []
        for s in members:
            p = placings.get(name(s.key))
            placed.append(s if p is None else replace(
                s, rank=p.rank, tied_with=p.tied_with, beaten_by=p.beaten_by))
        out += sorted(placed, key=_order)
    return out


def _contender(name: str, group: Aggregate, score: tuple[int, int] = (0, 0)
               ) -> ranking.Contender:
    every = group.every()
    return ranking.Contender(name, every.count(Outcome.OK), every.judged_runs, every.ttft,
                             every.tps, correct=score[0], answered=score[1])


def _order(s: GroupSummary) -> tuple[float, float, float, float, tuple[str, ...]]:
    """By rank, then by the point estimates in the ranking's order, then by name."""
    return (s.rank if s.rank is not None else math.inf,
            -(s.availability or 0.0),
            s.ttft_p95_s if s.ttft_p95_s is not None else math.inf,
            -(s.decode_tps_median or 0.0), s.key)


def summarise(key: GroupKey, group: Aggregate, profile: SLAProfile,
              price: Mapping[str, float] | None, network: str) -> GroupSummary:
    """One row of the report: rates and intervals over every run of the group, verdicts over
    the runs outside maintenance windows."""
    every = group.every()
    runs, judged = every.runs, every.judged_runs
    ok = every.count(Outcome.OK)
    limited = every.count(Outcome.RATE_LIMITED)
    disconnects = every.count(Outcome.DISCONNECT)
    wrong = every.count(Outcome.WRONG_OUTPUT)
    done = every.completed
    start, end = group.first_at, group.last_at + 1e-6
    verdicts = sla.judge(group, profile, network=network, start=start, end=end).slis
    effective, listed = effective_cost(price, group.input_tokens, group.output_tokens,
                                       group.good_output_tokens)
    return GroupSummary(
        key=key, runs=runs, first_at=start, last_at=end, outcomes=dict(every.outcomes),
        availability=ok / judged if judged else None, availability_ci=wilson(ok, judged),
        availability_excl_rate_limited=ok / (judged - limited) if judged > limited else None,
        buyer_side=runs - judged,
        ttft_p50_s=every.ttft.quantile(0.5), ttft_p95_s=every.ttft.quantile(0.95),
        ttft_p95_ci=every.ttft.quantile_ci(0.95),
        e2e_p50_s=every.e2e.quantile(0.5), e2e_p99_s=every.e2e.quantile(0.99),
        e2e_p99_ci=every.e2e.quantile_ci(0.99),
        decode_tps_median=every.tps.quantile(0.5), decode_tps_ci=every.tps.quantile_ci(0.5),
        disconnect_rate=disconnects / judged if judged else None,
        disconnect_ci=wilson(disconnects, judged),
        wrong_output_rate=wrong / done if done else None,
        wrong_output_ci=wilson(wrong, done),
        output_tokens=group.output_tokens, good_output_tokens=group.good_output_tokens,
        nodes=len(group.nodes), profile=profile.name,
        verdicts=tuple(_verdict(s) for s in verdicts),
        effective_usd_per_mtok=effective, list_usd_per_mtok=listed,
        ttft_percentiles_s=_percentiles(every.ttft),
        decode_percentiles=_percentiles(every.tps),
    )


def _percentiles(values: Distribution) -> tuple[float, ...]:
    if not values.count():
        return ()
    return tuple(float(values.quantile(q) or 0.0) for q in PERCENTILES)


def tier_ladder(groups: Mapping[GroupKey, Aggregate], judging: Judging,
                audits: Mapping[tuple[str, str], QualityResult] | None = None
                ) -> tuple[TierCell, ...]:
    """Every (network, tier) judged against the network's profile: which model sizes a network
    really serves to its SLA. A profile with `quality_not_worse` also wants the tier's latest
    quality audit not to say "worse than reference" (an unaudited tier is judged without)."""
    cells = []
    for (network, tier), group in sorted(groups.items()):
        profile = judging.profile(network)
        s = summarise((network, tier), group, profile, None, network)
        state = {True: "met", False: "missed", None: "no data"}[s.sla_met]
        verdict = sla_cell(s).split(": ", 1)[1]
        audit = (audits or {}).get((network, tier))
        quality = None
        if audit is not None:
            quality = f"{audit.verdict.value} ({audit.reference})"
            if profile.quality_not_worse and audit.verdict is QualityVerdict.WORSE:
                state = "missed"
                verdict = (f"{verdict} + answers worse" if verdict.startswith("MISSES")
                           else "MISSES (answers worse)")
        cells.append(TierCell(network, tier, s.runs, s.availability, state, verdict, quality))
    return tuple(cells)


def effective_cost(price: Mapping[str, float] | None, input_tokens: int, output_tokens: int,
                   good_output_tokens: int) -> tuple[float | None, float | None]:
    """(USD per 1M good output tokens, list USD per 1M output tokens): every token billed,
    failed runs included, divided by the output tokens of ok runs."""
    if not price or ("output" not in price and "input" not in price):
        return None, None
    listed = float(price.get("output", 0.0))
    cost = (input_tokens * float(price.get("input", 0.0))
            + output_tokens * float(price.get("output", 0.0))) / 1e6
    return (cost / good_output_tokens * 1e6 if good_output_tokens else None), listed


def notes_for(summaries: Sequence[GroupSummary]) -> list[str]:
    notes = []
    if any(v.verdict.endswith("?") for s in summaries for v in s.verdicts):
        notes.append(UNSURE_NOTE)
    if any(s.buyer_side for s in summaries):
        notes.append(BUYER_SIDE_NOTE)
    if sum(s.rank is not None for s in summaries) > 1:
        notes.append(RANKING_NOTE)
    return notes


def _verdict(s: sla.SLIResult) -> Verdict:
    if not s.total:
        return Verdict(s.sli, s.target, s.value, "no data", s.bad, s.total)
    lo, hi = wilson(s.bad, s.total) or (0.0, 1.0)
    budget = s.error_budget
    if s.attained:
        word = "meets" if hi <= budget else "meets?"
    else:
        word = "misses" if lo > budget else "misses?"
    return Verdict(s.sli, s.target, s.value, word, s.bad, s.total)


def sla_cell(g: GroupSummary) -> str:
    """MEETS / MISSES (with the SLIs missed); '?' when the data cannot yet tell for sure."""
    judged = [v for v in g.verdicts if v.verdict != "no data"]
    if not judged:
        return f"{g.profile}: no data"
    missed = [v for v in judged if v.verdict.startswith("misses")]
    if missed:
        sure = any(v.verdict == "misses" for v in missed)
        names = ", ".join(v.sli for v in missed)
        return f"{g.profile}: MISSES{'' if sure else '?'} ({names})"
    unsure = any(v.verdict.endswith("?") for v in judged)
    return f"{g.profile}: MEETS{'?' if unsure else ''}"


def verdict_word(g: GroupSummary) -> str:
    """MEETS, MEETS?, MISSES, MISSES? or no data: the verdict without its reasons."""
    return sla_cell(g).split(": ", 1)[1].split(" (")[0]


def rank_cell(g: GroupSummary) -> str:
    if g.rank is None:
        return "-"
    return f"{g.rank} tied" if g.tied_with else str(g.rank)
