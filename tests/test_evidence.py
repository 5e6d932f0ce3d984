"""The evidence a burn-rate page needs (monitor/analysis/evidence.py): the minimum failures
against the exact binomial tail, what a probe rate resolves, and the simulation behind
docs/sla.md's false-page table agreeing with promtool on the same scenarios."""

from __future__ import annotations

import importlib.util
import sys
from fractions import Fraction
from math import comb
from pathlib import Path
from types import ModuleType

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.evidence import (
    EVIDENCE_ALPHA,
    min_failures,
    resolution,
    runs_to_resolve,
    upper_tail,
)
from tests import promtool_evidence

ROOT = Path(__file__).resolve().parent.parent


def exact_tail(n: int, p: Fraction, k: int) -> Fraction:
    return sum((comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1)), Fraction(0))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 90), budget=st.sampled_from([0.001, 0.005, 0.01, 0.05]))
def test_the_minimum_is_the_least_count_a_network_at_its_objective_rarely_reaches(
        n: int, budget: float) -> None:
    k = min_failures(n, budget)
    p = Fraction(budget)
    if k <= n:
        assert exact_tail(n, p, k) <= EVIDENCE_ALPHA
    if k > 1:
        assert exact_tail(n, p, k - 1) > EVIDENCE_ALPHA
    assert abs(upper_tail(n, budget, k) - float(exact_tail(n, p, k))) < 1e-12


def test_one_run_a_minute_cannot_resolve_a_page_at_999_and_ten_can() -> None:
    """At 99.9 % a 14.4x burn is 0.86 failures an hour at one run a minute: not told from a
    network at its objective, whose hour shows 4 failures in fewer than 1e-5 of hours."""
    low = resolution(60, 0.001, 14.4)
    assert (low.minimum, low.resolved) == (4, False)
    assert low.burn_needed > 60  # 4 of 60 runs: a 67x burn
    busy = resolution(600, 0.001, 14.4)
    assert (busy.minimum, busy.resolved) == (7, True)
    needed = runs_to_resolve(0.001, 14.4)
    assert resolution(needed, 0.001, 14.4).resolved
    assert not resolution(needed - 1, 0.001, 14.4).resolved
    assert 60 < needed <= 600
    assert resolution(60, 0.05, 14.4).resolved  # a p95 latency budget (5 %) resolves easily


def load_false_pages() -> ModuleType:
    spec = importlib.util.spec_from_file_location("false_pages", ROOT / "benchmarks" /
                                                  "false_pages.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["false_pages"] = module
    spec.loader.exec_module(module)
    return module


def test_the_simulation_pages_where_promtool_does() -> None:
    """Each promtool scenario of tests/promtool_evidence.py through the simulation's
    evaluator: the same verdict at every checked minute (the rules: evidence.test.yml)."""
    sim = load_false_pages()
    for sc in promtool_evidence.scenarios():
        minutes = np.array([[0.0] * sim.WARM + sc.failures])
        firing = sim.pages(minutes, float(sc.runs_per_min), 0.001, True)[0]
        sloth = sim.pages(minutes, float(sc.runs_per_min), 0.001, False)[0]
        for minute, pages in sc.checks:
            assert bool(firing[minute]) is pages, (sc.name, minute)
        if sc.sloth_at is not None:  # where Sloth's condition holds, Sloth alone pages
            assert sloth[sc.sloth_at], sc.name


def test_the_simulation_is_deterministic_and_shows_the_before_and_after() -> None:
    sim = load_false_pages()
    first = sim.false_page_shares(np.random.default_rng(7), 60, 0.999, 4)
    again = sim.false_page_shares(np.random.default_rng(7), 60, 0.999, 4)
    assert first == again
    before, after = first
    assert before == 1.0  # every month: each single failure pages
    assert after == 0.0
