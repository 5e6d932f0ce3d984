"""OpenAI-compatible `/embeddings`, used by kind `openai` for embedding jobs (one round trip)."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from monitor.core.jobs import Job
from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from probes.base import (
    MAX_RESPONSE_BYTES,
    auth_headers,
    classify,
    error_message,
    finish,
    node_of,
    retry_after,
    status_outcome,
)
from probes.session import RequestClock, TargetSession


def request_body(job: Job, model: str, text: str) -> dict:
    return {"model": model, "input": [text], "encoding_format": "float"}


async def run(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    rendered = job.render()
    url = target.base_url.rstrip("/") + "/embeddings"
    headers = auth_headers(target)
    headers["Content-Type"] = "application/json"
    payload = json.dumps(request_body(job, target.model, rendered.prompt)).encode()
    started_at = time.time()
    clock = RequestClock()
    status = None
    resp_headers: dict = {}
    body = b""
    first_byte = None
    try:
        async with (
            asyncio.timeout(job.deadline_s),
            session.client.post(url, data=payload, headers=headers,
                                trace_request_ctx=clock) as resp,
        ):
            first_byte = time.perf_counter()
            status, resp_headers = resp.status, resp.headers
            body = await resp.content.read(MAX_RESPONSE_BYTES + 1)
    except TimeoutError:
        return _done(target, job, rendered.prompt_hash, started_at, clock, Outcome.TIMEOUT,
                     f"no response within {job.deadline_s:g}s", status, resp_headers, first_byte,
                     len(body))
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
        outcome, reason = classify(exc, clock)
        return _done(target, job, rendered.prompt_hash, started_at, clock, outcome, reason,
                     status, resp_headers, first_byte, len(body))
    outcome, error, dims, tokens = _judge(status, body, job, target)
    return _done(target, job, rendered.prompt_hash, started_at, clock, outcome, error, status,
                 resp_headers, first_byte, len(body), dims=dims, tokens=tokens)


def _judge(status: int, body: bytes, job: Job, target: Target
           ) -> tuple[Outcome, str, int | None, int | None]:
    if status >= 300:
        return *status_outcome(status, body), None, None
    if len(body) > MAX_RESPONSE_BYTES:
        return Outcome.MALFORMED, "response exceeded the size cap", None, None
    try:
        value = json.loads(body)
        vector = value["data"][0]["embedding"]
        if not isinstance(vector, list) or not all(isinstance(x, int | float) for x in vector):
            raise TypeError("embedding is not a list of numbers")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        if isinstance(locals().get("value"), dict) and "error" in value:
            return Outcome.HTTP_ERROR, f"error in 200 response: {error_message(body)}", None, None
        return Outcome.MALFORMED, f"not an embeddings response: {exc}", None, None
    usage = value.get("usage") or {}
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if target.check_output:
        reason = job.check(vector)
        if reason:
            return Outcome.WRONG_OUTPUT, reason, len(vector), tokens
    return Outcome.OK, "", len(vector), tokens


def _done(target: Target, job: Job, prompt_hash: str, started_at: float, clock: RequestClock,
          outcome: Outcome, error: str, status: int | None, headers, first_byte: float | None,
          nbytes: int, *, dims: int | None = None, tokens: int | None = None) -> ProbeResult:
    t0 = clock.t0
    return finish(
        target, job, prompt_hash, started_at, outcome, error=error,
        http_status=status, connect_s=clock.connect_s,
        ttfb_s=first_byte - t0 if first_byte else None,
        duration_s=time.perf_counter() - t0,
        input_tokens=tokens, bytes=nbytes,
        retry_after_s=retry_after(headers) if status == 429 else None,
        node=node_of(headers) if headers else None,
        details={"dimensions": dims} if dims else {},
    )
