"""Ranking with honest ties: one network is placed above another only when a difference is
significant at 95 %, criterion by criterion in a stated order (docs/report.md).

For each pair the criteria are tried in order; the first whose 95 % interval for the
difference excludes zero decides the pair, and a pair no criterion decides is a tie:

    availability   higher is better  two-proportion: Newcombe's hybrid score interval for
                                     p1 - p2, built from Wilson intervals
    accuracy       higher is better  the same, on the items of the networks' latest quality
                                     audits (docs/quality.md); tried only when both have one
    ttft_p95       lower is better   bootstrap of the difference of the two p95s
    decode_median  higher is better  bootstrap of the difference of the two medians

A network's rank is 1 + the number of networks that beat it (Chatbot Arena ranks models this
way), and it is tied with every network no criterion separates from it. A pair's decision is
significant at 95 % as a whole: each of the criteria tried for the pair is tested at
1 - 5 % / k (Bonferroni, k = 3, or 4 with accuracy: 98.3 % or 98.75 %), since any one of them
may decide. There is no correction for the number of pairs.

The bootstrap draws the resampled nearest-rank quantile directly: among n values resampled
with replacement, the k-th smallest is the value at rank ceil(n * U) with U ~ Beta(k,
n - k + 1), so each resample is one `random.betavariate` draw, exact for raw runs and for the
rollups' histograms alike. Seeded: the same runs always give the same ranking.
"""

from __future__ import annotations

import math
import random
import statistics
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from monitor.analysis.queries import Distribution
from monitor.analysis.stats import Z95, quantile_rank, wilson

RESAMPLES = 2000
CONFIDENCE = 0.95  # of a pair's decision as a whole

# (name, higher is better, quantile read off the distribution for bootstrapped criteria)
AVAILABILITY = "availability"
ACCURACY = "accuracy"
TTFT_P95 = "ttft_p95"
DECODE_MEDIAN = "decode_median"
CRITERIA = (AVAILABILITY, ACCURACY, TTFT_P95, DECODE_MEDIAN)
CANARY_CRITERIA = (AVAILABILITY, TTFT_P95, DECODE_MEDIAN)  # a pair without two audits
# Up to three criteria (four with accuracy) are tried per pair: each is tested at
# 1 - 0.05 / k (Bonferroni), so that two equal networks are told apart by any of them at most
# 5 % of the time.
PER_CRITERION = 1.0 - (1.0 - CONFIDENCE) / len(CANARY_CRITERIA)
PER_CRITERION_WITH_ACCURACY = 1.0 - (1.0 - CONFIDENCE) / len(CRITERIA)


def _z(level: float) -> float:
    return statistics.NormalDist().inv_cdf(1.0 - (1.0 - level) / 2)


Z = _z(PER_CRITERION)


@dataclass(frozen=True, slots=True)
class Contender:
    """What a group is ranked on: its availability counts and two timing distributions."""

    name: str
    ok: int
    judged: int  # runs that count toward availability
    ttft: Distribution
    decode: Distribution
    correct: int = 0  # quality audit items answered right (docs/quality.md)
    answered: int = 0  # quality audit items judged; 0: no audit, accuracy is not tried


@dataclass(frozen=True, slots=True)
class Decision:
    """How a pair came out: `winner` (a name) by `criterion`, or a tie (both None)."""

    winner: str | None
    criterion: str | None
    difference: tuple[float, float] | None = None  # the deciding 95 % interval


@dataclass(frozen=True, slots=True)
class Placing:
    name: str
    rank: int
    tied_with: tuple[str, ...]
    beaten_by: tuple[tuple[str, str], ...]  # (name, deciding criterion)


def rank(contenders: Sequence[Contender], resamples: int = RESAMPLES) -> dict[str, Placing]:
    """Placings of the contenders with data; a contender without judged runs is left out."""
    ranked = [c for c in contenders if c.judged > 0]
    samples = {c.name: _Resampled(c, resamples) for c in ranked}
    beaten_by: dict[str, list[tuple[str, str]]] = {c.name: [] for c in ranked}
    tied: dict[str, list[str]] = {c.name: [] for c in ranked}
    for i, a in enumerate(ranked):
        for b in ranked[i + 1:]:
            decision = compare(a, b, samples[a.name], samples[b.name])
            if decision.winner is None:
                tied[a.name].append(b.name)
                tied[b.name].append(a.name)
            else:
                loser = b.name if decision.winner == a.name else a.name
                beaten_by[loser].append((decision.winner, decision.criterion or ""))
    return {c.name: Placing(c.name, 1 + len(beaten_by[c.name]), tuple(sorted(tied[c.name])),
                            tuple(sorted(beaten_by[c.name])))
            for c in ranked}


def compare(a: Contender, b: Contender, a_samples: _Resampled | None = None,
            b_samples: _Resampled | None = None) -> Decision:
    """The first criterion whose interval of a - b excludes zero decides."""
    a_samples = a_samples or _Resampled(a)
    b_samples = b_samples or _Resampled(b)
    audited = a.answered > 0 and b.answered > 0
    criteria = CRITERIA if audited else CANARY_CRITERIA
    level = PER_CRITERION_WITH_ACCURACY if audited else PER_CRITERION
    for criterion in criteria:
        if criterion == AVAILABILITY:
            interval = newcombe(a.ok, a.judged, b.ok, b.judged, _z(level))
            higher_is_better = True
        elif criterion == ACCURACY:
            interval = newcombe(a.correct, a.answered, b.correct, b.answered, _z(level))
            higher_is_better = True
        else:
            interval = _bootstrap_difference(a_samples.of(criterion), b_samples.of(criterion),
                                             level)
            higher_is_better = criterion == DECODE_MEDIAN
        if interval is None or interval[0] <= 0.0 <= interval[1]:
            continue
        a_higher = interval[0] > 0.0
        winner = a.name if a_higher == higher_is_better else b.name
        return Decision(winner, criterion, interval)
    return Decision(None, None)


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95
             ) -> tuple[float, float] | None:
    """Interval for p1 - p2 (Newcombe 1998, method 10: the hybrid score interval from the two
    Wilson intervals; 95 % at the default z). Sane at 0 % and 100 %, where the normal
    approximation is not."""
    w1, w2 = wilson(k1, n1, z), wilson(k2, n2, z)
    if w1 is None or w2 is None:
        return None
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    return (d - math.hypot(p1 - w1[0], w2[1] - p2), d + math.hypot(w1[1] - p1, p2 - w2[0]))


class _Resampled:
    """Bootstrap replicates of a contender's p95 TTFT and median decode rate."""

    def __init__(self, contender: Contender, resamples: int = RESAMPLES) -> None:
        # Seeded by the name: the ranking does not depend on the order groups arrive in.
        rng = random.Random(zlib.crc32(contender.name.encode()))
        self._replicates = {
            TTFT_P95: bootstrap_quantile(contender.ttft, 0.95, resamples, rng),
            DECODE_MEDIAN: bootstrap_quantile(contender.decode, 0.5, resamples, rng),
        }

    def of(self, criterion: str) -> list[float]:
        return self._replicates[criterion]


def bootstrap_quantile(values: Distribution, q: float, resamples: int,
                       rng: random.Random) -> list[float]:
    """`resamples` bootstrap replicates of the nearest-rank q-quantile (empty without data)."""
    n = values.count()
    if not n:
        return []
    k = quantile_rank(n, q)
    at: Callable[[int], float] = values.at_rank
    return [at(max(1, math.ceil(n * rng.betavariate(k, n - k + 1)))) for _ in range(resamples)]


def _bootstrap_difference(a: Sequence[float], b: Sequence[float],
                          level: float = PER_CRITERION) -> tuple[float, float] | None:
    """Percentile interval of the replicates' differences a - b."""
    if not a or not b:
        return None
    differences = sorted(x - y for x, y in zip(a, b, strict=True))
    tail = (1.0 - level) / 2
    n = len(differences)
    return (differences[quantile_rank(n, tail) - 1],
            differences[quantile_rank(n, 1.0 - tail) - 1])
