"""Ollama's native chat API (kind `ollama`): `POST {root}/api/chat`, streamed as NDJSON.

Request, as Ollama documents it: `{model, messages, stream: true, options: {temperature, seed,
num_predict}}`. Response (`application/x-ndjson`): one JSON object per line,
`{model, created_at, message: {role, content}, done: false}` per token, then a final
`{done: true, done_reason, total_duration, load_duration, prompt_eval_count,
prompt_eval_duration, eval_count, eval_duration}` (durations in nanoseconds). Errors are
`{"error": "..."}`, with a non-2xx status before the stream or as a line inside it.
The server's own counters are kept in `details` beside our client-side timings; output tokens
come from `eval_count` (token_source "usage"), else from counting content chunks.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from monitor.jobs import CHAT, Job, Rendered
from monitor.result import Outcome, ProbeResult
from monitor.target import Target
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
from probes.streaming import stream_post
from probes.streamstats import TokenStats

# The final line's server-side counters (Ollama reports durations in nanoseconds).
SERVER_FIELDS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
                 "eval_count", "eval_duration")


def chat_url(base_url: str) -> str:
    """`{root}/api/chat`; a root given with a trailing `/api` is accepted too."""
    root = base_url.rstrip("/")
    if root.endswith("/api"):
        root = root[: -len("/api")]
    return root + "/api/chat"


def request_body(job: Job, rendered: Rendered, model: str) -> dict[str, Any]:
    """The exact JSON a job sends (tests check it against Ollama's documented format)."""
    return {
        "model": model,
        "messages": [{"role": r, "content": c} for r, c in rendered.messages],
        "stream": True,
        "options": {"temperature": job.temperature, "seed": job.seed,
                    "num_predict": job.max_tokens},
    }


@dataclass(slots=True)
class _Stream:
    stats: TokenStats = field(default_factory=TokenStats)
    done: bool = False
    final: dict[str, Any] = field(default_factory=dict)
    served_model: str | None = None
    error: str | None = None
    malformed: str | None = None


async def run(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    rendered = job.render()
    payload = json.dumps(request_body(job, rendered, target.model)).encode()
    headers = auth_headers(target)
    headers["Content-Type"] = "application/json"
    headers["Accept"] = "application/x-ndjson"

    s = _Stream()
    x = await stream_post(
        session, chat_url(target.base_url), payload, headers, job, s.stats,
        lambda resp, timer, deadline, loop: _read(resp, job, s, timer, deadline, loop),
        lambda: s.done)
    return _result(target, job, rendered, x.started_at, x.clock, s, x.status, x.headers,
                   x.outcome, x.error, x.end)


async def _read(resp: aiohttp.ClientResponse, job: Job, s: _Stream, timer: asyncio.Timeout,
                deadline: float, loop: asyncio.AbstractEventLoop) -> tuple[Outcome | None, str]:
    if resp.status >= 300:
        return status_outcome(resp.status, await resp.content.read(65536))
    ctype = resp.headers.get("content-type", "").lower()
    if ctype.startswith("text/html"):
        return Outcome.MALFORMED, f"2xx body is not NDJSON (content-type {ctype})"
    buf = b""
    while not s.done:
        chunk = await resp.content.readany()
        if not chunk:
            break
        now = time.perf_counter()
        s.stats.nbytes += len(chunk)
        if s.stats.nbytes > MAX_RESPONSE_BYTES:
            return Outcome.MALFORMED, f"response exceeded the {MAX_RESPONSE_BYTES >> 20} MiB cap"
        buf += chunk
        *lines, buf = buf.split(b"\n")
        before = s.stats.deltas
        for line in lines:
            if line.strip() and _on_line(line, s, now):
                break
        if s.error is not None:
            return Outcome.HTTP_ERROR, f"error in stream: {s.error}"
        if s.malformed is not None:
            return Outcome.MALFORMED, s.malformed
        if s.stats.deltas != before:
            timer.reschedule(min(deadline, loop.time() + job.stall_s))
    if not s.done and buf.strip():
        # A last line without its newline: complete JSON is fine, half a line is a cut stream.
        try:
            json.loads(buf)
        except ValueError:
            return Outcome.DISCONNECT, "stream cut mid-line before the final done:true object"
        _on_line(buf, s, time.perf_counter())
        if s.error is not None:
            return Outcome.HTTP_ERROR, f"error in stream: {s.error}"
        if s.malformed is not None:
            return Outcome.MALFORMED, s.malformed
    if not s.done:
        if s.stats.deltas == 0 and s.stats.nbytes == 0:
            return Outcome.DISCONNECT, "empty response body (no NDJSON lines, no done:true)"
        return Outcome.DISCONNECT, "stream ended before the final done:true object"
    return None, ""


def _on_line(line: bytes, s: _Stream, now: float) -> bool:
    """Apply one NDJSON line; True when the stream is over (done, error or not the protocol)."""
    try:
        obj = json.loads(line)
    except ValueError:
        s.malformed = f"undecodable NDJSON line: {line[:60]!r}"
        return True
    if not isinstance(obj, dict):
        s.malformed = "NDJSON line is not a JSON object"
        return True
    if obj.get("error"):
        s.error = error_message(line)
        return True
    if "done" not in obj:
        s.malformed = "NDJSON object without the 'done' field"
        return True
    if s.served_model is None and obj.get("model"):
        s.served_model = str(obj["model"])
    message = obj.get("message")
    if message is not None and not isinstance(message, dict):
        s.malformed = "'message' is not an object"
        return True
    if message:
        piece = message.get("content")
        if not isinstance(piece, str | None):
            s.malformed = "'message.content' is not a string"
            return True
        if piece or message.get("thinking") or message.get("tool_calls"):
            s.stats.token(now, piece)
    elif not obj["done"]:
        s.malformed = "stream object without 'message'"
        return True
    if obj["done"] is True:
        s.done = True
        s.stats.finish(now)
        s.final = {k: obj[k] for k in (*SERVER_FIELDS, "done_reason") if k in obj}
        return True
    return False


def _server_details(final: dict[str, Any]) -> dict[str, Any]:
    """Ollama's own counters (ns) and the rates derived from them, beside our timings."""
    details = dict(final)
    count, dur = final.get("eval_count"), final.get("eval_duration")
    if isinstance(count, int) and isinstance(dur, int | float) and dur > 0:
        details["server_tokens_per_s"] = count / (dur / 1e9)
    if isinstance(final.get("total_duration"), int | float):
        details["server_total_s"] = final["total_duration"] / 1e9
    return details


def _result(target: Target, job: Job, rendered: Rendered, started_at: float,
            clock: RequestClock, s: _Stream, status: int | None, headers: Any,
            outcome: Outcome, error: str, end: float) -> ProbeResult:
    eval_count = s.final.get("eval_count")
    if isinstance(eval_count, int):
        tokens, source = eval_count, "usage"
    elif s.stats.deltas or outcome is Outcome.OK:
        tokens, source = s.stats.deltas, "counted"
    else:
        tokens, source = None, None
    if outcome is Outcome.OK and target.check_output:
        reason = job.check(s.stats.output)
        if reason:
            outcome, error = Outcome.WRONG_OUTPUT, reason
    prompt_count = s.final.get("prompt_eval_count")
    return finish(
        target, job, rendered.prompt_hash, started_at, outcome, error=error,
        http_status=status,
        input_tokens=prompt_count if isinstance(prompt_count, int) else None,
        retry_after_s=retry_after(headers) if status == 429 else None,
        served_model=s.served_model,
        node=node_of(headers) if headers else None,
        details=_server_details(s.final),
        **s.stats.fields(clock, end, tokens, source),
    )


KIND = ProbeKind(
    name="ollama",
    run=run,
    requests=frozenset({CHAT}),
    url_hint="the Ollama service root, e.g. http://127.0.0.1:11434",
)
