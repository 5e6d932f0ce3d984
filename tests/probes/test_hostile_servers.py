"""Servers that attack the prober at the HTTP level, each a raw asyncio server on 127.0.0.1:
endless headers, gigantic lines, invalid UTF-8, a gzip bomb, a redirect loop, a redirect to
another origin, a trickle of one byte a second, a server that accepts and never reads. Each run
ends in one outcome within the job's deadline, in bounded memory (tracemalloc's peak over the
run), and never raises; the key never reaches another origin or the error text."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from monitor.core.jobs import Job
from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from probes import openai
from probes.base import MAX_RESPONSE_BYTES
from probes.session import SessionPool
from tests.conftest import quick_job

KEY = "sk-hostile-test-key-0123456789"
DEADLINE_S = 3.0
JOB = quick_job(deadline_s=DEADLINE_S, stall_s=1.0)
# What one run may hold at most: the response cap, the read buffer, a decompression chunk,
# the parser's lines; anything near a gzip bomb's 1 GB, or the endless headers', is a bug.
MEMORY_BOUND = 3 * MAX_RESPONSE_BYTES

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\n\r\n")


@asynccontextmanager
async def hostile(handler: Handler, host: str = "127.0.0.1",
                  rcvbuf: int | None = None) -> AsyncIterator[str]:
    """A raw server whose every connection is `handler`; yields its /v1 base URL."""
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()
            tasks.discard(task)

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    if rcvbuf is not None:  # set before listen: accepted sockets inherit it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    server = await asyncio.start_server(serve, sock=sock)
    port = sock.getsockname()[1]
    try:
        yield f"http://{'[' + host + ']' if ':' in host else host}:{port}/v1"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


async def run(base_url: str, job: Job = JOB) -> tuple[ProbeResult, float, int]:
    """(result, seconds, peak bytes traced) of one run of the openai probe."""
    target = Target(network="hostile", name="small", kind="openai", base_url=base_url,
                    model="m", api_key_env="HOSTILE_KEY")
    pool = SessionPool()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = await openai.run(target, job, pool.for_target(target))
        took = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await pool.close()
    assert KEY not in result.error
    return result, took, peak


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTILE_KEY", KEY)


def bounded(took: float, peak: int) -> None:
    assert took < DEADLINE_S + 2.0, f"took {took:.1f} s"
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.0f} MiB"


async def test_endless_headers() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        i = 0
        while True:
            writer.write(b"X-Header-%d: %s\r\n" % (i, b"v" * 100))
            await writer.drain()
            i += 1

    async with hostile(handler) as url:
        result, took, peak = await run(url)
    assert result.outcome is Outcome.MALFORMED and "bad HTTP response" in result.error
    bounded(took, peak)


@pytest.mark.parametrize("where", ["status line", "header", "SSE line"])
async def test_a_gigantic_line(where: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if where == "status line":
            writer.write(b"HTTP/1.1 200 " + b"O" * 64)
        elif where == "header":
            writer.write(b"HTTP/1.1 200 OK\r\nX-Huge: ")
        else:
            writer.write(SSE_HEAD + b"data: ")
        block = b"x" * 65536
        while True:  # a line that never ends
            writer.write(block)
            await writer.drain()

    async with hostile(handler) as url:
        result, took, peak = await run(url)
    assert result.outcome is Outcome.MALFORMED, result.error
    if where == "SSE line":
        assert "cap" in result.error  # the body cap ended it, not the deadline
    bounded(took, peak)


async def test_invalid_utf8_in_a_stream_and_in_an_error_body() -> None:
    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(SSE_HEAD + b'data: {"choices":[{"delta":{"content":"\xff\xfe\xc3"}}]}\n\n'
                     + b"data: [DONE]\n\n")
        await writer.drain()

    async def error(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = b'{"error": {"message": "bad \xff\xfe gateway"}}'
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    async with hostile(stream) as url:
        result, took, peak = await run(url)
    assert result.outcome is Outcome.MALFORMED and "UTF-8" in result.error, result.error
    bounded(took, peak)
    async with hostile(error) as url:
        result, took, peak = await run(url)
    assert result.outcome is Outcome.HTTP_ERROR and result.error.startswith("HTTP 502")
    bounded(took, peak)


async def test_a_gzip_bomb() -> None:
    bomb = gzip.compress(b"data: " + b"0" * (512 << 20), compresslevel=9)  # 512 MiB in ~0.5 MiB

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb))
        writer.write(bomb)
        await writer.drain()
        await asyncio.sleep(DEADLINE_S + 5)

    async with hostile(handler) as url:
        result, took, peak = await run(url)
    assert result.outcome is Outcome.MALFORMED and "cap" in result.error, result.error
    bounded(took, peak)


async def test_a_redirect_loop() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # keep-alive: every request redirected to itself
            await read_request(reader)
            writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /v1/chat/completions\r\n"
                         b"Content-Length: 0\r\n\r\n")
            await writer.drain()

    async with hostile(handler) as url:
        result, took, peak = await run(url)
    assert result.outcome is Outcome.HTTP_ERROR and "redirect" in result.error, result.error
    bounded(took, peak)


def other_host() -> str:
    """Another loopback host than 127.0.0.1 when the machine has IPv6 (::1), else 127.0.0.1
    on another port: either way another origin."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return "::1"
    except OSError:
        return "127.0.0.1"


async def test_a_redirect_to_another_origin_does_not_carry_the_key() -> None:
    seen: list[bytes] = []

    async def elsewhere(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(SSE_HEAD + b'data: {"choices":[{"delta":{"content":"4"},'
                     b'"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
        await writer.drain()

    async with hostile(elsewhere, host=other_host()) as target_url:
        async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await read_request(reader)
            assert KEY.encode() in request  # the configured origin gets the key ...
            location = target_url.encode() + b"/chat/completions"
            writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: " + location
                         + b"\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

        async with hostile(redirect) as url:
            result, took, peak = await run(url)
    assert seen, "the redirect was not followed at all"
    assert all(KEY.encode() not in request for request in seen)  # ... another one never
    assert all(b"authorization" not in request.lower() for request in seen)
    bounded(took, peak)
    assert result.outcome in (Outcome.OK, Outcome.WRONG_OUTPUT), result.error


async def test_a_trickle_of_one_byte_a_second() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for byte in SSE_HEAD + b'data: {"choices":[{"delta":{"content":"4"}}]}\n\n' * 100:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1.0)

    async with hostile(handler) as url:
        result, took, peak = await run(url)
    assert result.outcome is Outcome.TIMEOUT, result.error
    assert took >= DEADLINE_S - 0.1
    bounded(took, peak)


async def test_a_server_that_accepts_and_never_reads() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(DEADLINE_S + 5)

    job = quick_job("needle-8k-v1", deadline_s=DEADLINE_S, stall_s=1.0)  # a ~35 KB request
    async with hostile(handler, rcvbuf=4096) as url:
        result, took, peak = await run(url, job)
    assert result.outcome is Outcome.TIMEOUT, result.error
    assert took >= DEADLINE_S - 0.1
    bounded(took, peak)


async def test_a_server_that_answers_a_json_bomb_of_nesting() -> None:
    body = b"[" * 200_000 + b"]" * 200_000

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(SSE_HEAD + b"data: " + body + b"\n\n")
        await writer.drain()

    async with hostile(handler) as url:
        result, took, peak = await run(url)
    assert result.outcome is Outcome.MALFORMED, result.error
    bounded(took, peak)
    json.dumps(result.to_dict())  # the result itself is plain and serialisable
