"""The scheduler with a fake probe: spread, bounds, lateness, stop. Each scenario runs on
virtual time (tests/virtual_time.py) with the loop's clock injected as the scheduler's, so
every timing is exact and no test waits on the wall clock."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from monitor.core.jobs import get_job
from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from monitor.runtime.loopwatch import LoopWatch
from monitor.runtime.scheduler import Schedule, Scheduler, hard_cap_s, spread_offsets
from tests.virtual_time import run_virtual

JOB = get_job("chat-short-v1")
EPOCH = 1_790_000_000.0  # the wall clock's reading at virtual time 0


def now() -> float:
    """The scheduler's monotonic clock in these tests: the virtual loop's time."""
    return asyncio.get_running_loop().time()


def virtual_scheduler(*args: Any, **kw: Any) -> Scheduler:
    """A Scheduler on the running loop's virtual clock (wall and monotonic)."""
    return Scheduler(*args, clock=lambda: EPOCH + now(), monotonic=now, **kw)


def run(scenario: Coroutine[Any, Any, None]) -> None:
    run_virtual(scenario)


def target(network: str = "n", tier: str = "small", concurrency: int = 4) -> Target:
    return Target(network=network, name=tier, kind="openai", base_url="http://127.0.0.1:9/v1",
                  model="m", concurrency=concurrency)


class FakeProbe:
    """Records when each run starts; takes `duration` seconds; counts concurrency."""

    def __init__(self, duration: float = 0.0, block: bool = False) -> None:
        self.duration = duration
        self.starts: list[tuple[str, float]] = []
        self.now = 0
        self.peak = 0
        self.peak_per_target: dict[str, int] = {}
        self._per_target: dict[str, int] = {}
        self.block = block

    async def __call__(self, t: Target, job: object) -> ProbeResult:
        self.starts.append((t.key, now()))
        self.now += 1
        self._per_target[t.key] = self._per_target.get(t.key, 0) + 1
        self.peak = max(self.peak, self.now)
        self.peak_per_target[t.key] = max(self.peak_per_target.get(t.key, 0),
                                          self._per_target[t.key])
        started = EPOCH + now()
        try:
            await asyncio.sleep(3600 if self.block else self.duration)
        finally:
            self.now -= 1
            self._per_target[t.key] -= 1
        return ProbeResult(network=t.network, target=t.name, job=JOB.name, model=t.model,
                           outcome=Outcome.OK, started_at=started, duration_s=self.duration)


class Collect:
    def __init__(self) -> None:
        self.results: list[ProbeResult] = []

    def on_result(self, result: ProbeResult) -> None:
        self.results.append(result)


def schedules(n: int, interval: float, **kw: object) -> list[Schedule]:
    return [Schedule(target(network=f"net{i}", **kw), JOB, interval) for i in range(n)]


def test_first_runs_are_spread_evenly_and_stably_over_the_interval() -> None:
    many = schedules(100, 60.0)
    offsets = spread_offsets(many)
    assert offsets == spread_offsets(list(reversed(many)))  # deterministic per key
    ordered = sorted(offsets.values())
    assert all(0 <= o < 60 for o in ordered)
    # one run per 0.6 s slot: no thundering herd, no gap longer than two slots
    assert max(b - a for a, b in itertools.pairwise(ordered)) < 1.2
    assert sum(1 for o in ordered if o < 6) == 10


def test_runs_start_at_their_offsets_and_repeat_every_interval() -> None:
    async def scenario() -> None:
        probe, sink = FakeProbe(), Collect()
        sched = virtual_scheduler(schedules(4, 0.4), sinks=[sink], run_probe=probe, jitter_s=0.0)
        t0 = now()
        task = asyncio.create_task(sched.run())
        await asyncio.sleep(1.0)
        sched.stop()
        await task
        firsts = sorted(min(t for k, t in probe.starts if k == key) - t0
                        for key in {k for k, _ in probe.starts})
        assert len(firsts) == 4
        assert firsts[-1] - firsts[0] > 0.15  # spread over the interval, not all at once
        per_key = [sorted(t for k, t in probe.starts if k == key) for key in {k for k, _ in
                                                                              probe.starts}]
        for starts in per_key:
            assert len(starts) in (2, 3)
            assert starts[1] - starts[0] == pytest.approx(0.4, abs=0.05)
        assert all(r.scheduled_at is not None and 0 <= r.lateness_s < 0.05 for r in sink.results)

    run(scenario())


def test_per_target_concurrency_is_never_exceeded() -> None:
    async def scenario() -> None:
        probe = FakeProbe(duration=0.2)
        t = target(concurrency=2)
        jobs = [get_job(n) for n in ("chat-short-v1", "chat-long-v1", "json-v1", "needle-8k-v1")]
        sched = virtual_scheduler([Schedule(t, j, 10.0) for j in jobs], run_probe=probe)
        await sched.run(once=True)
        assert len(probe.starts) == 4
        assert probe.peak_per_target[t.key] == 2
        # two had to wait for a slot: the wait shows as lateness, not as a hidden delay
        assert sched.max_lateness_s >= 0.15

    run(scenario())


def test_global_concurrency_is_never_exceeded() -> None:
    async def scenario() -> None:
        probe, sink = FakeProbe(duration=0.1), Collect()
        sched = virtual_scheduler(schedules(12, 10.0), sinks=[sink], run_probe=probe, concurrency=3)
        start = now()
        await sched.run(once=True)
        assert probe.peak == 3 and sched.max_in_flight == 3
        assert len(sink.results) == 12
        assert now() - start >= 0.35  # 12 runs, 3 at a time, 0.1 s each
        late = sorted(r.lateness_s or 0 for r in sink.results)
        assert late[0] < 0.05 and late[-1] >= 0.25  # the queue is visible as lateness

    run(scenario())


def test_a_slow_run_is_never_overlapped_by_its_own_next_tick() -> None:
    async def scenario() -> None:
        probe, sink = FakeProbe(duration=0.35), Collect()
        sched = virtual_scheduler(schedules(1, 0.1), sinks=[sink], run_probe=probe, jitter_s=0.0)
        task = asyncio.create_task(sched.run())
        await asyncio.sleep(1.0)
        sched.stop()
        await task
        assert probe.peak == 1
        assert sched.missed_total >= 4  # the skipped ticks are counted, not silently dropped
        assert len(sink.results) == len(probe.starts)

    run(scenario())


def test_stop_lets_in_flight_runs_finish_within_grace() -> None:
    async def scenario() -> None:
        probe, sink = FakeProbe(duration=0.3), Collect()
        sched = virtual_scheduler(schedules(3, 0.05), sinks=[sink], run_probe=probe, grace_s=2.0)
        task = asyncio.create_task(sched.run())
        await asyncio.sleep(0.15)
        assert sched.in_flight == 3
        sched.stop()
        await task
        assert len(sink.results) == 3 and sched.cancelled == 0 and sched.in_flight == 0

    run(scenario())


def test_stop_cancels_runs_that_overrun_the_grace_period() -> None:
    async def scenario() -> None:
        probe, sink = FakeProbe(block=True), Collect()
        sched = virtual_scheduler(schedules(2, 0.05), sinks=[sink], run_probe=probe, grace_s=0.2)
        task = asyncio.create_task(sched.run())
        await asyncio.sleep(0.15)
        sched.stop()
        start = now()
        await task
        assert now() - start < 1.0
        assert sched.cancelled == 2 and sink.results == [] and sched.in_flight == 0

    run(scenario())


def test_lateness_and_location_are_recorded_on_every_result() -> None:
    async def scenario() -> None:
        probe, sink = FakeProbe(duration=0.05), Collect()
        sched = virtual_scheduler(schedules(2, 10.0, concurrency=1), sinks=[sink], run_probe=probe,
                                  concurrency=1, location="eu-west-1")
        await sched.run(once=True)
        assert {r.location for r in sink.results} == {"eu-west-1"}
        late = sorted(r.lateness_s or 0 for r in sink.results)
        assert late[1] == pytest.approx(0.05, abs=0.03)  # waited for the one global slot

    run(scenario())


def test_runs_measured_while_the_loop_lagged_are_flagged() -> None:
    async def scenario() -> None:
        watch = LoopWatch(interval_s=0.01, clock=now)
        sink = Collect()

        async def blocking_probe(t: Target, job: object) -> ProbeResult:
            started = EPOCH + now()
            await asyncio.sleep(0.02)
            if t.network == "net0":
                watch.record(now(), 0.15)  # the event loop was blocked for 0.15 s mid-run
            await asyncio.sleep(0.05)
            return ProbeResult(network=t.network, target=t.name, job=JOB.name, model="m",
                               outcome=Outcome.OK, started_at=started)

        watch.start()
        sched = virtual_scheduler(schedules(1, 10.0), sinks=[sink], run_probe=blocking_probe,
                                  loopwatch=watch)
        await sched.run(once=True)
        sched2 = virtual_scheduler([Schedule(target("net1"), JOB, 10.0)], sinks=[sink],
                                   run_probe=blocking_probe, loopwatch=watch)
        await sched2.run(once=True)
        await watch.stop()
        assert [(r.network, r.lagged) for r in sink.results] == [("net0", True), ("net1", False)]
        assert watch.max_lag_s >= 0.1

    run(scenario())


async def test_the_loop_watch_measures_a_blocked_loop_on_the_real_clock() -> None:
    watch = LoopWatch(interval_s=0.01).start()
    await asyncio.sleep(0.02)
    time.sleep(0.15)  # something blocks the event loop
    await asyncio.sleep(0.02)
    await watch.stop()
    assert watch.max_lag_s >= 0.1  # a lower bound: a loaded machine only adds lag


def test_a_probe_that_overruns_its_deadline_is_a_timeout() -> None:
    async def scenario() -> None:
        sink = Collect()
        sched = virtual_scheduler(schedules(1, 10.0), sinks=[sink], run_probe=FakeProbe(block=True))
        await sched.run(once=True)
        assert [r.outcome for r in sink.results] == [Outcome.TIMEOUT]
        assert "deadline" in sink.results[0].error
        assert sink.results[0].duration_s == hard_cap_s(JOB)  # cancelled at the cap, not later

    run(scenario())


def test_a_failing_sink_does_not_stop_the_others() -> None:
    async def scenario() -> None:
        class Broken:
            def on_result(self, result: ProbeResult) -> None:
                raise RuntimeError("boom")

        sink = Collect()
        sched = virtual_scheduler(schedules(2, 10.0), sinks=[Broken(), sink], run_probe=FakeProbe())
        await sched.run(once=True)
        assert len(sink.results) == 2

    run(scenario())
