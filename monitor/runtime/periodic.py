"""The schedule the verdict families' runners share (model equality, quality audits, contract
checks, fingerprints): a run now, then one every interval from the start of the last, until
cancelled; a run that raised is logged and the schedule goes on."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable


async def every(interval_s: float, run_once: Callable[[], Awaitable[object]], what: str,
                log: logging.Logger, *, first_delay_s: float = 0.0,
                pause: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
    """`run_once` after `first_delay_s`, then every `interval_s`; a failure is logged on `log`
    as "`what` failed; next one in N s". `pause` waits between runs (a runner that can be
    woken passes its own)."""
    await asyncio.sleep(first_delay_s)
    while True:
        t0 = time.perf_counter()
        try:
            await run_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; next one in %.0f s", what, interval_s)
        await pause(max(interval_s - (time.perf_counter() - t0), 0.0))
