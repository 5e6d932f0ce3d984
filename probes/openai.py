"""OpenAI-compatible streaming probe (kind `openai`): /chat/completions and /completions over SSE.

Sends `stream: true` with `stream_options.include_usage`; a server that rejects the latter with
a 400 is retried once without it (before measuring) and remembered. Timings on perf_counter,
from the request being sent: first byte (headers), first *generated* token (never the
role-only opening chunk), last token, terminal event. A stream is complete only at `[DONE]`
or, for servers that omit it, EOF after a finish_reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from monitor.jobs import CHAT, COMPLETION, EMBEDDING, Job, Rendered
from monitor.result import Outcome, ProbeResult
from monitor.target import Target
from probes import embeddings
from probes.base import (
    MAX_RESPONSE_BYTES,
    ProbeKind,
    auth_headers,
    error_message,
    finish,
    node_of,
    retry_after,
    status_outcome,
)
from probes.session import RequestClock, TargetSession
from probes.sse import SSEParser
from probes.streaming import stream_post
from probes.streamstats import TokenStats

NO_STREAM_OPTIONS = "no-stream-options"

try:  # optional accelerator: ~4x faster per chunk than the stdlib (benchmarks/RESULTS.md)
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = None


def _loads(data: str) -> Any:
    """json.loads, via orjson when installed. orjson is stricter (NaN, huge ints, lone
    surrogates), never looser, so on any orjson error the stdlib decides: same results."""
    if _fast_loads is not None:
        try:
            return _fast_loads(data)
        except ValueError:
            pass
    return json.loads(data)


def request_body(job: Job, rendered: Rendered, model: str, *, stream_options: bool) -> dict:
    """The exact JSON a job sends (tests check it against the documented formats)."""
    body: dict[str, Any] = {"model": model}
    if job.request == COMPLETION:
        body["prompt"] = rendered.prompt
    else:
        body["messages"] = [{"role": r, "content": c} for r, c in rendered.messages]
    body.update(max_tokens=job.max_tokens, temperature=job.temperature, seed=job.seed,
                stream=True)
    if stream_options:
        body["stream_options"] = {"include_usage": True}
    return body


@dataclass(slots=True)
class _Stream(TokenStats):
    """What has been seen of one response so far: token timing plus the protocol's state."""

    done: bool = False  # [DONE] seen
    finished: bool = False  # a finish_reason seen
    usage_out: int | None = None
    usage_in: int | None = None
    served_model: str | None = None
    fingerprint: str | None = None
    error: str | None = None  # an error object inside the stream
    malformed: str | None = None


async def run(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    if job.request == EMBEDDING:
        return await embeddings.run(target, job, session)
    use_options = NO_STREAM_OPTIONS not in session.quirks
    result = await _run_once(target, job, session, stream_options=use_options)
    if use_options and result.http_status == 400 and result.outcome is Outcome.HTTP_ERROR:
        # Some servers (older vLLM, gateways) reject stream_options. Retry once without it;
        # the retry is a fresh, separately timed run, and the quirk is remembered.
        retried = await _run_once(target, job, session, stream_options=False)
        if retried.http_status != 400:
            session.quirks.add(NO_STREAM_OPTIONS)
            return retried.replace(details={**retried.details, "stream_options": "rejected"})
    return result


async def _run_once(
    target: Target, job: Job, session: TargetSession, *, stream_options: bool
) -> ProbeResult:
    rendered = job.render()
    path = "/completions" if job.request == COMPLETION else "/chat/completions"
    url = target.base_url.rstrip("/") + path
    payload = json.dumps(request_body(job, rendered, target.model,
                                      stream_options=stream_options)).encode()
    headers = auth_headers(target)
    headers["Content-Type"] = "application/json"
    headers["Accept"] = "text/event-stream"

    s = _Stream()
    x = await stream_post(
        session, url, payload, headers, job, s,
        lambda resp, timer, deadline, loop: _read_response(resp, job, s, timer, deadline, loop),
        lambda: s.done)
    return _result(target, job, rendered, x.started_at, x.clock, s, x.status, x.headers,
                   x.outcome, x.error, x.end)


async def _read_response(
    resp: aiohttp.ClientResponse,
    job: Job,
    s: _Stream,
    timer: asyncio.Timeout,
    deadline: float,
    loop: asyncio.AbstractEventLoop,
) -> tuple[Outcome | None, str]:
    if resp.status >= 300:
        return status_outcome(resp.status, await resp.content.read(65536))
    ctype = resp.headers.get("content-type", "").lower()
    if ctype.startswith("application/json"):
        body = await resp.content.read(65536)
        try:
            value = json.loads(body)
        except ValueError:
            return Outcome.MALFORMED, "2xx JSON body that does not decode"
        if isinstance(value, dict) and "error" in value:
            return Outcome.HTTP_ERROR, f"error in 200 response: {error_message(body)}"
        return Outcome.MALFORMED, "expected an SSE stream, got a JSON document"

    parser = SSEParser()
    content = resp.content
    completion = job.request == COMPLETION
    while True:
        chunk = await content.readany()
        if not chunk:
            break
        now = time.perf_counter()
        s.nbytes += len(chunk)
        if s.nbytes > MAX_RESPONSE_BYTES:
            return Outcome.MALFORMED, f"response exceeded the {MAX_RESPONSE_BYTES >> 20} MiB cap"
        events = parser.feed(chunk)
        if not parser.fields_seen and parser.unknown_lines:
            return Outcome.MALFORMED, f"2xx body is not SSE (content-type {ctype or 'none'})"
        tokens_before = s.deltas
        for event in events:
            if _on_event(event.data, s, completion, now):
                break
        if s.error is not None:
            return Outcome.HTTP_ERROR, f"error in stream: {s.error}"
        if s.malformed is not None:
            return Outcome.MALFORMED, s.malformed
        if s.deltas != tokens_before:
            timer.reschedule(min(deadline, loop.time() + job.stall_s))
        if s.done:
            break
    if not s.done:
        parser.close()
        if not s.finished:
            if not parser.fields_seen:
                return Outcome.MALFORMED, f"2xx body is not SSE (content-type {ctype or 'none'})"
            return Outcome.DISCONNECT, "stream ended before [DONE] or a finish_reason"
    return None, ""


def _on_event(data: str, s: _Stream, completion: bool, now: float) -> bool:
    """Apply one SSE data payload; True when it is the terminal event."""
    if data == "[DONE]":
        s.done = True
        return True
    try:
        obj = _loads(data)
    except ValueError:
        # Tolerate gateways that put several JSON chunks in one event, one per line.
        if "\n" in data:
            stop = False
            for line in data.split("\n"):
                if line.strip():
                    stop = _on_event(line, s, completion, now) or stop
            return stop
        s.malformed = f"undecodable stream event: {data[:60]!r}"
        return True
    if not isinstance(obj, dict):
        s.malformed = "stream event is not a JSON object"
        return True
    if obj.get("error"):
        s.error = error_message(data)
        return True
    if s.served_model is None and obj.get("model"):
        s.served_model = str(obj["model"])
    if s.fingerprint is None and obj.get("system_fingerprint"):
        s.fingerprint = str(obj["system_fingerprint"])
    usage = obj.get("usage")
    if isinstance(usage, dict):
        if isinstance(usage.get("completion_tokens"), int):
            s.usage_out = usage["completion_tokens"]
            s.usage(now, s.usage_out)
        if isinstance(usage.get("prompt_tokens"), int):
            s.usage_in = usage["prompt_tokens"]
    choices = obj.get("choices")
    if choices is None:
        if usage is None:
            s.malformed = "stream chunk without choices or usage"
            return True
        return False
    if not isinstance(choices, list):
        s.malformed = "choices is not a list"
        return True
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        if completion:
            piece = choice.get("text")
            weight = len(piece) if isinstance(piece, str) else 0
        else:
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            weight = _generated_length(delta)
        if weight:
            s.token(now, piece, weight)
        reason = choice.get("finish_reason")
        if reason == "error":
            # OpenRouter ends a stream that failed mid-generation with finish_reason "error"
            # (docs: api-reference/streaming, "Handling errors during streaming").
            s.error = "finish_reason: error"
            return True
        if reason:
            s.finished = True
            s.finish(now)
    return False


def _generated_length(delta: dict) -> int:
    """Characters a chat delta generated: content, reasoning (`reasoning_content` as DeepSeek,
    SGLang and older vLLM name it, `reasoning` as newer vLLM and OpenRouter do) and tool-call
    names and arguments. Zero for a role-only or empty delta."""
    def length(key: str) -> int:
        value = delta.get(key)
        return len(value) if isinstance(value, str) else 0

    # Some vLLM versions send the same reasoning text under both names: count it once.
    n = length("content") + max(length("reasoning_content"), length("reasoning"))
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                for key in ("name", "arguments"):
                    if isinstance(function.get(key), str):
                        n += len(function[key])
            n = max(n, 1)  # a tool-call delta is generated output even when it carries no text
    return n


def _result(
    target: Target,
    job: Job,
    rendered: Rendered,
    started_at: float,
    clock: RequestClock,
    s: _Stream,
    status: int | None,
    headers: Any,
    outcome: Outcome,
    error: str,
    end: float,
) -> ProbeResult:
    if s.usage_out is not None:
        tokens, source = s.usage_out, "usage"
    elif s.deltas or outcome is Outcome.OK or s.done:
        tokens, source = s.deltas, "counted"
    else:
        tokens, source = None, None
    if outcome is Outcome.OK and target.check_output:
        reason = job.check(s.output)
        if reason:
            outcome, error = Outcome.WRONG_OUTPUT, reason
    return finish(
        target, job, rendered.prompt_hash, started_at, outcome,
        error=error,
        http_status=status,
        input_tokens=s.usage_in,
        **s.fields(clock, end, tokens, source),
        retry_after_s=retry_after(headers) if status == 429 else None,
        served_model=s.served_model,
        system_fingerprint=s.fingerprint,
        node=node_of(headers),
        details={"request_id": headers.get("x-request-id")} if headers.get("x-request-id")
        else {},
    )


KIND = ProbeKind(
    name="openai",
    run=run,
    requests=frozenset({CHAT, COMPLETION, EMBEDDING}),
    url_hint="the OpenAI-compatible base URL including /v1, e.g. https://api.example.com/v1",
)
