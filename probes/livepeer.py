"""Livepeer AI gateway pipelines (kind `livepeer`): `POST {gateway}/llm` and `/text-to-image`.

LLM (ai-worker `runner/app/routes/llm.py`): JSON `{model, messages, max_tokens, temperature,
stream: true}`; the SSE stream carries either the current OpenAI-like chunks
`{"choices": [{"delta": {"role", "content"}, "index", "finish_reason"}], "tokens_used":
{prompt_tokens, completion_tokens, total_tokens}, "id", "model", "created"}` (`usage` since
2025-01-28: a running count on every chunk) or the older `{"chunk": "..."}` events closed by
`{"tokens_used": N}`; the runner ends with `data: [DONE]` (a `"done": true` flag is accepted
too), the go-livepeer gateway stops after the finish_reason chunk without it, and failures come
as `data: {"error": "..."}` or, from the gateway, `{"error": {"message"}}` with a 5xx.
Text-to-image: JSON `{model_id, prompt, width, height, num_inference_steps, guidance_scale,
safety_check, seed}` -> `{"images": [{"url", "seed", "nsfw"}]}`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from monitor.jobs import CHAT, IMAGE, Job, Rendered
from monitor.result import Outcome, ProbeResult
from monitor.target import Target
from probes.base import (
    MAX_RESPONSE_BYTES,
    ProbeKind,
    auth_headers,
    classify,
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


def llm_body(job: Job, rendered: Rendered, model: str) -> dict[str, Any]:
    """The JSON an LLM job sends (ai-worker's LLMRequest has no seed field)."""
    return {
        "model": model,
        "messages": [{"role": r, "content": c} for r, c in rendered.messages],
        "max_tokens": job.max_tokens,
        "temperature": job.temperature,
        "stream": True,
    }


def image_body(job: Job, rendered: Rendered, model: str) -> dict[str, Any]:
    """The JSON a text-to-image job sends, sizes from the job's params."""
    p = job.params
    return {
        "model_id": model,
        "prompt": rendered.prompt,
        "width": int(p.get("width", 512)),  # type: ignore[call-overload]
        "height": int(p.get("height", 512)),  # type: ignore[call-overload]
        "num_inference_steps": int(p.get("num_inference_steps", 4)),  # type: ignore[call-overload]
        "guidance_scale": float(p.get("guidance_scale", 2.0)),  # type: ignore[arg-type]
        "safety_check": bool(p.get("safety_check", True)),
        "seed": job.seed,
    }


def error_text(body: bytes) -> str:
    """Livepeer's error shapes: runner `{"detail": {"msg"}}`, gateway `{"error": ...}`, text."""
    try:
        value = json.loads(body)
    except ValueError:
        return error_message(body)
    if isinstance(value, dict):
        detail = value.get("detail")
        if isinstance(detail, dict) and detail.get("msg"):
            return str(detail["msg"])[:200]
    return error_message(body)


@dataclass(slots=True)
class _Stream:
    stats: TokenStats = field(default_factory=TokenStats)
    done: bool = False
    finished: bool = False
    fmt: str | None = None  # "choices" (current) or "chunk" (legacy)
    usage_out: int | None = None
    usage_in: int | None = None
    legacy_used: int | None = None  # legacy {"tokens_used": N}: its meaning is undocumented
    served_model: str | None = None
    error: str | None = None
    malformed: str | None = None


async def run(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    if job.request == IMAGE:
        return await _image(target, job, session)
    return await _llm(target, job, session)


def _url(target: Target, path: str) -> str:
    return target.base_url.rstrip("/") + path


async def _llm(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    rendered = job.render()
    payload = json.dumps(llm_body(job, rendered, target.model)).encode()
    headers = auth_headers(target)
    headers["Content-Type"] = "application/json"
    headers["Accept"] = "text/event-stream"
    s = _Stream()
    x = await stream_post(
        session, _url(target, "/llm"), payload, headers, job, s.stats,
        lambda resp, timer, deadline, loop: _read_llm(resp, job, s, timer, deadline, loop),
        lambda: s.done)
    started_at, clock, status, resp_headers = x.started_at, x.clock, x.status, x.headers
    outcome, error, end = x.outcome, x.error, x.end

    # The gateway's Go struct always carries `usage`: all zeros when the runner sent none.
    if s.usage_out is not None and (s.usage_out > 0 or not s.stats.deltas):
        tokens, source = s.usage_out, "usage"
    elif s.stats.deltas or outcome is Outcome.OK:
        tokens, source = s.stats.deltas, "counted"
    else:
        tokens, source = None, None
    if outcome is Outcome.OK and target.check_output:
        reason = job.check(s.stats.output)
        if reason:
            outcome, error = Outcome.WRONG_OUTPUT, reason
    return finish(
        target, job, rendered.prompt_hash, started_at, outcome, error=error,
        http_status=status, input_tokens=s.usage_in,
        retry_after_s=retry_after(resp_headers) if status == 429 else None,
        served_model=s.served_model, node=node_of(resp_headers) if resp_headers else None,
        details=_llm_details(s),
        **s.stats.fields(clock, end, tokens, source),
    )


def _llm_details(s: _Stream) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if s.fmt:
        details["stream_format"] = s.fmt
    if s.legacy_used is not None:
        details["tokens_used"] = s.legacy_used
    return details


async def _read_llm(resp: aiohttp.ClientResponse, job: Job, s: _Stream, timer: asyncio.Timeout,
                    deadline: float, loop: asyncio.AbstractEventLoop
                    ) -> tuple[Outcome | None, str]:
    if resp.status >= 300:
        body = await resp.content.read(65536)
        return status_outcome(resp.status, body, error_text)
    ctype = resp.headers.get("content-type", "").lower()
    if ctype.startswith("application/json"):
        body = await resp.content.read(65536)
        try:
            value = json.loads(body)
        except ValueError:
            return Outcome.MALFORMED, "2xx JSON body that does not decode"
        if isinstance(value, dict) and value.get("error"):
            return Outcome.HTTP_ERROR, f"error in 200 response: {error_text(body)}"
        return Outcome.MALFORMED, "expected an SSE stream (stream: true), got a JSON document"
    parser = SSEParser()
    while True:
        chunk = await resp.content.readany()
        if not chunk:
            break
        now = time.perf_counter()
        s.stats.nbytes += len(chunk)
        if s.stats.nbytes > MAX_RESPONSE_BYTES:
            return Outcome.MALFORMED, f"response exceeded the {MAX_RESPONSE_BYTES >> 20} MiB cap"
        events = parser.feed(chunk)
        if not parser.fields_seen and parser.unknown_lines:
            return Outcome.MALFORMED, f"2xx body is not SSE (content-type {ctype or 'none'})"
        before = s.stats.deltas
        for event in events:
            if _on_event(event.data, s, now):
                break
        if s.error is not None:
            return Outcome.HTTP_ERROR, f"error in stream: {s.error}"
        if s.malformed is not None:
            return Outcome.MALFORMED, s.malformed
        if s.stats.deltas != before:
            timer.reschedule(min(deadline, loop.time() + job.stall_s))
        if s.done:
            return None, ""
    parser.close()
    if not parser.fields_seen:
        return Outcome.MALFORMED, f"2xx body is not SSE (content-type {ctype or 'none'})"
    if s.finished:
        return None, ""  # a finish_reason, then EOF without [DONE]: complete, like openai
    return Outcome.DISCONNECT, "stream ended before [DONE] or a finish_reason"


def _on_event(data: str, s: _Stream, now: float) -> bool:
    """Apply one SSE data payload in either Livepeer format; True when the stream is over."""
    if data.strip() == "[DONE]":
        s.done = True
        return True
    try:
        obj = json.loads(data)
    except ValueError:
        s.malformed = f"undecodable stream event: {data[:60]!r}"
        return True
    if not isinstance(obj, dict):
        s.malformed = "stream event is not a JSON object"
        return True
    if obj.get("error"):
        s.error = error_text(data.encode())
        return True
    known = False
    # The runner's running count rides on every chunk: `usage` since 2025-01-28, `tokens_used`
    # before (ai-runner runner/src/runner/pipelines/llm.py, LLMPipeline.generate); the go-livepeer
    # gateway passes it through (server/ai_process.go, handleSSEStream).
    used = obj.get("usage", obj.get("tokens_used"))
    if isinstance(used, int):  # legacy: the closing {"tokens_used": N}
        s.legacy_used, known = used, True
    elif isinstance(used, dict):
        if isinstance(used.get("completion_tokens"), int):
            s.usage_out = used["completion_tokens"]
            s.stats.usage(now, s.usage_out)
        if isinstance(used.get("prompt_tokens"), int):
            s.usage_in = used["prompt_tokens"]
        known = True
    if "chunk" in obj:
        known = True
        s.fmt = s.fmt or "chunk"
        piece = obj["chunk"]
        if not isinstance(piece, str):
            s.malformed = "'chunk' is not a string"
            return True
        if piece:
            s.stats.token(now, piece)
    choices = obj.get("choices")
    if choices is not None:
        known = True
        s.fmt = s.fmt or "choices"
        if s.served_model is None and obj.get("model"):
            s.served_model = str(obj["model"])
        if not isinstance(choices, list):
            s.malformed = "choices is not a list"
            return True
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            piece = delta.get("content") if isinstance(delta, dict) else None
            if piece:
                s.stats.token(now, piece)
            if choice.get("finish_reason"):
                s.finished = True
                s.stats.finish(now)
    if obj.get("done") is True:
        s.done = True
        return True
    if not known and "done" not in obj:
        s.malformed = "stream event with neither choices, chunk, tokens_used nor done"
        return True
    return False


async def _image(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    rendered = job.render()
    headers = auth_headers(target)
    headers["Content-Type"] = "application/json"
    payload = json.dumps(image_body(job, rendered, target.model)).encode()
    started_at = time.time()
    clock = RequestClock()
    status: int | None = None
    resp_headers: Any = {}
    body = b""
    first_byte: float | None = None
    outcome: Outcome
    error = ""
    details: dict[str, Any] = {}
    try:
        async with (
            asyncio.timeout(job.deadline_s),
            session.client.post(_url(target, "/text-to-image"), data=payload, headers=headers,
                                trace_request_ctx=clock) as resp,
        ):
            first_byte = time.perf_counter()
            status, resp_headers = resp.status, resp.headers
            body = await resp.content.read(MAX_RESPONSE_BYTES + 1)
            expected = resp.content_length
        if expected is not None and len(body) < expected:
            outcome, error = Outcome.DISCONNECT, (
                f"body ended after {len(body)} of {expected} bytes (Content-Length)")
        else:
            outcome, error, details = _judge_image(status, body, job, target)
    except TimeoutError:
        outcome, error = Outcome.TIMEOUT, f"no response within {job.deadline_s:g}s"
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
        outcome, error = classify(exc, clock)
    end = time.perf_counter()
    t0 = clock.t0
    return finish(
        target, job, rendered.prompt_hash, started_at, outcome, error=error,
        http_status=status, connect_s=clock.connect_s,
        ttfb_s=None if first_byte is None else first_byte - t0, duration_s=end - t0,
        bytes=len(body), retry_after_s=retry_after(resp_headers) if status == 429 else None,
        node=node_of(resp_headers) if resp_headers else None, details=details,
    )


def _judge_image(status: int, body: bytes, job: Job, target: Target
                 ) -> tuple[Outcome, str, dict[str, Any]]:
    if status >= 300:
        return *status_outcome(status, body, error_text), {}
    if len(body) > MAX_RESPONSE_BYTES:
        return Outcome.MALFORMED, "response exceeded the size cap", {}
    try:
        value = json.loads(body)
    except ValueError:
        return Outcome.MALFORMED, "2xx body is not JSON", {}
    if not isinstance(value, dict):
        return Outcome.MALFORMED, "response is not a JSON object", {}
    if value.get("error"):
        return Outcome.HTTP_ERROR, f"error in 200 response: {error_text(body)}", {}
    images = value.get("images")
    if not isinstance(images, list) or not all(
        isinstance(i, dict) and isinstance(i.get("url"), str) for i in images
    ):
        return Outcome.MALFORMED, "not a text-to-image response (images[].url missing)", {}
    details: dict[str, Any] = {"images": len(images),
                               "nsfw": sum(1 for i in images if i.get("nsfw") is True)}
    if images and isinstance(images[0].get("seed"), int):
        details["seed"] = images[0]["seed"]
    if target.check_output:
        reason = job.check(images)
        if reason:
            return Outcome.WRONG_OUTPUT, f"images: {reason}", details
    return Outcome.OK, "", details


KIND = ProbeKind(
    name="livepeer",
    run=run,
    requests=frozenset({CHAT, IMAGE}),
    url_hint="the Livepeer AI gateway root, e.g. https://dream-gateway.livepeer.cloud",
)
