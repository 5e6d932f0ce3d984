"""The garbage collector of a long-running monitor: tuned for timing, and run on a clock too.

`tune()` moves everything alive after start-up out of the collector's sight and raises the
young generation's threshold to 50,000 net allocations: CPython's default (700) paused the
loop during bursts of streams and every stream in flight measured the pause as TTFT
(benchmarks/RESULTS.md, accuracy).

That threshold counts allocations minus deallocations, and in steady state almost every
object a run allocates is freed with it, so the young generation may go uncollected for many
minutes while cyclic garbage (on Python < 3.12 mostly closed connections: CPython gh-100348,
monitor.runtime.transports) piles up (measured: benchmarks/RESULTS.md, soak).

`collect_every()` collects on a clock as well: every COLLECT_EVERY_S the generation that the
collector itself would pick by its thresholds, so the young generation then holds only what
survived since the last tick. Garbage that was still alive at a tick moves to an older
generation and waits for that one's turn (every 52nd tick, and every 102nd of those).
"""

from __future__ import annotations

import asyncio
import gc

COLLECT_EVERY_S = 10.0
THRESHOLDS = (50_000, 50, 100)


def tune() -> None:
    """Fewer, shorter collector pauses while probes are timed (see the module docstring)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


def tuned() -> bool:
    """Whether the collector is tuned as `tune()` leaves it (its clock is then needed)."""
    return gc.get_threshold() == THRESHOLDS


def collect_due() -> int:
    """One collection of the oldest generation whose count passed its threshold (the young one
    if none did), as CPython's automatic collection chooses; returns the generation. Without
    this choice the clocked young collections would reset the young count forever, and the
    automatic collection, which alone collects the older generations, would never come."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    generation = next((g for g in (2, 1) if counts[g] > thresholds[g]), 0)
    gc.collect(generation)
    return generation


async def collect_every(seconds: float = COLLECT_EVERY_S) -> None:
    """collect_due() every `seconds`, until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        collect_due()
