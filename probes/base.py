"""What every probe kind shares: the signature, the result builder and the error-to-outcome maps.

A probe kind is one async callable `run(target, job, session) -> ProbeResult`. It never raises
for a network's failure: `classify()` is the one place a low-level exception becomes an outcome,
`status_outcome()` the one place a non-2xx answer does, and `finish()` the one place the job's
output check is applied. What a reader may trust in a body is decided in `probes.shape`.
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from monitor.core.jobs import Job
from monitor.core.kinds import KindSpec
from monitor.core.params import Param
from monitor.core.result import PROBE_ERROR, Outcome, ProbeResult
from monitor.core.secrets import scrub_value
from monitor.core.target import Target
from probes import transport
from probes.account import buyer_side_status
from probes.busy import NO_CAPACITY_MARK, no_capacity
from probes.session import RequestClock, TargetSession
from probes.shape import parse_json

ProbeFn = Callable[[Target, Job, TargetSession], Awaitable[ProbeResult]]

MAX_RESPONSE_BYTES = 8 << 20  # a response larger than this ends the run (bounded memory)

# Response headers that identify which node/provider served a request, by network. Request
# ids (x-request-id, AkashML's Inference-Id) are not nodes: one a run would make every run a
# "node" in the report; they are kept in the run's details instead (REQUEST_ID_HEADERS).
NODE_HEADERS = ("x-node-id", "x-chutes-instance", "x-livepeer-orchestrator", "x-orchestrator",
                "x-served-by", "x-provider")
REQUEST_ID_HEADERS = ("x-request-id", "inference-id", "x-inference-id")


@dataclass(frozen=True, slots=True)
class ProbeKind:
    name: str
    run: ProbeFn
    requests: frozenset[str]  # job request kinds this probe speaks (monitor.core.jobs.CHAT, ...)
    url_hint: str  # what --url means for this kind, for help and errors
    params: tuple[Param, ...] = ()  # what it reads from a job's params (monitor.core.params)
    query_params: bool = False  # ... and from the base URL's query string

    @classmethod
    def of(cls, spec: KindSpec, run: ProbeFn) -> ProbeKind:
        """The kind `spec` describes (monitor.core.kinds), run by `run`."""
        return cls(spec.name, run, spec.requests, spec.url_hint, spec.params, spec.query_params)

    def param(self, name: str) -> Param | None:
        """The setting `name` (or an alias of it) of this kind, if it reads one."""
        return next((p for p in self.params if name in p.names), None)


def classify(exc: BaseException, clock: RequestClock | None) -> tuple[Outcome, str]:
    """Map a transport exception to (outcome, short reason). Before the request was sent a
    failure is a connect_error; after, the connection dropped: a disconnect. The exception's
    frames are released (see `release`)."""
    try:
        return _classify(exc, clock)
    finally:
        release(exc)


def release(exc: BaseException) -> None:
    """Cut an exception chain's references to the frames it was raised through. Those frames
    hold the exception in their locals (aiohttp's connector, asyncio's timeouts), so each
    failed run otherwise leaves a reference cycle of a few KB (request, payload, socket
    objects) that only the garbage collector frees, and the monitor's tuned collector
    (monitor.runtime.collector) runs rarely (measured: benchmarks/RESULTS.md, soak). Read the
    reason text before calling this."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        e = pending.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)  # skips the frames still running
        e.__traceback__ = None
        pending += [e.__cause__, e.__context__]


def _classify(exc: BaseException, clock: RequestClock | None) -> tuple[Outcome, str]:
    sent = clock is not None and clock.sent is not None
    reason = transport.connect_failure(exc, clock)  # DNS, proxy, TLS: with a clear reason
    if reason is not None:
        return Outcome.CONNECT_ERROR, reason
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerFingerprintMismatch):
        return Outcome.CONNECT_ERROR, f"connect failed: {_reason(exc)}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return Outcome.CONNECT_ERROR, f"TLS failed: {_reason(exc)}"
    if isinstance(exc, aiohttp.InvalidURL):
        return Outcome.CONNECT_ERROR, f"invalid URL: {exc}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Outcome.DISCONNECT, "server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Outcome.DISCONNECT, "connection closed mid-body (response payload not completed)"
    if isinstance(exc, ConnectionResetError) or (
        isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE)
    ):
        return Outcome.DISCONNECT, "connection reset by peer"
    if isinstance(exc, aiohttp.ClientOSError):
        if not sent:
            return Outcome.CONNECT_ERROR, f"connect failed: {_reason(exc)}"
        return Outcome.DISCONNECT, f"connection lost: {_reason(exc)}"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return (Outcome.HTTP_ERROR, f"redirect loop: more than {len(exc.history)} redirects "
                f"(the last to {str(exc.request_info.real_url)[:100]})")
    if isinstance(exc, aiohttp.ClientResponseError):
        return Outcome.MALFORMED, f"bad HTTP response: {exc.message}"
    if isinstance(exc, aiohttp.ClientError | OSError | asyncio.IncompleteReadError):
        if not sent:
            return Outcome.CONNECT_ERROR, f"{type(exc).__name__}: {_reason(exc)}"
        return Outcome.DISCONNECT, f"{type(exc).__name__}: {_reason(exc)}"
    return Outcome.MALFORMED, f"{type(exc).__name__}: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.split("\n", 1)[0]


def node_of(headers: Any) -> str | None:
    for name in NODE_HEADERS:
        value = headers.get(name)
        if value:
            return str(value)[:120]
    return None


def request_id_of(headers: Any) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return str(value)[:120]
    return None


def retry_after(headers: Any) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


ERROR_TEXT_CHARS = 64 << 10
"""A bound on memory only: an error text is scrubbed of the key and then cut to
ERROR_MAX_CHARS where the result is built (`finish`), so a cut here, far beyond that, never
shows and never leaves part of a key behind."""


def error_message(body: bytes | str) -> str:
    """The human part of an error body: OpenAI `{"error": {"message"}}`, `{"detail"}`, or text.
    Any body gives a text (not yet scrubbed nor cut: `finish` does both), never an
    exception."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        value = parse_json(text)
    except ValueError:
        return " ".join(text.split())[:ERROR_TEXT_CHARS]
    if isinstance(value, dict):
        err = value.get("error", value.get("detail", value.get("message", value)))
        if isinstance(err, dict):
            err = err.get("message") or err.get("type") or err
        value = err
    if isinstance(value, str):
        return value[:ERROR_TEXT_CHARS]
    # A structure: its compact JSON (str() of a deep one can hit the recursion limit).
    try:
        return json.dumps(value, separators=(",", ":"))[:ERROR_TEXT_CHARS]
    except (ValueError, RecursionError):
        return " ".join(text.split())[:ERROR_TEXT_CHARS]


def status_outcome(status: int, body: bytes, describe: Callable[[bytes], str] = error_message,
                   *, expected: str = "") -> tuple[Outcome, str]:
    """The outcome of an answer whose status is not the one wanted (any 2xx, or `expected`),
    with the body's message (`describe` reads the protocol's error body): auth_error or
    quota_exhausted when it is about the buyer's account (probes.account), else 429 is
    rate_limited and any other an http_error; an answer that says no capacity is free
    (probes.busy) is named so in the text."""
    want = f" (expected {expected})" if expected else ""
    outcome = buyer_side_status(status, body) or (
        Outcome.RATE_LIMITED if status == 429 else Outcome.HTTP_ERROR)
    message = describe(body)
    busy = f" {NO_CAPACITY_MARK}" if no_capacity(status, message) else ""
    return outcome, f"HTTP {status}{want}{busy}: {message}"


def finish(
    target: Target,
    job: Job,
    prompt_hash: str,
    started_at: float,
    outcome: Outcome,
    *,
    error: str = "",
    secrets: Iterable[str | None] = (),
    output: object = None,
    **fields: Any,
) -> ProbeResult:
    """Build the frozen result, every text the network wrote in it (error, details, served
    model, node, ...) scrubbed of the target's secrets (`monitor.core.secrets`), the error
    scrubbed before it is cut. A run that completed (`ok`) with an `output` is judged by the
    job's check here, on the scrubbed output (the check quotes it in its reason), unless the
    target turned checks off: a failed check makes it `wrong_output`."""
    secrets = (*target.secrets(), *secrets)
    if outcome is Outcome.OK and output is not None and target.check_output:
        reason = job.check(scrub_value(output, secrets))
        if reason:
            outcome, error = Outcome.WRONG_OUTPUT, reason
    return ProbeResult(
        network=target.network,
        target=target.name,
        job=job.name,
        job_version=job.version,
        prompt_hash=prompt_hash,
        model=target.model,
        kind=target.kind,
        outcome=outcome,
        started_at=started_at,
        error=error,
        **fields,
    ).scrubbed(secrets)


def probe_error_result(target: Target, job: Job, started_at: float, duration_s: float,
                       exc: BaseException) -> ProbeResult:
    """The run of a probe that raised instead of returning an outcome (a bug in the probe):
    `malformed`, error "probe error: <type>: <message>" scrubbed of secrets, and the
    exception's type under details[PROBE_ERROR], so no run is lost."""
    kind = type(exc).__name__
    return finish(target, job, job.prompt_hash, started_at, Outcome.MALFORMED,
                  error=f"probe error: {kind}: {exc}", duration_s=duration_s,
                  details={PROBE_ERROR: kind})


def auth_headers(target: Target) -> dict[str, str]:
    headers = {"User-Agent": "depin-monitor/0.1"}
    headers.update(dict(target.headers))
    key = target.api_key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers
