"""One timed streaming exchange, shared by the streaming kinds (openai, ollama, livepeer).

POSTs the request under the job's total deadline, stamps the first byte, lets the kind's own
reader consume the body (it reschedules the timer after each token for stall detection), and
maps what went wrong to an outcome: a deadline hit after streaming began is `stalled`, before
it `timeout`; transport errors go through `probes.base.classify`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from monitor.core.jobs import Job
from monitor.core.result import Outcome
from probes.base import classify
from probes.session import RequestClock, TargetSession
from probes.streamstats import TokenStats

# (response, timer, deadline in loop time, loop) -> (outcome or None for success, error text)
Reader = Callable[[aiohttp.ClientResponse, asyncio.Timeout, float, asyncio.AbstractEventLoop],
                  Awaitable[tuple[Outcome | None, str]]]


@dataclass(frozen=True, slots=True)
class Exchange:
    started_at: float  # unix seconds, taken once
    clock: RequestClock
    status: int | None
    headers: Any
    outcome: Outcome
    error: str
    end: float  # perf_counter when the exchange ended


async def stream_post(session: TargetSession, url: str, payload: bytes,
                      headers: dict[str, str], job: Job, stats: TokenStats, read: Reader,
                      complete: Callable[[], bool]) -> Exchange:
    """Run one request; `complete()` says whether the terminal event was seen (otherwise the
    connection is closed rather than returned to the pool)."""
    loop = asyncio.get_running_loop()
    started_at = time.time()
    clock = RequestClock()
    deadline = loop.time() + job.deadline_s
    status: int | None = None
    resp_headers: Any = {}
    outcome: Outcome | None = None
    error = ""
    try:
        async with asyncio.timeout_at(deadline) as timer:
            async with session.client.post(url, data=payload, headers=headers,
                                           trace_request_ctx=clock) as resp:
                stats.first_byte = time.perf_counter()
                status, resp_headers = resp.status, resp.headers
                outcome, error = await read(resp, timer, deadline, loop)
                if not complete() or not resp.content.at_eof():
                    resp.close()  # do not wait for servers that keep the stream open
    except TimeoutError:
        if stats.first_token is not None and loop.time() < deadline - 1e-3:
            outcome, error = Outcome.STALLED, f"no token for {job.stall_s:g}s after streaming began"
        else:
            outcome, error = Outcome.TIMEOUT, f"no completion within {job.deadline_s:g}s"
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        outcome, error = classify(exc, clock)
    return Exchange(started_at, clock, status, resp_headers, outcome or Outcome.OK, error,
                    time.perf_counter())
