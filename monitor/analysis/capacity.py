"""Capacity maths: a ladder step's figures and verdict from its runs, and, over a period's
ladders, each network tier's sustained concurrency with its interval, its curves (latency and
throughput against concurrency) and the SLA capacity item's verdict (docs/capacity.md).

Pure functions over ProbeResults and stored ladders; percentiles are nearest-rank
(monitor.analysis.stats), judged the way the SLIs are (monitor.analysis.sla): "TTFT p95 <= T"
is "at most 5 % of the step's TTFTs above T", "decode >= X" is "at least half of its streams
decode at X or faster"; availability breaks only when the step's failures show it below the
target at 95 % confidence (Wilson), since a step holds few runs.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from monitor.analysis.stats import quantile, quantile_ci, wilson
from monitor.core.capacity import Ladder, Step, StepCriteria, Stop
from monitor.core.result import Outcome, ProbeResult, completed, counts_toward_availability
from monitor.core.slaprofile import CapacityObjective

MIN_LADDERS = 3  # fewer ladders than this: "not enough data" for a sustained figure


def summarise_step(streams: int, results: Sequence[ProbeResult], *, started_at: float,
                   elapsed_s: float, criteria: StepCriteria, judge: bool = True) -> Step:
    """A step's figures from its runs, and whether it held (`judge=False`: not judged, e.g.
    the step was cut short by a 429)."""
    outcomes = Counter(r.outcome.value for r in results)
    judged = [r for r in results if counts_toward_availability(r.outcome)]
    ok = [r for r in results if r.outcome is Outcome.OK]
    ttfts = sorted(r.ttft_s for r in results if r.ttft_s is not None)
    decode = sorted(r.tokens_per_s for r in results
                    if completed(r.outcome) and r.tokens_per_s is not None)
    tokens = sum(r.output_tokens or 0 for r in ok)
    runs = len(judged)
    good = sum(1 for r in judged if r.ok)
    availability = good / runs if runs else None
    step = Step(
        streams=streams, started_at=started_at, elapsed_s=elapsed_s, runs=len(results),
        outcomes=dict(outcomes), output_tokens=tokens,
        tokens_per_s=tokens / elapsed_s if elapsed_s > 0 and results else None,
        stream_tps_p50=quantile(decode, 0.5), ttft_p50_s=quantile(ttfts, 0.5),
        ttft_p95_s=quantile(ttfts, 0.95),
        error_rate=1.0 - availability if availability is not None else None,
        disconnect_rate=(outcomes.get(Outcome.DISCONNECT.value, 0) / runs if runs else None),
        held=None, results=tuple(results))
    if not judge or not runs:
        return step
    broke = _broken(step, good, runs, decode, criteria)
    return dataclasses.replace(step, held=not broke, broke=tuple(broke))


def _broken(step: Step, good: int, runs: int, decode: Sequence[float],
            criteria: StepCriteria) -> list[str]:
    """What the step missed, in words (empty: it held). `good` of `runs` (those that count
    toward availability) were ok."""
    broke = []
    if criteria.availability is not None and _surely_below(good, runs, criteria.availability):
        broke.append(f"availability {good / runs:.1%} < {criteria.availability:.1%}")
    if criteria.ttft_p95_s is not None:
        if step.ttft_p95_s is None:
            broke.append("no first token")
        elif step.ttft_p95_s > criteria.ttft_p95_s:
            broke.append(f"TTFT p95 {step.ttft_p95_s:.2f} s > {criteria.ttft_p95_s:g} s")
    if criteria.decode_tps_min is not None and decode:
        # "at least half the streams decode at the floor or faster" (the decode_tps SLI)
        slow = sum(1 for v in decode if v < criteria.decode_tps_min)
        if slow > len(decode) / 2:
            median = step.stream_tps_p50 or 0.0
            broke.append(f"decode {median:.1f} tok/s < {criteria.decode_tps_min:g} tok/s")
    return broke


def _surely_below(good: int, runs: int, target: float) -> bool:
    """The step's failures show, at 95 % confidence, an availability below the target: the
    Wilson interval of its failure share lies above the budget (the report's MISSES). So one
    failure among many runs at a network's usual failure rate is not mistaken for a knee,
    while a step that sheds load fails it at once."""
    interval = wilson(runs - good, runs)
    return interval is not None and interval[0] > 1.0 - target


# -- over a period's ladders ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One concurrency level of a tier's curves: medians over the ladders that reached it."""

    streams: int
    ladders: int  # how many ladders ran this step
    held: int  # ... and how many of them held it
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    tokens_per_s: float | None  # aggregate output tokens/s of ok runs
    stream_tps_p50: float | None  # per-stream decode rate
    error_rate: float | None


@dataclass(frozen=True, slots=True)
class CapacityVerdict:
    """The SLA capacity item over the period's ladders."""

    streams: int
    share_required: float
    met: int  # ladders that sustained `streams`
    judged: int  # ladders that could say (not stopped by our own budget below `streams`)
    verdict: str  # meets | misses | meets? | misses? | no data


@dataclass(frozen=True, slots=True)
class TierCapacity:
    """What the period's ladders say of one network tier. The sustained figure comes from the
    ladders that measured it (they found a knee, or held every step: then it is a lower bound);
    ladders stopped early (a 429, our key or credits, our budget, a shutdown) are only
    counted in `stops`."""

    network: str
    target: str
    ladders: int
    sustained: tuple[int, ...]  # each measuring ladder's sustained concurrency, ascending
    top_held: int  # measuring ladders that held every step (their figure is a lower bound)
    sustained_p50: int | None  # median; None: not enough ladders (MIN_LADDERS)
    sustained_ci: tuple[int, int] | None  # distribution-free ~95 % interval of the median
    knee_range: tuple[int, int] | None  # the usual (last held, first broken) bracket
    stops: Mapping[str, int]
    curve: tuple[CurvePoint, ...]
    verdict: CapacityVerdict | None
    first_at: float
    last_at: float

    @property
    def enough(self) -> bool:
        return self.sustained_p50 is not None

    def statement(self) -> str:
        """The sustained concurrency and its interval in words, or that the data is not enough."""
        early = {stop: n for stop, n in self.stops.items() if stop not in MEASURED}
        others = (f"; {sum(early.values())} stopped early ("
                  + ", ".join(f"{stop} {n}" for stop, n in sorted(early.items())) + ")"
                  if early else "")
        n = len(self.sustained)
        if not self.enough:
            seen = f": sustained {', '.join(map(str, self.sustained))}" if n else ""
            return (f"not enough data: {n} measuring ladder{'' if n == 1 else 's'} "
                    f"(at least {MIN_LADDERS} needed){seen}{others}")
        assert self.sustained_p50 is not None and self.sustained_ci is not None
        lo, hi = self.sustained_ci
        if self.top_held * 2 > n:
            text = (f"sustains at least {self.sustained_p50} streams: every step held in "
                    f"{self.top_held} of {n} ladders")
        else:
            text = f"sustains {self.sustained_p50} streams (95 % CI {lo}-{hi}, {n} ladders)"
            if self.knee_range is not None:
                text += f"; breaks between {self.knee_range[0]} and {self.knee_range[1]} streams"
        return text + others


MEASURED = (Stop.KNEE.value, Stop.TOP.value)  # the stops whose ladder measured a capacity


def tier_capacity(ladders: Sequence[Ladder], objective: CapacityObjective | None = None
                  ) -> TierCapacity:
    """One tier's ladders (one network, one target) summarised."""
    if not ladders:
        raise ValueError("tier_capacity needs at least one ladder")
    measuring = [ladder for ladder in ladders
                 if ladder.stopped.value in MEASURED and ladder.sustained is not None]
    sustained = sorted(ladder.sustained or 0 for ladder in measuring)
    enough = len(sustained) >= MIN_LADDERS
    ci = quantile_ci(sustained, 0.5) if enough else None
    p50 = quantile(sustained, 0.5) if enough else None
    return TierCapacity(
        network=ladders[0].network, target=ladders[0].target, ladders=len(ladders),
        sustained=tuple(sustained),
        top_held=sum(1 for ladder in measuring if ladder.stopped is Stop.TOP),
        sustained_p50=None if p50 is None else int(p50),
        sustained_ci=(int(ci[0]), int(ci[1])) if ci else None,
        knee_range=_knee_range(measuring),
        stops=dict(Counter(ladder.stopped.value for ladder in ladders)),
        curve=_curve(ladders),
        verdict=judge_capacity(ladders, objective) if objective else None,
        first_at=min(ladder.started_at for ladder in ladders),
        last_at=max(ladder.started_at + ladder.elapsed_s for ladder in ladders))


def _knee_range(ladders: Sequence[Ladder]) -> tuple[int, int] | None:
    """The most common (last held, first broken) bracket of the ladders that found a knee:
    where the knee lies at the ladder's resolution."""
    brackets = Counter((ladder.sustained or 0, ladder.knee) for ladder in ladders
                       if ladder.knee is not None)
    if not brackets:
        return None
    held, broke = brackets.most_common(1)[0][0]
    assert broke is not None
    return held, broke


def _curve(ladders: Sequence[Ladder]) -> tuple[CurvePoint, ...]:
    by_streams: dict[int, list[Step]] = defaultdict(list)
    for ladder in ladders:
        for step in ladder.steps:
            by_streams[step.streams].append(step)
    points = []
    for streams in sorted(by_streams):
        steps = by_streams[streams]
        points.append(CurvePoint(
            streams=streams, ladders=len(steps), held=sum(1 for s in steps if s.held),
            ttft_p50_s=_median(s.ttft_p50_s for s in steps),
            ttft_p95_s=_median(s.ttft_p95_s for s in steps),
            tokens_per_s=_median(s.tokens_per_s for s in steps),
            stream_tps_p50=_median(s.stream_tps_p50 for s in steps),
            error_rate=_median(s.error_rate for s in steps)))
    return tuple(points)


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def judge_capacity(ladders: Sequence[Ladder], objective: CapacityObjective
                   ) -> CapacityVerdict:
    """"Sustains N streams" over ladders: each ladder that reached a verdict at N is an event,
    good when its sustained concurrency is N or more. A ladder our own budget stopped below N
    says nothing; one rate-limited below N did not sustain N. The item is met when a share
    `objective.ladders` of the events are good; as in the report, '?' marks a verdict whose
    95 % Wilson interval still straddles that share."""
    met = judged = 0
    for ladder in ladders:
        sustained = ladder.sustained or 0
        if sustained >= objective.streams:
            met += 1
            judged += 1
        elif ladder.knee is not None or ladder.stopped is Stop.RATE_LIMITED:
            judged += 1
    if not judged:
        return CapacityVerdict(objective.streams, objective.ladders, 0, 0, "no data")
    lo, hi = wilson(met, judged) or (0.0, 1.0)
    share = met / judged
    if share >= objective.ladders:
        word = "meets" if lo >= objective.ladders else "meets?"
    else:
        word = "misses" if hi < objective.ladders else "misses?"
    return CapacityVerdict(objective.streams, objective.ladders, met, judged, word)


def by_tier(ladders: Iterable[Ladder], objectives: Mapping[str, CapacityObjective] | None = None
            ) -> list[TierCapacity]:
    """Every (network, tier)'s capacity, sorted; `objectives` by network name."""
    groups: dict[tuple[str, str], list[Ladder]] = defaultdict(list)
    for ladder in ladders:
        groups[(ladder.network, ladder.target)].append(ladder)
    objectives = objectives or {}
    return [tier_capacity(sorted(group, key=lambda x: x.started_at), objectives.get(key[0]))
            for key, group in sorted(groups.items())]
