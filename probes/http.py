"""Plain HTTP health check (kind `http`): GET the URL, judge status and body, time it.

For gateways and status pages. The URL is probed as given. Passing needs a 2xx status (or
the job's `expect_status`, an int or a list of ints) and, when the job's params carry
`body_regex`, a match in the body (else `wrong_output`). Timings: connect, ttfb (headers),
duration (body read). Outcomes: ok, connect_error, timeout, disconnect, rate_limited,
http_error, wrong_output.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import aiohttp

from monitor.core.jobs import HEALTH, Job
from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from probes.base import (
    ProbeKind,
    auth_headers,
    classify,
    error_message,
    finish,
    node_of,
    retry_after,
)
from probes.session import RequestClock, TargetSession

MAX_BODY_BYTES = 1 << 20  # a health page larger than this is judged on its first MiB


def expected_statuses(job: Job) -> frozenset[int] | None:
    """The statuses that pass; None means any 2xx."""
    value = job.params.get("expect_status")
    if value is None:
        return None
    if isinstance(value, int):
        return frozenset({value})
    if isinstance(value, list | tuple):
        return frozenset(int(v) for v in value)
    return frozenset(int(v) for v in str(value).split(","))


async def run(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    headers = auth_headers(target)
    started_at = time.time()
    clock = RequestClock()
    status: int | None = None
    resp_headers: Any = {}
    body = b""
    first_byte: float | None = None
    try:
        async with (
            asyncio.timeout(job.deadline_s),
            session.client.get(target.base_url, headers=headers, allow_redirects=True,
                               trace_request_ctx=clock) as resp,
        ):
            first_byte = time.perf_counter()
            status, resp_headers = resp.status, resp.headers
            body = await resp.content.read(MAX_BODY_BYTES)
            expected = resp.content_length
            resp.close()  # never wait for the rest of an oversized page
        if expected is not None and len(body) < min(expected, MAX_BODY_BYTES):
            outcome, error = Outcome.DISCONNECT, (
                f"body ended after {len(body)} of {expected} bytes (Content-Length)")
        else:
            outcome, error = judge(status, body, job)
    except TimeoutError:
        outcome, error = Outcome.TIMEOUT, f"no response within {job.deadline_s:g}s"
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
        outcome, error = classify(exc, clock)
    end = time.perf_counter()
    t0 = clock.t0
    return finish(
        target, job, job.prompt_hash, started_at, outcome, error=error,
        http_status=status, connect_s=clock.connect_s,
        ttfb_s=None if first_byte is None else first_byte - t0, duration_s=end - t0,
        bytes=len(body), retry_after_s=retry_after(resp_headers) if status == 429 else None,
        node=node_of(resp_headers) if resp_headers else None,
    )


def judge(status: int, body: bytes, job: Job) -> tuple[Outcome, str]:
    allowed = expected_statuses(job)
    passed = status in allowed if allowed is not None else 200 <= status < 300
    if not passed:
        if status == 429:
            return Outcome.RATE_LIMITED, f"HTTP 429: {error_message(body)}"
        want = "2xx" if allowed is None else "/".join(str(s) for s in sorted(allowed))
        return Outcome.HTTP_ERROR, f"HTTP {status} (expected {want}): {error_message(body)}"
    pattern = job.params.get("body_regex")
    if pattern:
        text = body.decode("utf-8", "replace")
        if not re.search(str(pattern), text):
            return Outcome.WRONG_OUTPUT, f"body does not match /{pattern}/: {text[:60]!r}"
    return Outcome.OK, ""


KIND = ProbeKind(
    name="http",
    run=run,
    requests=frozenset({HEALTH}),
    url_hint="the full URL to GET, e.g. https://status.example.com/health",
)
