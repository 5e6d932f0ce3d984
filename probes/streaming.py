"""One timed streaming exchange, shared by the streaming kinds (openai, ollama, livepeer).

`stream_post` POSTs the request under the job's total deadline, stamps the first byte and runs
the one chunk loop: each chunk read goes to the kind's `Decoder` (a synchronous parser of its
wire format, so tests can drive it with any bytes), the stall timer is pushed back after each
token, and the body is capped. What went wrong maps to an outcome: a deadline hit after
streaming began is `stalled`, before it `timeout`; transport errors go through
`probes.base.classify`; a non-2xx answer through `probes.base.status_outcome`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from monitor.core.jobs import Job
from monitor.core.result import Outcome
from probes import shape
from probes.account import error_outcome
from probes.base import MAX_RESPONSE_BYTES, classify, error_message, status_outcome
from probes.oneshot import ERROR_BODY_BYTES, read_body
from probes.session import RequestClock, TargetSession
from probes.shape import ProtocolError, parse_json
from probes.sse import SSEParser
from probes.streamstats import TokenStats

# How a stream ended: (None, "") complete, else (outcome, error text).
Verdict = tuple[Outcome | None, str]
COMPLETE: Verdict = (None, "")


class StreamError(Exception):
    """An error object delivered inside a 2xx stream; the message is its text. Its outcome is
    `http_error`, or auth_error / quota_exhausted when the object says the buyer's account was
    refused (probes.account: OpenRouter's numeric `code`, OpenAI's billing type)."""

    def __init__(self, message: str, error: object = None) -> None:
        super().__init__(message)
        self.outcome = error_outcome(error)


class Decoder(Protocol):
    """A kind's wire format, fed chunk by chunk. `feed` returns a verdict once the stream is
    over (terminal event, error, protocol violation), else None; `end` judges EOF."""

    stats: TokenStats
    done: bool  # the terminal event was seen: the connection may be reused
    describe_error: Callable[[bytes], str]  # the message of an error body
    expects: str  # what the body should be, for error texts ("an SSE stream")
    documents: tuple[str, ...]  # content types that carry a whole document, not a stream

    def feed(self, chunk: bytes, now: float) -> Verdict | None: ...

    def end(self) -> Verdict: ...


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
                      headers: dict[str, str], job: Job, decoder: Decoder) -> Exchange:
    """Run one streamed request through `decoder`. Unless the decoder saw the terminal event
    and the body's end, the connection is closed rather than returned to the pool."""
    loop = asyncio.get_running_loop()
    stats = decoder.stats
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

                def extend() -> None:  # a token arrived: the stall limit starts again
                    timer.reschedule(min(deadline, loop.time() + job.stall_s))

                outcome, error = await read_stream(resp, decoder, extend)
                if not decoder.done or not resp.content.at_eof():
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


async def read_stream(resp: aiohttp.ClientResponse, decoder: Decoder,
                      on_token: Callable[[], None]) -> Verdict:
    """The one chunk loop: status, whole-document answers, then chunks until a verdict."""
    if resp.status >= 300:
        body = await read_body(resp.content, ERROR_BODY_BYTES)
        return status_outcome(resp.status, body, decoder.describe_error)
    ctype = resp.headers.get("content-type", "").lower()
    if ctype.startswith(decoder.documents):
        body = await read_body(resp.content, ERROR_BODY_BYTES)
        return document_verdict(body, ctype, decoder)
    stats = decoder.stats
    content = resp.content
    while True:
        chunk = await content.readany()
        if not chunk:
            return decoder.end()
        now = time.perf_counter()
        stats.nbytes += len(chunk)
        if stats.nbytes > MAX_RESPONSE_BYTES:
            return Outcome.MALFORMED, f"response exceeded the {MAX_RESPONSE_BYTES >> 20} MiB cap"
        tokens_before = stats.deltas
        verdict = decoder.feed(chunk, now)
        if verdict is not None:
            return verdict
        if stats.deltas != tokens_before:
            on_token()


def document_verdict(body: bytes, ctype: str, decoder: Decoder) -> Verdict:
    """A 2xx whole document where a stream was asked for: an error object is an http_error
    (servers report some failures with status 200), anything else not the protocol."""
    try:
        value = parse_json(body)
    except ValueError:
        value = None
    if isinstance(value, dict) and value.get("error"):
        return (error_outcome(value["error"]),
                f"error in 200 response: {decoder.describe_error(body)}")
    return (Outcome.MALFORMED,
            f"expected {decoder.expects}, got a whole document ({ctype.split(';')[0]})")


def apply_messages(decoder: Decoder, messages: Iterable[Any],
                   apply: Callable[[Any, float], bool], now: float) -> Verdict | None:
    """Apply a chunk's messages in order (`apply` is True at the terminal one): the verdict
    once the stream is over, else None."""
    try:
        for message in messages:
            if apply(message, now):
                decoder.done = True
                return COMPLETE
    except ProtocolError as exc:
        return Outcome.MALFORMED, str(exc)
    except StreamError as exc:
        return exc.outcome, f"error in stream: {exc}"
    return None


def decode_message(data: str | bytes, what: str,
                   describe: Callable[[bytes], str]) -> dict[str, Any]:
    """One streamed JSON message as an object; ProtocolError when it is not one, StreamError
    when it is an error object (`describe` reads its message)."""
    try:
        value = parse_json(data)
    except ValueError:
        raise ProtocolError(f"undecodable {what}: {data[:60]!r}") from None
    if not isinstance(value, dict):
        raise shape.wrong((what,), value, "an object")
    if value.get("error"):
        raise StreamError(describe(data.encode() if isinstance(data, str) else data),
                          value["error"])
    return value


class SSEDecoder:
    """The SSE side of a decoder: framing, the not-SSE test, and the end-of-stream rule (a
    stream is complete at its terminal event, or at EOF after a finish_reason). A kind
    implements `event(data, now)` (True at the terminal event), raising ProtocolError or
    StreamError, and sets `finished` when it sees a finish_reason."""

    expects = "an SSE stream"
    documents: tuple[str, ...] = ("application/json",)

    def __init__(self) -> None:
        self.stats = TokenStats()
        self.parser = SSEParser()
        self.done = False
        self.finished = False
        self.describe_error: Callable[[bytes], str] = error_message

    def event(self, data: str, now: float) -> bool:
        raise NotImplementedError

    def feed(self, chunk: bytes, now: float) -> Verdict | None:
        parser = self.parser
        events = parser.feed(chunk)
        if not parser.fields_seen and parser.unknown_lines:
            return Outcome.MALFORMED, "2xx body is not SSE"
        if parser.invalid_utf8:
            return Outcome.MALFORMED, "the stream is not UTF-8 (SSE must be)"
        return apply_messages(self, [event.data for event in events], self.event, now)

    def end(self) -> Verdict:
        self.parser.close()
        if not self.parser.fields_seen:
            return Outcome.MALFORMED, "2xx body is not SSE (no data field)"
        if self.finished:
            return COMPLETE  # a finish_reason, then EOF without [DONE]: complete
        return Outcome.DISCONNECT, "stream ended before [DONE] or a finish_reason"
