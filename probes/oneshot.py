"""One timed one-shot request (the non-streaming counterpart of `probes.streaming.stream_post`).

Sends one request under the job's total deadline, stamps the first byte, reads the whole body
(up to a cap: one `read()` returns only what has arrived so far), and says what went wrong
before a body could be judged: a timeout, or a transport failure (`probes.base.classify`; a
body cut before its Content-Length or its last chunk is a `disconnect`). Used by kinds `http`,
the embeddings of kind `openai`, and the text-to-image pipeline of kind `livepeer`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from monitor.core.result import Outcome
from probes.base import MAX_RESPONSE_BYTES, classify, node_of, retry_after
from probes.session import RequestClock, TargetSession

ERROR_BODY_BYTES = 64 << 10  # an error answer is read this far, for its message


async def read_body(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The body until EOF, or its first `limit` + 1 bytes when longer (so a caller can tell)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Reply:
    started_at: float  # unix seconds, taken once
    clock: RequestClock
    status: int | None
    headers: Any
    body: bytes  # at most limit + 1 bytes
    oversized: bool  # the body was longer than the limit (and is cut to it)
    first_byte: float | None  # perf_counter when the headers arrived
    end: float  # perf_counter when the exchange ended
    outcome: Outcome | None  # None: a whole answer arrived, judge it; else what went wrong
    error: str

    def fields(self) -> dict[str, Any]:
        """The ProbeResult fields every one-shot kind records."""
        t0 = self.clock.t0
        return {
            "http_status": self.status,
            **self.clock.fields(),
            "ttfb_s": None if self.first_byte is None else self.first_byte - t0,
            "duration_s": self.end - t0,
            "bytes": len(self.body),
            "retry_after_s": retry_after(self.headers) if self.status == 429 else None,
            "node": node_of(self.headers) if self.headers else None,
        }


async def request_once(session: TargetSession, method: str, url: str, *,
                       headers: dict[str, str], deadline_s: float, data: bytes | None = None,
                       limit: int = MAX_RESPONSE_BYTES) -> Reply:
    """Run one request and read its body (up to `limit` bytes) within `deadline_s`."""
    started_at = time.time()
    clock = RequestClock()
    status: int | None = None
    resp_headers: Any = {}
    body = b""
    first_byte: float | None = None
    outcome: Outcome | None = None
    error = ""
    try:
        async with (
            asyncio.timeout(deadline_s),
            session.client.request(method, url, data=data, headers=headers,
                                   trace_request_ctx=clock) as resp,
        ):
            first_byte = time.perf_counter()
            status, resp_headers = resp.status, resp.headers
            body = await read_body(resp.content, limit)
            if len(body) > limit:
                resp.close()  # never wait for the rest of an oversized answer
    except TimeoutError:
        outcome, error = Outcome.TIMEOUT, f"no response within {deadline_s:g}s"
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        outcome, error = classify(exc, clock)  # ValueError: a URL yarl cannot parse
    oversized = len(body) > limit
    return Reply(started_at, clock, status, resp_headers, body[:limit], oversized, first_byte,
                 time.perf_counter(), outcome, error)
