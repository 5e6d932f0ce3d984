"""Capacity ladders on a schedule: each climbs a concurrency ladder against one model tier
(monitor.core.capacity), within hard limits, and hands the finished ladder to its sinks
(the store, the exporter, the log). docs/capacity.md.

Rules:
- Hard limits, never exceeded (a ledger checked before every request): at most
  `max_concurrency` requests in flight, `max_requests` sent, and `max_spend` of worst-case
  cost sent (`cost_bound`). A step is only started when the ledger can afford one request per
  stream; otherwise the ladder stops (`budget`).
- A step sends requests on every stream, back to back, until `step_s` has passed or each stream
  sent `requests_per_stream`; runs still in flight are awaited, so the step's runs are all of
  its load.
- A 429 stops the ladder at once: no stream of the step sends another request, no higher step
  is tried, and the next ladder of that schedule waits at least the Retry-After. So does an
  answer that our key was refused or our credits ran out (`account`): neither is the network's
  capacity, and no step cut short by them is judged.
- The first step that breaks the criteria is the knee: no higher step is tried.
- While a network's ladder runs, its canary schedules are held (`holds`), so that the canaries
  and the SLA never measure the monitor's own load.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from monitor.analysis.capacity import summarise_step
from monitor.core.capacity import (
    CapacityLimits,
    CapacitySchedule,
    CapacitySettings,
    Ladder,
    Step,
    StepCriteria,
    Stop,
    cost_bound,
)
from monitor.core.jobs import Job
from monitor.core.result import NOT_THE_NETWORKS_FAULT, Outcome, ProbeResult
from monitor.core.target import Target
from monitor.runtime import owned
from monitor.runtime.scheduler import (
    Schedule,
    hard_cap_s,
    sleep_unless_stopped,
    spread_offsets,
)
from probes import PROBES
from probes.base import probe_error_result
from probes.session import SessionPool

log = logging.getLogger(__name__)

RunProbe = Callable[[Target, Job], Awaitable[ProbeResult]]
# Answers that stop a ladder at once: the network asked us to slow down, or refused our
# account (which says nothing of its capacity).
STOPPING = frozenset({Outcome.RATE_LIMITED, *NOT_THE_NETWORKS_FAULT})
class Ledger:
    """A ladder's hard limits as a ledger: a request may be sent only once it has reserved
    one of `max_requests` and its worst-case cost within `max_spend_usd`; `gate` admits at most
    `max_concurrency` requests in flight. None of the totals can pass its limit."""

    def __init__(self, limits: CapacityLimits, cost_per_request: float | None) -> None:
        self.limits = limits
        self.cost = cost_per_request
        self.sent = 0
        self.spent = 0.0
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate = asyncio.Semaphore(limits.max_concurrency)

    def affords(self, requests: int) -> bool:
        """Whether `requests` more requests fit both limits."""
        if self.sent + requests > self.limits.max_requests:
            return False
        cap = self.limits.max_spend_usd
        return cap is None or self.cost is None or self.spent + requests * self.cost <= cap

    def reserve(self) -> bool:
        """Book one request (False: a limit would be passed; nothing is booked)."""
        if not self.affords(1):
            return False
        self.sent += 1
        self.spent += self.cost or 0.0
        return True

    def why_not(self, requests: int) -> str:
        left = self.limits.max_requests - self.sent
        if requests > left:
            return f"{requests} requests needed, {left} of max_requests left"
        assert self.cost is not None and self.limits.max_spend_usd is not None
        return (f"{requests} requests may cost ${requests * self.cost:.4f}, "
                f"${self.limits.max_spend_usd - self.spent:.4f} of max_spend left")

    @contextlib.asynccontextmanager
    async def in_flight_slot(self) -> AsyncIterator[None]:
        async with self.gate:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1


@dataclass
class Climb:
    """One ladder in progress (the runner's state, also what tests inspect)."""

    target: Target
    job: Job
    settings: CapacitySettings
    criteria: StepCriteria
    ledger: Ledger
    run_probe: RunProbe
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.perf_counter

    async def step(self, streams: int) -> tuple[Step, ProbeResult | None]:
        """Run one step; returns it and the first run that stops the ladder (a 429, a refused
        key, no credits), if any."""
        deadline = self.monotonic() + self.settings.step_s
        halt = asyncio.Event()
        results: list[ProbeResult] = []
        limited: list[ProbeResult] = []

        async def stream() -> None:
            for _ in range(self.settings.requests_per_stream):
                if halt.is_set() or self.monotonic() >= deadline:
                    return
                if not self.ledger.reserve():
                    halt.set()
                    return
                async with self.ledger.in_flight_slot():
                    result = await self._one()
                results.append(result)
                if result.outcome in STOPPING:
                    limited.append(result)
                    halt.set()
                    return

        wall, start = self.clock(), self.monotonic()
        await owned.gather(*(stream() for _ in range(streams)))
        step = summarise_step(streams, results, started_at=wall,
                              elapsed_s=self.monotonic() - start, criteria=self.criteria,
                              judge=not limited)
        return step, (limited[0] if limited else None)

    async def _one(self) -> ProbeResult:
        """One run; a probe that raises or overruns still yields a run (as in the scheduler)."""
        wall, start = self.clock(), self.monotonic()
        try:
            return await asyncio.wait_for(self.run_probe(self.target, self.job),
                                          hard_cap_s(self.job))
        except TimeoutError:
            return probe_error_result(self.target, self.job, wall, self.monotonic() - start,
                                      TimeoutError("the probe overran its deadline"))
        except Exception as exc:
            log.exception("capacity probe of %s raised (a bug in the probe kind %r)",
                          self.target.key, self.target.kind)
            return probe_error_result(self.target, self.job, wall, self.monotonic() - start,
                                      exc)


async def run_ladder(target: Target, job: Job, settings: CapacitySettings,
                     criteria: StepCriteria, *, run_probe: RunProbe | None = None,
                     price: Mapping[str, float] | None = None, location: str = "",
                     cancel: asyncio.Event | None = None,
                     clock: Callable[[], float] = time.time,
                     monotonic: Callable[[], float] = time.perf_counter) -> Ladder:
    """Climb `settings.ladder` against one target and return the ladder (never raises for the
    network's failures: they are the runs' outcomes)."""
    pool: SessionPool | None = None
    if run_probe is None:
        pool = SessionPool()
        session = pool.for_target(target, concurrency=settings.limits.max_concurrency)

        async def default_probe(t: Target, j: Job) -> ProbeResult:
            return await PROBES[t.kind].run(t, j, session)

        run_probe = default_probe
    ledger = Ledger(settings.limits, cost_bound(job, price))
    climb = Climb(target, job, settings, criteria, ledger, run_probe, clock, monotonic)
    steps: list[Step] = []
    stopped, detail, retry_after = Stop.TOP, "", None
    wall, start = clock(), monotonic()
    try:
        for streams in settings.ladder:
            if cancel is not None and cancel.is_set():
                stopped, detail = Stop.CANCELLED, "the monitor stopped"
                break
            if streams > settings.limits.max_concurrency:
                stopped = Stop.BUDGET
                detail = f"{streams} streams is above max_concurrency " \
                         f"{settings.limits.max_concurrency}"
                break
            if not ledger.affords(streams):
                stopped, detail = Stop.BUDGET, f"before {streams} streams: " \
                                               f"{ledger.why_not(streams)}"
                break
            step, limited = await climb.step(streams)
            steps.append(step)
            if limited is not None and limited.outcome is Outcome.RATE_LIMITED:
                stopped, retry_after = Stop.RATE_LIMITED, limited.retry_after_s
                detail = f"429 at {streams} streams" + (
                    f" (Retry-After {retry_after:g} s)" if retry_after else "")
                break
            if limited is not None:
                stopped = Stop.ACCOUNT
                detail = f"{limited.outcome.value} at {streams} streams: {limited.error}"
                break
            if step.held is False:
                stopped, detail = Stop.KNEE, f"at {streams} streams: " + "; ".join(step.broke)
                break
        else:
            detail = f"every step held, up to {settings.ladder[-1]} streams"
    finally:
        if pool is not None:
            await pool.close()
    return Ladder(
        id=secrets.token_hex(8), network=target.network, target=target.name, job=job.name,
        job_version=job.version, model=target.model, location=location, started_at=wall,
        elapsed_s=monotonic() - start, criteria=criteria, steps=tuple(steps), stopped=stopped,
        detail=detail, requests=ledger.sent,
        spend_usd=ledger.spent if ledger.cost is not None else None, retry_after_s=retry_after)


# -- on a schedule ----------------------------------------------------------------------------

class LadderSink(Protocol):
    def on_ladder(self, ladder: Ladder) -> None: ...


class CapacityScheduler:
    """Runs each schedule's ladder every `settings.interval_s` (first at a spread offset, like
    the canaries), one ladder per network at a time, never two of one schedule; sinks get
    every finished ladder (in a worker thread for a sink marked `blocking`, e.g. the store)."""

    def __init__(self, schedules: Iterable[CapacitySchedule], *,
                 sinks: Sequence[LadderSink] = (), run_probe: RunProbe | None = None,
                 location: str = "", grace_s: float = 10.0,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.schedules = list(schedules)
        self.sinks = list(sinks)
        self.location = location
        self.grace_s = grace_s
        self._run_probe = run_probe
        self._clock = clock
        self._mono = monotonic
        self._sleep = sleep
        self._stop = asyncio.Event()
        self._locks: dict[str, asyncio.Lock] = {}
        self._climbing: dict[str, int] = {}  # network -> ladders running
        self._not_before: dict[str, float] = {}  # schedule key -> monotonic (Retry-After)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.ladders = 0
        self.skipped = 0  # turns skipped: the schedule's previous ladder had not finished

    def holds(self, network: str) -> bool:
        """Whether the network's canaries should wait: one of its ladders is climbing."""
        return self._climbing.get(network, 0) > 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Dispatch ladders until `stop()`; a ladder climbing then stops before its next step
        (recorded as cancelled) within grace_s, or is abandoned unrecorded."""
        if not self.schedules:
            return
        start = self._mono()
        plain = [Schedule(s.target, s.job, s.settings.interval_s) for s in self.schedules]
        offsets = spread_offsets(plain)
        heap = [(start + offsets[p.key], i) for i, p in enumerate(plain)]
        heapq.heapify(heap)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while heap and not self._stop.is_set():
                due, i = heap[0]
                schedule = self.schedules[i]
                await sleep_unless_stopped(due - self._mono(), self._stop, self._sleep)
                if self._stop.is_set():
                    break
                later = self._not_before.pop(schedule.key, None)
                if later is not None and later > self._mono():
                    heapq.heapreplace(heap, (later, i))  # a 429's Retry-After reaches past it
                    continue
                heapq.heapreplace(heap, (due + schedule.settings.interval_s, i))
                previous = self._tasks.get(schedule.key)
                if previous is not None and not previous.done():
                    self.skipped += 1  # its last ladder is still climbing (or waiting its turn)
                    continue
                task = asyncio.create_task(self._climb(schedule), name=f"ladder {schedule.key}")
                self._tasks[schedule.key] = task
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            if tasks:
                try:
                    await asyncio.wait(tasks, timeout=self.grace_s)
                finally:
                    await owned.cancel_all(tasks)

    async def _climb(self, schedule: CapacitySchedule) -> None:
        network = schedule.target.network
        lock = self._locks.setdefault(network, asyncio.Lock())
        async with lock:
            if self._stop.is_set():
                return
            self._climbing[network] = self._climbing.get(network, 0) + 1
            try:
                ladder = await run_ladder(
                    schedule.target, schedule.job, schedule.settings, schedule.criteria,
                    run_probe=self._run_probe, price=schedule.price, location=self.location,
                    cancel=self._stop, clock=self._clock, monotonic=self._mono)
            finally:
                self._climbing[network] -= 1
        self.ladders += 1
        if ladder.retry_after_s:
            self._not_before[schedule.key] = self._mono() + ladder.retry_after_s
        for sink in self.sinks:
            try:
                if getattr(sink, "blocking", False):  # it writes to disk: not on the loop
                    await asyncio.to_thread(sink.on_ladder, ladder)
                else:
                    sink.on_ladder(ladder)
            except Exception:
                log.exception("sink %s failed on a ladder", type(sink).__name__)


class LadderLog:
    """Sink: one line per ladder in the run log."""

    def on_ladder(self, ladder: Ladder) -> None:
        sustained = ladder.sustained
        spend = "" if ladder.spend_usd is None else f", at most ${ladder.spend_usd:.4f}"
        log.info("capacity %s/%s: sustained %s streams; stopped: %s (%s); %d requests%s in "
                 "%.0f s", ladder.network, ladder.target,
                 "-" if sustained is None else sustained, ladder.stopped.value, ladder.detail,
                 ladder.requests, spend, ladder.elapsed_s)
