"""The prober watching itself: how late its event loop wakes up.

A task sleeps `interval_s` (0.1 s) in a loop and measures, on its clock (time.perf_counter(),
the scheduler's `monotonic`), how much later than asked it woke. A lag of L at wake time w
means the loop was blocked during [w - L, w]: a run measured across that span has inflated
timings, so the scheduler flags it (`ProbeResult.lagged`). Callbacks in `on_sample` receive
every lag sample (the exporter feeds `depin_monitor_event_loop_lag_seconds` from it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.1
DEFAULT_THRESHOLD_S = 0.05
KEEP_S = 900.0  # samples kept for lagged_between(): longer than any job's deadline
# Only lags this large are kept for lagged_between() (its thresholds are at least this): on a
# busy machine most wake-ups are a millisecond or two late, and keeping those filled the
# 9,000-sample window with ~1 MB that a soak read as growth.
KEEP_ABOVE_S = 0.01


class LoopWatch:
    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S, *,
                 on_sample: list[Callable[[float], None]] | None = None,
                 keep_s: float = KEEP_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.on_sample: list[Callable[[float], None]] = list(on_sample or [])
        # (clock at wake-up, lag seconds); only lags worth flagging are kept
        self._lags: deque[tuple[float, float]] = deque(maxlen=max(int(keep_s / interval_s), 1))
        self.samples = 0
        self.max_lag_s = 0.0
        self.last_lag_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LoopWatch:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loopwatch")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            before = self.clock()
            await asyncio.sleep(self.interval_s)
            woke = self.clock()
            self.record(woke, max(woke - before - self.interval_s, 0.0))

    def record(self, woke: float, lag_s: float) -> None:
        """One sample (public so tests can inject lag without blocking a loop)."""
        self.samples += 1
        self.last_lag_s = lag_s
        self.max_lag_s = max(self.max_lag_s, lag_s)
        if lag_s >= KEEP_ABOVE_S:
            self._lags.append((woke, lag_s))
        for callback in self.on_sample:
            try:
                callback(lag_s)
            except Exception:  # a broken metric must not stop the watch
                log.exception("loop-lag callback failed")

    def lagged_between(self, t0: float, t1: float,
                       threshold_s: float = DEFAULT_THRESHOLD_S) -> bool:
        """Whether the loop was blocked for more than threshold_s (>= KEEP_ABOVE_S) at some
        point in [t0, t1]."""
        for woke, lag in reversed(self._lags):
            if woke - lag > t1:
                continue
            if woke < t0:
                break  # samples are in time order: everything older ended before t0
            if lag > threshold_s:
                return True
        return False
