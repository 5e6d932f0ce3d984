"""How much evidence a burn-rate alert needs before it fires, and what a probe rate resolves.

A burn-rate tier (factor f, long and short window) fires on the error ratio alone in Sloth's
and the SRE workbook's rules. A prober sends few runs, so the ratio of a window can be a
handful of runs: one failure in 60 is 1.7 %, a 14.4x burn of a 99.9 % budget, and a network
exactly at its objective shows it in 5.8 % of hours. The evidence condition adds a minimum:
the long window must also hold at least `min_failures(n, budget)` failures, the least count a
network exactly at its objective reaches in at most `EVIDENCE_ALPHA` of windows of n runs
(the exact binomial tail; at one to five failures a normal or Wilson bound is far from exact).

A config *resolves* a tier when a network burning exactly at the tier's rate is expected to
reach that minimum within the long window (n * f * budget >= minimum): then the minimum adds
nothing to the Sloth threshold for such a network and the alert is Sloth's. Where it does not,
the alert still fires, on the minimum, for networks burning faster (docs/sla.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

# A network exactly at its objective reaches a window's minimum in at most this share of
# windows; chosen with benchmarks/false_pages.py (the month's false-page table, docs/sla.md).
EVIDENCE_ALPHA = 1e-5


def _log_pmf(n: int, p: float, k: int) -> float:
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def upper_tail(n: int, p: float, k: int) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly from k upward."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    total, j = 0.0, k
    while j <= n:
        term = math.exp(_log_pmf(n, p, j))
        total += term
        if j > n * p and term < total * 1e-17:
            break
        j += 1
    return min(total, 1.0)


@lru_cache(maxsize=4096)
def min_failures(n: int, budget: float, alpha: float = EVIDENCE_ALPHA) -> int:
    """The least k with P(Binomial(n, budget) >= k) <= alpha: a network exactly at its
    objective (error ratio = budget) shows k or more failures in n runs in at most alpha of
    windows. At least 1."""
    if n <= 0 or budget <= 0.0:
        return 1
    k = max(1, math.floor(n * budget))
    tail = upper_tail(n, budget, k)
    while tail > alpha and k <= n:
        tail -= math.exp(_log_pmf(n, budget, k))
        k += 1
        if tail <= alpha * 10:  # recompute near the answer: subtraction loses digits
            tail = upper_tail(n, budget, k)
    return k


def resolves(n: int, budget: float, factor: float, alpha: float = EVIDENCE_ALPHA) -> bool:
    """A network burning at `factor` x the budget is expected to reach the minimum in n runs."""
    return n * factor * budget >= min_failures(n, budget, alpha)


@lru_cache(maxsize=1024)
def runs_to_resolve(budget: float, factor: float, alpha: float = EVIDENCE_ALPHA) -> int:
    """The least runs per window that resolve a burn of `factor` x the budget."""
    lo, hi = 1, 1
    while not resolves(hi, budget, factor, alpha):
        lo, hi = hi, hi * 2
        if hi > 10**9:
            return hi
    while lo < hi:
        mid = (lo + hi) // 2
        if resolves(mid, budget, factor, alpha):
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True, slots=True)
class Resolution:
    """What one burn tier can resolve at a network's probe rate."""

    runs: int  # runs the long window holds at the configured rate
    minimum: int  # failures the long window needs before the tier fires
    resolved: bool
    runs_needed: int  # runs per long window that would resolve the tier
    burn_needed: float  # the burn (x budget) whose expected failures reach the minimum


def resolution(runs: int, budget: float, factor: float) -> Resolution:
    minimum = min_failures(runs, budget)
    return Resolution(runs=runs, minimum=minimum, resolved=resolves(runs, budget, factor),
                      runs_needed=runs_to_resolve(budget, factor),
                      burn_needed=minimum / (runs * budget) if runs and budget else math.inf)
