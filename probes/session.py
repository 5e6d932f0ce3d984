"""Long-lived aiohttp client sessions, one per target, with per-request connect timing.

A probe gets a `TargetSession`: the pooled HTTP client for its target, the quirks learnt
about that target (e.g. it rejects `stream_options`), and a `RequestClock` per request that
aiohttp's tracing fills in (connect start/end, request sent), all on `time.perf_counter()`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp

from monitor.core.target import Target

READ_BUFSIZE = 1 << 18  # large read buffer: fewer wakeups per streamed byte


@dataclass(slots=True)
class RequestClock:
    """perf_counter stamps of one request, filled in by aiohttp trace callbacks."""

    start: float = field(default_factory=time.perf_counter)
    connect_start: float | None = None
    connect_end: float | None = None
    sent: float | None = None  # headers and body written
    reused: bool = False

    @property
    def connect_s(self) -> float | None:
        if self.connect_start is None or self.connect_end is None:
            return None
        return self.connect_end - self.connect_start

    @property
    def t0(self) -> float:
        """When the request was sent: the origin of ttfb, ttft and duration."""
        return self.sent if self.sent is not None else self.start


def _clock(ctx: SimpleNamespace) -> RequestClock | None:
    value = ctx.trace_request_ctx
    return value if isinstance(value, RequestClock) else None


async def _on_conn_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if clock := _clock(ctx):
        clock.connect_start = time.perf_counter()


async def _on_conn_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if clock := _clock(ctx):
        clock.connect_end = time.perf_counter()


async def _on_reuse(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if clock := _clock(ctx):
        clock.reused = True


async def _on_sent(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if clock := _clock(ctx):
        clock.sent = time.perf_counter()


def _trace_config() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_connection_create_start.append(_on_conn_start)
    trace.on_connection_create_end.append(_on_conn_end)
    trace.on_connection_reuseconn.append(_on_reuse)
    trace.on_request_headers_sent.append(_on_sent)
    trace.on_request_chunk_sent.append(_on_sent)
    return trace


class TargetSession:
    """The HTTP client and learnt quirks for one target. Create inside a running loop."""

    def __init__(self, target: Target, *, concurrency: int | None = None) -> None:
        self.target = target
        self.quirks: set[str] = set()
        limit = max(concurrency or target.concurrency, 1) + 4  # above the target's concurrency
        self._limit = limit
        self._client: aiohttp.ClientSession | None = None

    @property
    def client(self) -> aiohttp.ClientSession:
        if self._client is None or self._client.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit,
                                             ttl_dns_cache=300, enable_cleanup_closed=True)
            self._client = aiohttp.ClientSession(
                connector=connector,
                trace_configs=[_trace_config()],
                read_bufsize=READ_BUFSIZE,
                # Deadlines are the job's, enforced by the probe; aiohttp's own are off.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=None, sock_read=None),
                auto_decompress=True,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None and not self._client.closed:
            await self._client.close()


class SessionPool:
    """One TargetSession per target key, shared by every run against that target."""

    def __init__(self) -> None:
        self._sessions: dict[str, TargetSession] = {}

    def for_target(self, target: Target, *, concurrency: int | None = None) -> TargetSession:
        session = self._sessions.get(target.key)
        if session is None:
            session = TargetSession(target, concurrency=concurrency)
            self._sessions[target.key] = session
        return session

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._sessions.values()))
        self._sessions.clear()
