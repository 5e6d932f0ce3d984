"""Process-wide settings a long-running monitor changes, applied once by the CLI entry point
for its long-running commands (`run`, `demo`) and restored on the way out, so that nothing
else that shares the interpreter (tests, an embedding program) inherits them:

- the open-file limit raised towards the hard one (`raise_fd_limit`);
- closed asyncio transports freed as they close on Python 3.11 (monitor.runtime.transports);
- the garbage collector tuned for timing (monitor.runtime.collector; `monitor()` runs its
  clock while it is tuned);
- the interpreter's switch interval shortened (`tune_threads`).
"""

from __future__ import annotations

import contextlib
import gc
import resource
import sys
from collections.abc import Iterator

from monitor.runtime import collector
from monitor.runtime.transports import (
    closed_transports_released,
    release_closed_transports,
    unrelease_closed_transports,
)

FD_LIMIT = 65536  # open files the monitor asks for (bounded by the hard limit)
SWITCH_INTERVAL_S = 0.0005


def raise_fd_limit(wanted: int = FD_LIMIT) -> int:
    """Raise the soft limit on open files towards the hard one (as Go programs do at start):
    the monitor holds a socket per run in flight and an idle keep-alive connection per target,
    so a thousand targets outgrow the usual soft limit of 1024. Returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


def tune_gc() -> None:
    """The garbage collector tuned for timing (monitor.runtime.collector)."""
    collector.tune()


def tune_threads() -> None:
    """Hand the interpreter lock back to the event loop within 0.5 ms instead of 5 ms. The
    loop gives the lock up at every socket call; while another thread of this process computes
    (the store writer folding rollups, the status API reading the store), CPython makes the
    loop wait a whole switch interval to get it back after each call, and an iteration over
    hundreds of ready streams stretches to hundreds of milliseconds, which every stream in
    flight would measure as TTFT (benchmarks/RESULTS.md, accuracy)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


@contextlib.contextmanager
def tuned_process() -> Iterator[None]:
    """Every setting above applied for the duration of the block, then restored."""
    files = resource.getrlimit(resource.RLIMIT_NOFILE)
    thresholds, switch = gc.get_threshold(), sys.getswitchinterval()
    frozen_before = gc.get_freeze_count()
    released_before = closed_transports_released()
    release_closed_transports()
    try:
        raise_fd_limit()
        tune_gc()
        tune_threads()
        yield
    finally:
        sys.setswitchinterval(switch)
        gc.set_threshold(*thresholds)
        if not frozen_before:
            gc.unfreeze()
        if not released_before:
            unrelease_closed_transports()
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, files)
