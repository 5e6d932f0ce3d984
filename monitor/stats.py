"""Small-sample statistics for honest comparisons: Wilson intervals for rates and
distribution-free (order-statistic) confidence intervals for percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95 % Wilson score interval for a proportion k/n; None without trials. Unlike the
    normal approximation it stays inside [0, 1] and is sane at 0 and n successes."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank q-quantile of an ascending sequence (the same rule as monitor.sla)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return ordered[rank - 1]


def quantile_ci(ordered: Sequence[float], q: float, z: float = Z95
                ) -> tuple[float, float] | None:
    """Distribution-free ~95 % interval for the q-quantile from order statistics (normal
    approximation to the binomial ranks). With too few samples for a bound the interval is
    open on that side and reported as the sample's extreme."""
    n = len(ordered)
    if n == 0:
        return None
    spread = z * math.sqrt(n * q * (1 - q))
    lo = max(1, math.floor(n * q - spread))
    hi = min(n, math.ceil(n * q + spread) + 1)
    return ordered[lo - 1], ordered[hi - 1]


def median(ordered: Sequence[float]) -> float | None:
    return quantile(ordered, 0.5)
