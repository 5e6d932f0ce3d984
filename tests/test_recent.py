"""The latest runs aggregated as they arrive (the demo's live table): the same figures as the
report over those runs, for a bounded window of them."""

from __future__ import annotations

import pytest

from monitor.analysis.recent import RecentRuns
from monitor.analysis.report import Judging, build_report, ranked_summaries
from monitor.core.slaprofile import BUILTIN_PROFILES
from tests.test_report_buyer import runs_like

PROFILES = {"steady": BUILTIN_PROFILES["standard"], "flaky": BUILTIN_PROFILES["standard"]}
PRICES = {"steady": {"input": 0.05, "output": 0.08}, "flaky": {"input": 0.02, "output": 0.04}}


def interleaved(n: int) -> list:
    steady = runs_like("depin-steady", "steady", n, seed=1, every_s=1.0)
    flaky = runs_like("depin-flaky", "flaky", n, seed=2, every_s=1.0)
    return [r for pair in zip(steady, flaky, strict=True) for r in pair]


def test_the_window_shows_what_the_report_shows_of_the_same_runs() -> None:
    runs = interleaved(1500)
    recent = RecentRuns(10_000)
    for r in runs:
        recent.add(r)
    live = {s.key[0]: s for s in ranked_summaries(recent.groups(), ("network",),
                                                  Judging(PROFILES, prices=PRICES))}
    exact = {g.key[0]: g for g in build_report(runs, profiles=PROFILES, prices=PRICES).groups}
    assert set(live) == set(exact) == {"steady", "flaky"}
    for name, g in exact.items():
        s = live[name]
        assert (s.runs, s.outcomes, s.nodes, s.availability, s.rank) == (
            g.runs, g.outcomes, g.nodes, g.availability, g.rank)
        assert s.effective_usd_per_mtok == pytest.approx(g.effective_usd_per_mtok)
        # quantiles from 1 %-wide buckets, as the rollups': within 0.5 %
        assert s.ttft_p95_s == pytest.approx(g.ttft_p95_s, rel=0.005)
        assert s.decode_tps_median == pytest.approx(g.decode_tps_median, rel=0.005)
        assert s.sla_met == g.sla_met


def test_the_window_keeps_only_the_latest_runs() -> None:
    """The demo runs for weeks with `--duration 0`: the window forgets old runs a generation
    (a quarter of it) at a time, keeping between three quarters and all of `max_runs`."""
    runs = interleaved(5000)
    recent = RecentRuns(4000)
    kept = []
    for i, r in enumerate(runs, 1):
        recent.add(r)
        if i % 997 == 0:
            kept.append(sum(g.runs for g in recent.groups().values()))
    assert all(n == i * 997 for i, n in enumerate(kept[:4], 1))  # not full yet: every run
    assert all(3000 < n <= 4000 for n in kept[4:])
    last = recent.groups()
    newest = runs[-sum(g.runs for g in last.values()):]
    assert {k: g.runs for k, g in last.items()} == {
        (name,): sum(r.network == name for r in newest) for name in ("steady", "flaky")}
