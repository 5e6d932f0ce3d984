"""Capacity maths: how a step is judged, and what a period's ladders say of a network tier
(sustained concurrency with its interval, or not enough data; curves; the SLA capacity item)."""

from __future__ import annotations

import pytest

from monitor.analysis.capacity import MIN_LADDERS, judge_capacity, summarise_step, tier_capacity
from monitor.core.capacity import Ladder, StepCriteria, Stop
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import CapacityObjective

CRITERIA = StepCriteria(ttft_p95_s=1.0, decode_tps_min=20.0, availability=0.99)


def runs(n: int, *, failed: int = 0, ttft: float = 0.1, tps: float = 40.0,
         outcome: Outcome = Outcome.HTTP_ERROR) -> list[ProbeResult]:
    return [ProbeResult(network="n", target="small", job="j", model="m",
                        outcome=outcome if i < failed else Outcome.OK, started_at=float(i),
                        ttft_s=ttft, tokens_per_s=tps, output_tokens=10)
            for i in range(n)]


def judged(results: list[ProbeResult], streams: int = 8):
    return summarise_step(streams, results, started_at=0.0, elapsed_s=2.0, criteria=CRITERIA)


def test_a_step_holds_when_it_meets_every_criterion() -> None:
    step = judged(runs(16))
    assert step.held and step.broke == ()
    assert step.tokens_per_s == 16 * 10 / 2.0 and step.stream_tps_p50 == 40.0


@pytest.mark.parametrize(("n", "failed", "held"), [
    (64, 1, True),  # 98.4 % but one failure says little: not a knee at a 99 % target
    (64, 2, True),
    (64, 4, False),  # 93.8 %: surely below 99 %
    (8, 3, False),  # a step that sheds load
    (2, 1, False),
    (1, 0, True),
])
def test_availability_breaks_only_when_the_failures_say_so(n: int, failed: int,
                                                           held: bool) -> None:
    step = judged(runs(n, failed=failed))
    assert step.held is held
    if not held:
        assert step.broke[0].startswith("availability ")


def test_ttft_and_decode_break_on_their_percentiles() -> None:
    slow = runs(20)[:18] + runs(2, ttft=3.0)  # 10 % slow: p95 is slow
    assert judged(slow).broke == ("TTFT p95 3.00 s > 1 s",)
    assert judged(runs(19) + runs(1, ttft=3.0)).held  # 5 %: p95 is still fast
    crawling = runs(10, tps=5.0) + runs(9)  # more than half the streams under the floor
    assert judged(crawling).broke == ("decode 5.0 tok/s < 20 tok/s",)


def test_runs_refused_for_our_key_do_not_count_against_the_network() -> None:
    step = judged(runs(10, failed=5, outcome=Outcome.AUTH_ERROR))
    assert step.held and step.error_rate == 0.0


def ladder(t: float, knee: int | None, *, stopped: Stop | None = None, top: int = 64
           ) -> Ladder:
    """A 1/4/16/64 ladder whose `knee` step fails every run (None: none does) up to `top`."""
    steps = []
    for streams in (1, 4, 16, 64):
        if streams > top:
            break
        broke = knee is not None and streams >= knee
        step = judged(runs(streams, failed=streams if broke else 0), streams)
        steps.append(step)
        if broke:
            break
    return Ladder(id=str(t), network="n", target="small", job="j", job_version=1, model="m",
                  location="", started_at=t, elapsed_s=30.0, criteria=CRITERIA,
                  steps=tuple(steps),
                  stopped=stopped or (Stop.KNEE if knee else Stop.TOP), detail="",
                  requests=0, spend_usd=None)


def test_a_tier_with_enough_ladders_states_its_sustained_concurrency_and_interval() -> None:
    ladders = [ladder(i, 64) for i in range(9)] + [ladder(9, 16)]
    tier = tier_capacity(ladders)
    assert tier.sustained_p50 == 16 and tier.knee_range == (16, 64)
    assert tier.sustained_ci is not None and tier.sustained_ci[0] <= 16 <= tier.sustained_ci[1]
    assert tier.statement().startswith("sustains 16 streams (95 % CI ")
    assert "breaks between 16 and 64 streams" in tier.statement()
    point = {p.streams: p for p in tier.curve}
    assert point[64].ladders == 9 and point[64].held == 0 and point[16].held == 9


def test_too_few_ladders_say_so() -> None:
    tier = tier_capacity([ladder(i, 64) for i in range(MIN_LADDERS - 1)])
    assert not tier.enough and tier.sustained_p50 is None
    assert tier.statement().startswith(f"not enough data: {MIN_LADDERS - 1} measuring ladders")


def test_ladders_stopped_early_are_counted_but_measure_nothing() -> None:
    """A 429 or our budget ended them before a knee: they say when the network pushed back,
    not how much it sustains."""
    ladders = [ladder(i, 64) for i in range(4)]
    ladders += [ladder(9, None, stopped=Stop.RATE_LIMITED, top=4)] * 3
    tier = tier_capacity(ladders)
    assert tier.sustained == (16, 16, 16, 16) and tier.sustained_p50 == 16
    assert tier.statement().endswith("; 3 stopped early (rate_limited 3)")


def test_a_network_that_holds_every_step_sustains_at_least_the_top() -> None:
    tier = tier_capacity([ladder(i, None) for i in range(5)])
    assert tier.statement() == "sustains at least 64 streams: every step held in 5 of 5 ladders"


def test_the_sla_capacity_item_is_judged_from_the_ladders() -> None:
    item = CapacityObjective(streams=16, ladders=0.9)
    good = [ladder(i, 64) for i in range(40)]
    assert judge_capacity(good, item).verdict == "meets"
    assert judge_capacity(good[:5], item).verdict == "meets?"  # 5 of 5: not yet sure
    bad = [ladder(i, 16) for i in range(40)]
    assert judge_capacity(bad, item).verdict == "misses"
    # a ladder our own budget stopped below 16 says nothing; a 429 below 16 is a miss
    unsure = [ladder(0, None, stopped=Stop.BUDGET, top=4)]
    assert judge_capacity(unsure, item).verdict == "no data"
    limited = [ladder(0, None, stopped=Stop.RATE_LIMITED, top=4)]
    verdict = judge_capacity(limited, item)
    assert verdict.judged == 1 and verdict.met == 0
