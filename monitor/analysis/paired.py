"""Paired comparison of two accuracies on the same items: McNemar's exact test and the
interval of the difference.

Each item is answered by both sides, so the items fall in four cells: both right (n11), only
the first side right (b = n10), only the second right (c = n01), neither (n00). Only the
discordant items (b + c) say anything about which side is better: under equal skill each is
equally likely to favour either side, so b ~ Binomial(b + c, 1/2) (McNemar, 1947; the exact
form is the sign test on the discordant pairs, Fagerland, Lydersen and Laake, BMC Medical
Research Methodology 13:91, 2013, recommend the exact or mid-p test over the chi-square one
for small counts). The interval of the difference p1 - p2 is Newcombe's method 10 (Statistics
in Medicine 17:2635, 1998: Wilson intervals of each side, combined with the correlation of
the pairs, as in R's biostatUZH, pkg/biostatUZH/R/confIntPairedProportion.R), which stays
inside [-1, 1] and behaves at 0 and n.
"""

from __future__ import annotations

import math

from monitor.analysis.stats import Z95, wilson


def binomial_cdf_half(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exactly (integers, then one division)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (1 with none):
    twice the smaller tail, at most 1. Symmetric in b and c."""
    if b < 0 or c < 0:
        raise ValueError("counts must be >= 0")
    return min(1.0, 2 * binomial_cdf_half(min(b, c), b + c))


def mcnemar_worse(b: int, c: int) -> float:
    """One-sided exact p-value for "the first side is worse": P(X <= b) for X ~
    Binomial(b + c, 1/2), where b counts the pairs only the first side got right and c those
    only the second got right. Small when b is small against c."""
    if b < 0 or c < 0:
        raise ValueError("counts must be >= 0")
    return binomial_cdf_half(b, b + c)


def paired_difference(n11: int, n10: int, n01: int, n00: int, z: float = Z95
                      ) -> tuple[float, float, float] | None:
    """(p1 - p2, low, high): the difference of the two sides' accuracies on the same items
    and its ~95 % interval (Newcombe's method 10); None without items. p1 is the first
    side's accuracy (n11 + n10) / n, p2 the second's (n11 + n01) / n."""
    if min(n11, n10, n01, n00) < 0:
        raise ValueError("counts must be >= 0")
    n = n11 + n10 + n01 + n00
    if n == 0:
        return None
    p1, p2 = (n11 + n10) / n, (n11 + n01) / n
    first, second = wilson(n11 + n10, n, z), wilson(n11 + n01, n, z)
    assert first is not None and second is not None
    (l1, u1), (l2, u2) = first, second
    margins = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    # Newcombe's correlation, shrunk toward 0 by n/2 when positive (as biostatUZH's
    # confIntPairedProportion.R does): without it, a table with no discordant pairs gets
    # an interval of width 0
    cross = n11 * n00 - n10 * n01
    shrunk = cross - n / 2 if cross > n / 2 else min(cross, 0)
    phi = shrunk / math.sqrt(margins) if margins else 0.0
    delta = p1 - p2
    down = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    up = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    low = max(-1.0, delta - math.sqrt(max(down, 0.0)))
    high = min(1.0, delta + math.sqrt(max(up, 0.0)))
    return delta, min(low, delta), max(high, delta)
