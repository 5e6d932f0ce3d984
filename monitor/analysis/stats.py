"""Small-sample statistics for honest comparisons: Wilson intervals for rates and
distribution-free (order-statistic) confidence intervals for percentiles.

Quantiles are nearest-rank everywhere (the SLA maths, the report, the rollups' histograms):
`quantile_rank` and `quantile_ci_ranks` are the one definition of which ranks they read.
"""

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


def quantile_rank(n: int, q: float) -> int:
    """The 1-based rank of the nearest-rank q-quantile among n values: ceil(q * n), at least 1."""
    return max(1, math.ceil(q * n - 1e-9))


def quantile_ci_ranks(n: int, q: float, z: float = Z95) -> tuple[int, int]:
    """1-based ranks bounding a distribution-free ~95 % interval for the q-quantile (normal
    approximation to the binomial ranks), clamped to the sample: with too few values for a
    bound the interval is open on that side and reported as the sample's extreme."""
    spread = z * math.sqrt(n * q * (1 - q))
    return max(1, math.floor(n * q - spread)), min(n, math.ceil(n * q + spread) + 1)


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank q-quantile of an ascending sequence."""
    if not ordered:
        return None
    return ordered[quantile_rank(len(ordered), q) - 1]


def quantile_ci(ordered: Sequence[float], q: float, z: float = Z95
                ) -> tuple[float, float] | None:
    """Order-statistic ~95 % interval for the q-quantile of an ascending sequence."""
    if not ordered:
        return None
    lo, hi = quantile_ci_ranks(len(ordered), q, z)
    return ordered[lo - 1], ordered[hi - 1]


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank q-quantile of values in any order; None for no values."""
    return quantile(sorted(values), q)


def median(ordered: Sequence[float]) -> float | None:
    return quantile(ordered, 0.5)
