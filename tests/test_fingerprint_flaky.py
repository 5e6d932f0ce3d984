"""The fingerprint on a flaky network (the demo's `depin-flaky` profile, faults on: server
errors, rate limits, HTML gateway pages, canned wrong answers, node churn that refuses and
resets connections), over a real simulator on 127.0.0.1: only completed answers are samples
(the failed ones are counted as failed, never read as a token), an unchanged model raises
false alarms at most at the stated rate over many runs, and a swapped model is noticed at the
first run after the swap."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest

from monitor.analysis.fingerprint import judge
from monitor.config import parse_config
from monitor.core.fingerprint import (
    BorderSet,
    FingerprintResult,
    FingerprintSettings,
    Method,
    Sampled,
    Target,
    Verdict,
)
from monitor.runtime.fingerprint import FingerprintRunner
from monitor.simulator.app import RunningNetwork
from monitor.simulator.profiles import PROFILES
from probes.session import SessionPool
from tests.conftest import StartSim

MODEL = "sim-llama-3.1-8b-instruct"
# The flaky profile's faults at the simulator's full rates, its latency made small and its
# churn (a node gone for a while: connections refused, live ones reset) frequent, so that
# many runs take seconds and meet churn.
FLAKY = PROFILES["depin-flaky"].with_overrides(
    ttft_s=0.0005, ttft_sigma=0.5, tokens_per_s=50_000.0, churn_every_s=1.0,
    churn_down_s=0.02)
SETTINGS = {"candidates_tried": 150, "border_inputs": 10, "logprob_samples": 2,
            "reference_samples": 20, "samples_per_input": 4, "concurrency": 8,
            "max_requests": 100, "discovery_max_requests": 700, "deadline": "10s"}


def config_text(net: RunningNetwork, **settings: object) -> str:
    lines = ["networks:", f"  - {{name: flaky, base_url: '{net.base_url}', model: {MODEL}}}",
             "fingerprint:"]
    lines += [f"  {k}: {v}" for k, v in {**SETTINGS, **settings}.items()]
    return "\n".join([*lines, "  networks: [{network: flaky}]"]) + "\n"


@pytest.fixture
async def pool() -> AsyncIterator[SessionPool]:
    sessions = SessionPool()
    yield sessions
    await sessions.close()


def binomial_bound(n: int, p: float, tail: float) -> int:
    """The smallest k with P(X >= k) <= tail, X ~ Binomial(n, p)."""
    above = 0.0
    for k in range(n, -1, -1):
        above += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if above > tail:
            return k + 1
    return 0


def runner_for(net: RunningNetwork, pool: SessionPool, **settings: object
               ) -> FingerprintRunner:
    clock = iter(1_760_000_000.0 + 86_400.0 * i for i in range(10_000))
    return FingerprintRunner(parse_config(config_text(net, **settings)), pool=pool,
                             clock=lambda: next(clock))


@pytest.mark.parametrize("logprobs", [True, False], ids=["logprobs", "tokens"])
async def test_an_unchanged_flaky_network_raises_false_alarms_at_most_at_the_stated_rate(
        start_sim: StartSim, pool: SessionPool, logprobs: bool) -> None:
    net = await start_sim(FLAKY, seed=21, logprobs=logprobs)
    # alpha 0.05 so that the rate is measured in a hundred-odd runs (the permutation test is
    # valid at every level; docs/fingerprint.md)
    alpha, wanted = 0.05, 120 if logprobs else 80
    runner = runner_for(net, pool, alpha=alpha, permutations=199)
    (found,) = await runner.run_once()
    assert found.verdict is Verdict.DISCOVERED, found.error
    # decided on completed answers: the flaky network's failures do not hide its logprobs
    assert found.method is (Method.LOGPROBS if logprobs else Method.TOKENS)
    assert found.failed > 0  # its failures are counted ...
    if logprobs:  # ... and its canned wrong answers (no top_logprobs) are no reference sample
        border = runner.sets[("flaky", MODEL)]
        assert all(len(o) > 1 for obs in border.reference.values() for o in obs)
    results: list[FingerprintResult] = []
    tested: list[FingerprintResult] = []
    while len(tested) < wanted and len(results) < 4 * wanted:  # runs in a churn say so
        (result,) = await runner.run_once()
        results.append(result)
        if result.p_value is not None:
            tested.append(result)
    verdicts = [r.verdict for r in results]
    assert len(tested) == wanted, verdicts
    assert sum(r.failed for r in tested) > 0  # the faults were on in the runs tested
    assert all(r.samples <= r.requests - r.failed for r in results)  # failed: no sample
    alarms = sum(r.verdict is Verdict.CHANGED for r in tested)
    # at most what the binomial at the stated rate exceeds once in a thousand such tests
    assert alarms < binomial_bound(wanted, alpha, 1e-3), (alarms, verdicts)


@pytest.mark.parametrize("logprobs", [True, False], ids=["logprobs", "tokens"])
async def test_a_swap_on_a_flaky_network_is_noticed_at_the_first_run_after_it(
        start_sim: StartSim, pool: SessionPool, logprobs: bool) -> None:
    # churn off here (a run in a churn has too few samples to test, and says so): the run
    # right after the swap must be the one that tells it
    net = await start_sim(FLAKY, seed=22, logprobs=logprobs, swap_to="substituted",
                          swap_at_s=1e9, churn_every_s=0.0)
    runner = runner_for(net, pool, samples_per_input=8)
    (found,) = await runner.run_once()
    assert found.verdict is Verdict.DISCOVERED, found.error
    for _ in range(2):
        (day,) = await runner.run_once()
        assert day.verdict is Verdict.SAME, day
    net.sim.started -= 2e9  # the network swaps its model between two runs
    (swapped,) = await runner.run_once()
    assert swapped.verdict is Verdict.CHANGED, swapped
    assert swapped.changed_since == day.started_at  # within one interval of the swap


def test_a_baseline_too_short_to_reach_alpha_says_so_instead_of_same() -> None:
    """Inputs seen once each side allow one relabelling: no p-value could fall below
    alpha, so the run is "not enough samples" (saying "same" would hide that it could never
    have said "changed"); with the baseline of a few runs it is tested again."""
    settings = FingerprintSettings(border_inputs=3, min_border_inputs=3, logprob_samples=1,
                                   alpha=0.001)
    prompts = ("bad", "bed", "bid")
    target = Target("flaky", "default", MODEL)

    def run(top: str, n: int = 1) -> dict[str, list[dict[str, float]]]:
        other = "No" if top == "Yes" else "Yes"
        return {p: [{top: 0.6, other: 0.4}] * n for p in prompts}

    border = BorderSet("flaky", MODEL, 1, Method.LOGPROBS, prompts, run("Yes", 6), 0.0,
                       "short-v1", 3, 0)

    today = Sampled(run("No"), requests=3)
    short = judge(target, border, today, [run("Yes")], settings, started_at=1.0)
    assert short.verdict is Verdict.NOT_ENOUGH and short.p_value is not None
    assert "too few for a p-value below alpha 0.001" in short.error
    week = [run("Yes") for _ in range(7)]
    today = Sampled(run("No", 4), requests=12)
    tested = judge(target, border, today, week, settings, started_at=2.0)
    assert tested.verdict is Verdict.CHANGED, tested
