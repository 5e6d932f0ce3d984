"""The paired comparison's statistics: McNemar's exact test against enumeration of every
outcome on small cases, its level held exactly under equal skill, Newcombe's interval of the
paired difference (coverage by exact enumeration), and hypothesis finding no input that
breaks them."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.paired import (
    binomial_cdf_half,
    mcnemar_exact,
    mcnemar_worse,
    paired_difference,
)


def enumerated_tail(k: int, n: int) -> float:
    """P(X <= k), X ~ Binomial(n, 1/2), by listing all 2^n sign patterns."""
    hits = sum(1 for signs in itertools.product((0, 1), repeat=n) if sum(signs) <= k)
    return hits / 2 ** n


@pytest.mark.parametrize("n", range(0, 13))
def test_the_exact_tails_equal_enumeration(n: int) -> None:
    for b in range(n + 1):
        c = n - b
        assert mcnemar_worse(b, c) == pytest.approx(enumerated_tail(b, n), abs=1e-15)
        smaller = enumerated_tail(min(b, c), n)
        assert mcnemar_exact(b, c) == pytest.approx(min(1.0, 2 * smaller), abs=1e-15)


def test_worked_values() -> None:
    # 2 of 12 discordant pairs favour the network: P(X <= 2) = (1 + 12 + 66) / 4096
    assert mcnemar_worse(2, 10) == pytest.approx(79 / 4096)
    assert mcnemar_exact(2, 10) == pytest.approx(2 * 79 / 4096)
    assert mcnemar_worse(0, 0) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_worse(5, 0) == 1.0  # only the network was right: not worse


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_under_equal_skill_worse_is_said_at_most_alpha_of_the_time(alpha: float) -> None:
    for n in range(0, 61):  # every number of discordant pairs
        rejected = sum(math.comb(n, b) for b in range(n + 1) if mcnemar_worse(b, n - b) < alpha)
        assert rejected / 2 ** n <= alpha


def test_the_difference_interval_covers_at_least_about_95_percent_by_exact_enumeration() -> None:
    n = 24
    for cells in ((0.6, 0.1, 0.2, 0.1), (0.8, 0.05, 0.05, 0.1), (0.3, 0.3, 0.1, 0.3)):
        truth = cells[1] - cells[2]
        covered = 0.0
        for n11 in range(n + 1):
            for n10 in range(n + 1 - n11):
                for n01 in range(n + 1 - n11 - n10):
                    n00 = n - n11 - n10 - n01
                    prob = (math.factorial(n) / (math.factorial(n11) * math.factorial(n10)
                            * math.factorial(n01) * math.factorial(n00))
                            * cells[0] ** n11 * cells[1] ** n10 * cells[2] ** n01
                            * cells[3] ** n00)
                    result = paired_difference(n11, n10, n01, n00)
                    assert result is not None
                    if result[1] <= truth <= result[2]:
                        covered += prob
        assert covered >= 0.93, (cells, covered)  # at most a little below 95 %, often above


def test_the_difference_on_known_tables() -> None:
    assert paired_difference(0, 0, 0, 0) is None
    delta, low, high = paired_difference(40, 2, 12, 6)
    assert delta == pytest.approx((42 - 52) / 60)
    assert low < delta < high < 0  # clearly worse
    delta, low, high = paired_difference(30, 0, 0, 30)  # no discordant pair: still unsure
    assert delta == 0 and low < -0.01 and high > 0.01


counts = st.integers(0, 400)


@settings(max_examples=100, deadline=None)
@given(counts, counts, counts, counts)
def test_nothing_breaks_the_paired_statistics(n11: int, b: int, c: int, n00: int) -> None:
    p_worse, p_two = mcnemar_worse(b, c), mcnemar_exact(b, c)
    assert 0 <= p_worse <= 1 and 0 <= p_two <= 1
    assert p_two == mcnemar_exact(c, b)  # symmetric
    assert min(p_worse, mcnemar_worse(c, b)) <= p_two + 1e-12
    result = paired_difference(n11, b, c, n00)
    if n11 + b + c + n00 == 0:
        assert result is None
        return
    assert result is not None
    delta, low, high = result
    assert -1 <= low <= delta <= high <= 1
    swapped = paired_difference(n11, c, b, n00)
    assert swapped is not None
    assert swapped[0] == pytest.approx(-delta, abs=1e-12)
    assert (swapped[1], swapped[2]) == pytest.approx((-high, -low), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 300), st.integers(0, 300))
def test_the_tail_grows_with_k(k: int, n: int) -> None:
    assert binomial_cdf_half(k, n) <= binomial_cdf_half(k + 1, n)
