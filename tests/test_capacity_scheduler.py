"""Capacity ladders on a schedule, on virtual time (tests/virtual_time.py) with a fake probe:
the interval, a 429's Retry-After pushing the next ladder back, canaries held while their
network's ladder climbs, and a stop between steps."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from monitor.core.capacity import (
    CapacityLimits,
    CapacitySchedule,
    CapacitySettings,
    Ladder,
    StepCriteria,
    Stop,
)
from monitor.core.jobs import Job, get_job
from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from monitor.runtime.capacity import CapacityScheduler
from monitor.runtime.scheduler import Scheduler
from tests.virtual_time import run_virtual

JOB = get_job("chat-long-v1")
EPOCH = 1_790_000_000.0
HOUR = 3600.0


def now() -> float:
    return asyncio.get_running_loop().time()


def target(network: str, tier: str = "small") -> Target:
    return Target(network=network, name=tier, kind="openai", base_url="http://127.0.0.1:9/v1",
                  model="m")


def schedule(network: str, ladder: tuple[int, ...] = (1, 2), interval_s: float = HOUR,
             tier: str = "small") -> CapacitySchedule:
    settings = CapacitySettings(ladder=ladder, step_s=10.0, requests_per_stream=1,
                                limits=CapacityLimits(ladder[-1], 100), job=JOB.name,
                                interval_s=interval_s)
    return CapacitySchedule(target(network, tier), JOB, settings, StepCriteria(ttft_p95_s=1.0))


class Probe:
    """Each run takes `seconds` of virtual time; `outcome` decides what it returns."""

    def __init__(self, seconds: float = 5.0, outcome: Outcome = Outcome.OK,
                 retry_after_s: float | None = None) -> None:
        self.seconds = seconds
        self.outcome = outcome
        self.retry_after_s = retry_after_s
        self.starts: list[tuple[str, float]] = []

    async def __call__(self, t: Target, job: Job) -> ProbeResult:
        self.starts.append((t.network, now()))
        started = EPOCH + now()
        await asyncio.sleep(self.seconds)
        return ProbeResult(network=t.network, target=t.name, job=job.name, model=t.model,
                           outcome=self.outcome, started_at=started, ttft_s=0.1,
                           duration_s=self.seconds, retry_after_s=self.retry_after_s)


class Ladders:
    def __init__(self) -> None:
        self.got: list[tuple[float, Ladder]] = []

    def on_ladder(self, ladder: Ladder) -> None:
        self.got.append((ladder.started_at - EPOCH, ladder))


def capacity(schedules: list[CapacitySchedule], probe: Probe, sink: Ladders,
             **kw: Any) -> CapacityScheduler:
    return CapacityScheduler(schedules, sinks=[sink], run_probe=probe,
                             clock=lambda: EPOCH + now(), monotonic=now, **kw)


def test_a_ladder_climbs_once_an_interval_and_one_network_at_a_time() -> None:
    probe, sink = Probe(), Ladders()

    async def scenario() -> None:
        ladders = capacity([schedule("a"), schedule("a", tier="large")], probe, sink)
        task = asyncio.create_task(ladders.run())
        await asyncio.sleep(3 * HOUR - 1)
        ladders.stop()
        await task

    run_virtual(scenario())
    assert len(sink.got) == 6  # two tiers, three hours
    for (t, ladder) in sink.got:
        assert ladder.stopped is Stop.TOP and ladder.sustained == 2
        assert 0 <= t < 3 * HOUR
    # a network's ladders never overlap: each starts after the previous one ended
    spans = sorted((t, t + ladder.elapsed_s) for t, ladder in sink.got)
    assert all(b[0] >= a[1] - 1e-9 for a, b in itertools.pairwise(spans))
    # one ladder per tier per interval
    for tier in ("small", "large"):
        times = [t for t, ladder in sink.got if ladder.target == tier]
        assert all(abs(b - a - HOUR) < 30 for a, b in itertools.pairwise(times))


def test_a_429s_retry_after_pushes_the_next_ladder_back() -> None:
    probe, sink = Probe(outcome=Outcome.RATE_LIMITED, retry_after_s=2.5 * HOUR), Ladders()

    async def scenario() -> None:
        ladders = capacity([schedule("a")], probe, sink)
        task = asyncio.create_task(ladders.run())
        await asyncio.sleep(6 * HOUR)
        ladders.stop()
        await task

    run_virtual(scenario())
    times = [t for t, _ in sink.got]
    assert all(ladder.stopped is Stop.RATE_LIMITED for _, ladder in sink.got)
    assert all(ladder.requests == 1 for _, ladder in sink.got)  # one 429, then nothing
    assert len(times) == 3
    assert all(b - a >= 2.5 * HOUR for a, b in itertools.pairwise(times))


def test_canaries_of_a_network_are_held_while_its_ladder_climbs() -> None:
    """The canaries must not measure the load the ladder puts on the network on purpose; the
    other networks' canaries run as usual."""
    probe, sink = Probe(seconds=20.0), Ladders()
    canary_starts: list[tuple[str, float]] = []

    async def canary(t: Target, job: Job) -> ProbeResult:
        canary_starts.append((t.network, now()))
        return ProbeResult(network=t.network, target=t.name, job=job.name, model=t.model,
                           outcome=Outcome.OK, started_at=EPOCH + now())

    async def scenario() -> None:
        ladders = capacity([schedule("a", (1, 2, 4), interval_s=600.0)], probe, sink)
        canaries = Scheduler([(target("a"), get_job("chat-short-v1"), 1.0),
                              (target("b"), get_job("chat-short-v1"), 1.0)],
                             run_probe=canary, clock=lambda: EPOCH + now(), monotonic=now,
                             hold=ladders.holds)
        tasks = [asyncio.create_task(ladders.run()), asyncio.create_task(canaries.run())]
        await asyncio.sleep(1200)
        canaries.stop()
        ladders.stop()
        await asyncio.gather(*tasks)
        assert canaries.held["a/small/chat-short-v1"] > 0
        assert canaries.held["b/small/chat-short-v1"] == 0

    run_virtual(scenario())
    assert len(sink.got) == 2
    for t, ladder in sink.got:
        inside = [s for n, s in canary_starts if n == "a" and t <= s < t + ladder.elapsed_s]
        assert inside == [], (t, inside)
        others = [s for n, s in canary_starts if n == "b" and t <= s < t + ladder.elapsed_s]
        assert len(others) >= ladder.elapsed_s - 2  # b kept its once-a-second canaries


def test_stopping_the_monitor_ends_a_ladder_between_steps() -> None:
    probe, sink = Probe(seconds=30.0), Ladders()

    async def scenario() -> None:
        ladders = capacity([schedule("a", (1, 2, 4, 8))], probe, sink, grace_s=120.0)
        task = asyncio.create_task(ladders.run())
        while not probe.starts:
            await asyncio.sleep(1)
        await asyncio.sleep(45)  # in the second step
        ladders.stop()
        await task

    run_virtual(scenario())
    ((_, ladder),) = sink.got
    assert ladder.stopped is Stop.CANCELLED
    assert [s.streams for s in ladder.steps] == [1, 2]
