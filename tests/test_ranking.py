"""Ranking with honest ties: the two-proportion interval, the quantile bootstrap, and ranks."""

from __future__ import annotations

import random
import statistics

import pytest

from monitor.analysis.queries import Buckets, Samples
from monitor.analysis.ranking import (
    Contender,
    bootstrap_quantile,
    compare,
    newcombe,
    rank,
)
from monitor.analysis.stats import quantile


def test_newcombe_matches_the_published_example() -> None:
    """Newcombe (1998), Statistics in Medicine 17:873, Table II, example (a): 56/70 vs 48/80,
    method 10 (hybrid score) gives 0.0524 to 0.3339."""
    lo, hi = newcombe(56, 70, 48, 80) or (0.0, 0.0)
    assert lo == pytest.approx(0.0524, abs=5e-5)
    assert hi == pytest.approx(0.3339, abs=5e-5)


def test_newcombe_is_sane_at_zero_failures() -> None:
    """200 clean runs against 199 of 200: no significant difference (the normal
    approximation would call it one)."""
    lo, hi = newcombe(200, 200, 199, 200) or (0.0, 0.0)
    assert lo < 0 < hi


def test_the_quantile_bootstrap_matches_resampling_by_hand() -> None:
    """One Beta draw per replicate stands for resampling n values and reading the
    nearest-rank quantile: both give the same distribution of the p95."""
    rng = random.Random(7)
    values = [rng.lognormvariate(0, 0.8) for _ in range(300)]
    drawn = bootstrap_quantile(Samples(values), 0.95, 4000, random.Random(1))
    by_hand = []
    resampler = random.Random(2)
    for _ in range(4000):
        by_hand.append(quantile(sorted(resampler.choices(values, k=len(values))), 0.95))
    assert statistics.mean(drawn) == pytest.approx(statistics.mean(by_hand), rel=0.02)
    assert statistics.stdev(drawn) == pytest.approx(statistics.stdev(by_hand), rel=0.1)
    for q in (0.05, 0.5, 0.95):
        assert quantile(sorted(drawn), q) == pytest.approx(quantile(sorted(by_hand), q),
                                                           rel=0.03)


def test_the_bootstrap_reads_rollup_histograms_too() -> None:
    values = [0.1 * (1 + i % 50) for i in range(1000)]
    buckets = Buckets()
    for v in values:
        buckets.add(v)
    exact = bootstrap_quantile(Samples(values), 0.95, 500, random.Random(3))
    rolled = bootstrap_quantile(buckets, 0.95, 500, random.Random(3))
    assert statistics.mean(rolled) == pytest.approx(statistics.mean(exact), rel=0.006)


def contender(name: str, ok: int, runs: int, ttft: float, decode: float, seed: int,
              spread: float = 0.3) -> Contender:
    rng = random.Random(seed)
    return Contender(name, ok, runs,
                     Samples(ttft * rng.lognormvariate(0, spread) for _ in range(runs)),
                     Samples(decode * rng.lognormvariate(0, 0.1) for _ in range(runs)))


def test_a_pair_is_decided_by_the_first_significant_criterion() -> None:
    fast = contender("fast", 400, 400, ttft=0.2, decode=40, seed=1)
    slow = contender("slow", 400, 400, ttft=0.8, decode=40, seed=2)
    decision = compare(fast, slow)
    assert (decision.winner, decision.criterion) == ("fast", "ttft_p95")
    flaky = contender("flaky", 340, 400, ttft=0.2, decode=40, seed=3)
    assert compare(slow, flaky).criterion == "availability"  # availability comes first
    assert compare(slow, flaky).winner == "slow"


def test_equal_networks_share_a_rank_and_the_worse_one_ranks_below() -> None:
    placings = rank([
        contender("a", 396, 400, ttft=0.4, decode=40, seed=11),
        contender("b", 397, 400, ttft=0.4, decode=40, seed=12),
        contender("flaky", 330, 400, ttft=0.9, decode=15, seed=13),
    ])
    assert (placings["a"].rank, placings["b"].rank, placings["flaky"].rank) == (1, 1, 3)
    assert placings["a"].tied_with == ("b",) and placings["flaky"].tied_with == ()
    assert {name for name, _ in placings["flaky"].beaten_by} == {"a", "b"}


def test_a_network_without_judged_runs_is_not_ranked() -> None:
    placings = rank([contender("a", 10, 10, 0.1, 10, 1), Contender("b", 0, 0, Samples(),
                                                                   Samples())])
    assert set(placings) == {"a"}


def test_ranking_does_not_depend_on_the_order_groups_come_in() -> None:
    group = [contender(n, 190 + i, 200, ttft=0.3 + 0.01 * i, decode=30, seed=i)
             for i, n in enumerate("abcde")]
    assert rank(group) == rank(list(reversed(group)))
