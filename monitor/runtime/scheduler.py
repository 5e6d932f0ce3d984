"""Runs every (network, model tier, job) at its interval and hands each result to the sinks.

Scheduling rules (docs/operations.md):
- Spread: a schedule's first run is at a fixed offset inside its first interval; schedules of
  one interval get evenly spaced slots ranked by a hash of their key (deterministic: restarts
  keep the spread), plus a small random jitter each tick, so a thousand schedules never fire
  at once. Ticks stay on that grid (no drift).
- Bounds: at most `Target.concurrency` runs in flight per target and `concurrency` overall.
  A run waiting for a slot is delayed, and the delay shows as lateness
  (`started_at - scheduled_at`, recorded on every result).
- No self-overlap: a schedule whose previous run is still in flight (or waiting for a slot)
  when its next tick is due skips that tick; skips are counted in `missed`.
- One tick is one measured attempt: no retry is ever hidden inside a run.
- Held: while `hold(network)` says so (a capacity ladder loads that network on purpose), the
  network's ticks are skipped and counted in `held`, so canaries never measure our own load.
- No run is lost: a probe that raises instead of returning an outcome (a bug) still yields a
  stored and exported run (`malformed`, "probe error: ...", `probes.base.probe_error_result`),
  counted in `errors` and `depin_monitor_probe_errors_total`, with its traceback logged.
- Stop: `stop()` ends scheduling; in-flight runs get `grace_s` to finish, then are cancelled
  (a cancelled run is not recorded: it says nothing about the network).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import random
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from monitor.core.jobs import Job
from monitor.core.result import Outcome, ProbeResult
from monitor.core.secrets import scrub
from monitor.core.target import Target
from monitor.runtime import owned
from monitor.runtime.loopwatch import DEFAULT_THRESHOLD_S, LoopWatch
from probes import PROBES
from probes.base import probe_error_result
from probes.session import SessionPool

log = logging.getLogger(__name__)

RunProbe = Callable[[Target, Job], Awaitable[ProbeResult]]
DEFAULT_GRACE_S = 10.0
MAX_JITTER_S = 1.0  # per-tick jitter is at most 2 % of the interval and at most this


class Sink(Protocol):
    def on_result(self, result: ProbeResult) -> None: ...


@dataclass(frozen=True, slots=True)
class Schedule:
    target: Target
    job: Job
    interval_s: float

    @property
    def key(self) -> str:
        return f"{self.target.network}/{self.target.name}/{self.job.name}"


def _hash01(key: str) -> float:
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def spread_offsets(schedules: Iterable[Schedule]) -> dict[str, float]:
    """Where in [0, interval) each schedule first fires. Schedules of one interval are ranked by
    a hash of their key and given one slot each of interval/n (at a hashed point inside it):
    evenly spread even when few, and stable across restarts of the same config."""
    groups: dict[float, list[str]] = {}
    for s in schedules:
        groups.setdefault(s.interval_s, []).append(s.key)
    offsets = {}
    for interval, keys in groups.items():
        keys.sort(key=_hash01)
        n = len(keys)
        for rank, key in enumerate(keys):
            offsets[key] = (rank + _hash01("slot/" + key)) / n * interval
    return offsets


async def sleep_unless_stopped(delay: float, stop: asyncio.Event,
                               sleep: Callable[[float], Awaitable[object]]) -> None:
    """Sleep `delay` seconds with `sleep`, or less if `stop` is set meanwhile."""
    if delay <= 0:
        return
    sleeper = asyncio.ensure_future(sleep(delay))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for fut in (sleeper, stopper):
            fut.cancel()
        await asyncio.gather(sleeper, stopper, return_exceptions=True)


def hard_cap_s(job: Job) -> float:
    """How long the scheduler waits for a probe that ignores its own deadline."""
    return job.deadline_s + max(10.0, job.deadline_s * 0.5)


class Scheduler:
    def __init__(
        self,
        schedules: Iterable[Schedule | tuple[Target, Job, float]],
        *,
        sinks: Sequence[Sink] = (),
        run_probe: RunProbe | None = None,
        concurrency: int = 32,
        location: str = "",
        grace_s: float = DEFAULT_GRACE_S,
        jitter_s: float | None = None,
        loopwatch: LoopWatch | None = None,
        lag_threshold_s: float = DEFAULT_THRESHOLD_S,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        hold: Callable[[str], bool] | None = None,
    ) -> None:
        self.schedules = [s if isinstance(s, Schedule) else Schedule(*s) for s in schedules]
        keys = [s.key for s in self.schedules]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise ValueError(f"schedule {dup!r} is given twice")
        self.sinks = list(sinks)
        self.concurrency = concurrency
        self.location = location
        self.grace_s = grace_s
        self.jitter_s = jitter_s
        self.loopwatch = loopwatch
        self.lag_threshold_s = lag_threshold_s
        self.seed = seed
        self._clock = clock
        self._mono = monotonic
        self._sleep = sleep
        self._run_probe = run_probe
        self._hold = hold
        self._pool: SessionPool | None = None
        self._stop = asyncio.Event()
        self._global: asyncio.Semaphore | None = None
        self._per_target: dict[str, asyncio.Semaphore] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # What the exporter and the logs read:
        self.running = False
        self.in_flight = 0
        self.max_in_flight = 0
        self.runs = 0
        self.outcomes: Counter[str] = Counter()
        self.missed: Counter[str] = Counter()  # schedule key -> skipped ticks
        self.held: Counter[str] = Counter()  # schedule key -> ticks held for a capacity ladder
        self.errors = 0  # probe bugs (a probe raised instead of returning an outcome)
        self.cancelled = 0
        self.last_lateness_s = 0.0
        self.max_lateness_s = 0.0

    @property
    def missed_total(self) -> int:
        return sum(self.missed.values())

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop scheduling (safe from a signal handler); `run()` then drains and returns."""
        self._stop.set()

    def jitter_for(self, schedule: Schedule) -> float:
        if self.jitter_s is not None:
            return self.jitter_s
        return min(schedule.interval_s * 0.02, MAX_JITTER_S)

    def first_due(self, start: float) -> dict[str, float]:
        """Each schedule's first (un-jittered) due time, given the start time."""
        offsets = spread_offsets(self.schedules)
        return {s.key: start + offsets[s.key] for s in self.schedules}

    # -- running ---------------------------------------------------------------------------

    async def run(self, *, once: bool = False) -> None:
        """Dispatch until `stop()` (or, with once=True, until every schedule ran once), then
        let in-flight runs finish within grace_s, cancel the rest and close the sessions."""
        self._global = asyncio.Semaphore(self.concurrency)
        if self._run_probe is None:
            pool = self._pool = SessionPool()

            async def default_probe(target: Target, job: Job) -> ProbeResult:
                return await PROBES[target.kind].run(target, job, pool.for_target(target))

            self._run_probe = default_probe
        self.running = True
        try:
            if once:
                now = self._mono()
                for s in self.schedules:
                    self._spawn(s, now)
                await self._wait_all(None)
            else:
                await self._dispatch()
        finally:
            try:
                await self._drain()
            finally:
                self.running = False
                if self._pool is not None:
                    await self._pool.close()

    async def _dispatch(self) -> None:
        start = self._mono()
        rngs = {s.key: random.Random(f"{self.seed}/{s.key}") for s in self.schedules}
        heap = [(due, i) for i, due in enumerate(self.first_due(start).values())]
        heapq.heapify(heap)
        while heap and not self._stop.is_set():
            base, i = heap[0]
            schedule = self.schedules[i]
            due = base + rngs[schedule.key].uniform(0.0, self.jitter_for(schedule))
            await self._wait(due - self._mono())
            if self._stop.is_set():
                break
            heapq.heapreplace(heap, (base + schedule.interval_s, i))
            if self._hold is not None and self._hold(schedule.target.network):
                self.held[schedule.key] += 1
                continue
            previous = self._tasks.get(schedule.key)
            if previous is not None and not previous.done():
                self.missed[schedule.key] += 1
                log.info("skipped a run of %s: its previous run is still in flight "
                         "(interval %.3gs)", schedule.key, schedule.interval_s)
                continue
            self._spawn(schedule, due)

    async def _wait(self, delay: float) -> None:
        await sleep_unless_stopped(delay, self._stop, self._sleep)

    def _spawn(self, schedule: Schedule, due: float) -> None:
        task = asyncio.get_running_loop().create_task(self._run_one(schedule, due),
                                                      name=f"run {schedule.key}")
        self._tasks[schedule.key] = task

    def _slot(self, target: Target) -> asyncio.Semaphore:
        sem = self._per_target.get(target.key)
        if sem is None:
            sem = self._per_target[target.key] = asyncio.Semaphore(max(target.concurrency, 1))
        return sem

    async def _run_one(self, schedule: Schedule, due: float) -> None:
        target, job = schedule.target, schedule.job
        assert self._global is not None and self._run_probe is not None
        # Target slot first, then a global one: a busy target never holds global slots.
        async with self._slot(target), self._global:
            t_call = self._mono()
            wall = self._clock()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                result = await asyncio.wait_for(self._run_probe(target, job), hard_cap_s(job))
            except TimeoutError:
                result = _hard_timeout(target, job, wall, self._mono() - t_call)
            except Exception as exc:
                self.errors += 1
                result = probe_error_result(target, job, wall, self._mono() - t_call, exc)
                trace = scrub("".join(traceback.format_exception(exc)), target.secrets())
                log.error("probe %s raised instead of returning an outcome (a bug in the probe "
                          "kind %r); stored as malformed:\n%s", schedule.key, target.kind, trace)
            finally:
                self.in_flight -= 1
            t_end = self._mono()
        lateness = max(t_call - due, 0.0)
        self.last_lateness_s = lateness
        self.max_lateness_s = max(self.max_lateness_s, lateness)
        lagged = result.lagged or (self.loopwatch is not None and self.loopwatch.lagged_between(
            t_call, t_end, self.lag_threshold_s))
        # scheduled_at on the probe's own wall clock, so lateness is exact (monotonic-measured)
        result = result.replace(scheduled_at=result.started_at - lateness,
                                location=result.location or self.location, lagged=lagged)
        result = result.scrubbed(target.secrets())  # every sink sees it scrubbed
        self.runs += 1
        self.outcomes[result.outcome.value] += 1
        for sink in self.sinks:
            try:
                sink.on_result(result)
            except Exception:
                log.exception("sink %s failed on a result", type(sink).__name__)

    async def _wait_all(self, timeout: float | None) -> set[asyncio.Task[None]]:
        tasks = {t for t in self._tasks.values() if not t.done()}
        if not tasks:
            return set()
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        return pending

    async def _drain(self) -> None:
        """Let the runs in flight finish within grace_s; cancel the rest (all of them if this
        wait is cancelled) and wait for their end."""
        pending = {t for t in self._tasks.values() if not t.done()}
        try:
            pending = await self._wait_all(self.grace_s)
            if pending:
                log.warning("cancelling %d run(s) still in flight after the %.3gs grace "
                            "period", len(pending), self.grace_s)
        finally:
            pending = {t for t in pending if not t.done()}
            self.cancelled += len(pending)
            await owned.cancel_all(pending)


def _hard_timeout(target: Target, job: Job, started_at: float, elapsed: float) -> ProbeResult:
    return ProbeResult(
        network=target.network, target=target.name, job=job.name, model=target.model,
        outcome=Outcome.TIMEOUT, started_at=started_at, kind=target.kind,
        job_version=job.version, prompt_hash=job.prompt_hash, duration_s=elapsed,
        error=f"no result within {hard_cap_s(job):.0f} s (the probe overran the job's "
              f"{job.deadline_s:.0f} s deadline; cancelled by the scheduler)")
