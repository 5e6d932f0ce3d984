"""Long-lived aiohttp client sessions, one per target, with per-request phase timing.

A probe gets a `TargetSession`: the pooled HTTP client for its target, set up from the
target's transport settings (TLS trust and identity, proxy, IP family: probes/tls.py and
probes/transport.py), the quirks learnt about that target (e.g. it rejects `stream_options`),
and a `RequestClock` per request that aiohttp's tracing fills in on `time.perf_counter()`:
connection start and end, DNS lookup, TLS handshake (probes.tls.TimedSSLObject), request
sent, and what the connection was (IP version, TLS version, cipher, certificate expiry) —
for a pooled connection too, whose facts were learnt when it was opened.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from monitor.core.target import Target
from probes import tls, transport

READ_BUFSIZE = 1 << 18  # large read buffer: fewer wakeups per streamed byte


@dataclass(slots=True)
class RequestClock:
    """perf_counter stamps of one request, filled in by aiohttp trace callbacks."""

    start: float = field(default_factory=time.perf_counter)
    connect_start: float | None = None  # a new connection: DNS + TCP (+ proxy) + TLS
    connect_end: float | None = None
    dns_start: float | None = None  # a lookup that was not answered from aiohttp's cache
    dns_end: float | None = None
    sent: float | None = None  # headers and body written
    reused: bool = False
    client_cert: bool = False  # the target presents a client certificate (mTLS)
    handshake: tls.TimedSSLObject | None = None  # TLS of the connection this request opened
    tls: tls.TLSFacts | None = None  # TLS of the connection the request used (new or pooled)
    ip_version: int | None = None  # of the connection the request used (a proxy's, via one)

    @property
    def connect_s(self) -> float | None:
        if self.connect_start is None or self.connect_end is None:
            return None
        return self.connect_end - self.connect_start

    @property
    def dns_s(self) -> float | None:
        if self.dns_start is None or self.dns_end is None:
            return None
        return self.dns_end - self.dns_start

    @property
    def tcp_s(self) -> float | None:
        """From the address being known to the TCP connection being up (for TLS: to the
        handshake's first flight; through a proxy: TCP to it plus its CONNECT answer)."""
        begin = self.dns_end if self.dns_end is not None else self.connect_start
        if begin is None:
            return None
        hs = self.handshake
        if hs is not None and hs.handshake_start is not None:
            return hs.handshake_start - begin
        return None if self.connect_end is None else self.connect_end - begin

    @property
    def tls_s(self) -> float | None:
        return None if self.handshake is None else self.handshake.handshake_s

    @property
    def t0(self) -> float:
        """When the request was sent: the origin of ttfb, ttft and duration."""
        return self.sent if self.sent is not None else self.start

    def fields(self) -> dict[str, Any]:
        """The ProbeResult fields this clock knows: connection phases and what it was."""
        facts = self.tls
        if facts is None and self.handshake is not None:  # a failed handshake: the chain seen
            facts = self.handshake.facts()
        return {
            "connect_s": self.connect_s,
            "dns_s": self.dns_s,
            "tcp_s": self.tcp_s,
            "tls_s": self.tls_s,
            "ip_version": self.ip_version,
            "tls_version": facts.version if facts else None,
            "tls_cipher": facts.cipher if facts else None,
            "tls_cert_expiry": facts.cert_expiry if facts else None,
        }


def _clock(ctx: SimpleNamespace) -> RequestClock | None:
    value = ctx.trace_request_ctx
    return value if isinstance(value, RequestClock) else None


async def _on_conn_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if clock := _clock(ctx):
        clock.connect_start = time.perf_counter()
        tls.OPENING.set(clock)  # the handshake about to start is this request's


async def _on_conn_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if clock := _clock(ctx):
        clock.connect_end = time.perf_counter()
        tls.OPENING.set(None)


async def _on_dns_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if clock := _clock(ctx):
        clock.dns_start = time.perf_counter()


async def _on_dns_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if clock := _clock(ctx):
        clock.dns_end = time.perf_counter()


async def _on_reuse(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if clock := _clock(ctx):
        clock.reused = True


async def _on_sent(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if clock := _clock(ctx):
        clock.sent = time.perf_counter()


async def _on_end(_s: Any, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
    if clock := _clock(ctx):
        _learn_connection(clock, params.response)


def _learn_connection(clock: RequestClock, response: aiohttp.ClientResponse) -> None:
    """IP version and TLS facts of the connection that carried the response."""
    conn = response.connection
    sock_transport = conn.transport if conn is not None else None
    if sock_transport is None:
        # A short body is read with the headers and the connection already back in the pool;
        # the response keeps its protocol, whose transport is that connection's.
        sock_transport = getattr(getattr(response, "_protocol", None), "transport", None)
    if sock_transport is None:
        return
    clock.ip_version = tls.peer_ip_version(sock_transport.get_extra_info("peername"))
    sslobj = sock_transport.get_extra_info("ssl_object")
    if isinstance(sslobj, tls.TimedSSLObject):
        clock.tls = sslobj.facts()


def _trace_config(client_cert: bool) -> aiohttp.TraceConfig:
    async def on_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        if clock := _clock(ctx):
            clock.client_cert = client_cert

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    trace.on_connection_create_start.append(_on_conn_start)
    trace.on_connection_create_end.append(_on_conn_end)
    trace.on_dns_resolvehost_start.append(_on_dns_start)
    trace.on_dns_resolvehost_end.append(_on_dns_end)
    trace.on_connection_reuseconn.append(_on_reuse)
    trace.on_request_headers_sent.append(_on_sent)
    trace.on_request_chunk_sent.append(_on_sent)
    trace.on_request_end.append(_on_end)
    return trace


class TargetSession:
    """The HTTP client and learnt quirks for one target. Create inside a running loop.

    The client's SSL context comes from probes.tls.client_context (TLSSettingsError if the
    target's TLS files cannot be used; `check` reports that before any run). `resolver`
    replaces aiohttp's DNS resolver (tests pin names to loopback addresses with it).
    """

    def __init__(self, target: Target, *, concurrency: int | None = None,
                 resolver: AbstractResolver | None = None) -> None:
        self.target = target
        self.quirks: set[str] = set()
        limit = max(concurrency or target.concurrency, 1) + 4  # above the target's concurrency
        self._limit = limit
        self._resolver = resolver
        self._client: aiohttp.ClientSession | None = None

    @property
    def client(self) -> aiohttp.ClientSession:
        if self._client is None or self._client.closed:
            settings = self.target.transport
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit, ttl_dns_cache=300,
                enable_cleanup_closed=True, ssl=tls.client_context(settings),
                family=transport.connector_family(settings),
                resolver=transport.resolver(settings, self._resolver))
            self._client = aiohttp.ClientSession(
                connector=connector,
                trace_configs=[_trace_config(client_cert=bool(settings.cert_file))],
                read_bufsize=READ_BUFSIZE,
                # Deadlines are the job's, enforced by the probe; aiohttp's own are off.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=None, sock_read=None),
                auto_decompress=True,
                proxy=transport.proxy(settings, self.target.base_url),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None and not self._client.closed:
            await self._client.close()


class SessionPool:
    """One TargetSession per target key, shared by every run against that target."""

    def __init__(self, resolver: AbstractResolver | None = None) -> None:
        self._sessions: dict[str, TargetSession] = {}
        self._resolver = resolver

    def for_target(self, target: Target, *, concurrency: int | None = None) -> TargetSession:
        session = self._sessions.get(target.key)
        if session is None:
            session = TargetSession(target, concurrency=concurrency, resolver=self._resolver)
            self._sessions[target.key] = session
        return session

    async def close(self) -> None:
        """Close every session, each in a task of its own that a cancel of this call does not
        stop: a task cancelled before its first step never runs, and its session would stay
        open (a monitor that stops just as a run closes its sessions cancels the run)."""
        sessions, self._sessions = list(self._sessions.values()), {}
        if not sessions:
            return
        closing = asyncio.gather(*(s.close() for s in sessions))
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            await asyncio.wait([closing])  # then stop as told
            raise
