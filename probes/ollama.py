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

import json
import time
from collections.abc import Callable
from typing import Any

from monitor.core import kinds
from monitor.core.jobs import Job, Rendered
from monitor.core.result import TOKENS_COUNTED, TOKENS_REPORTED, Outcome, ProbeResult
from monitor.core.target import Target
from probes import shape
from probes.base import ProbeKind, auth_headers, error_message, finish, node_of, retry_after
from probes.session import TargetSession
from probes.shape import ProtocolError, parse_json
from probes.streaming import Exchange, Verdict, apply_messages, decode_message, stream_post
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


async def run(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    rendered = job.render()
    payload = json.dumps(request_body(job, rendered, target.model)).encode()
    headers = auth_headers(target)
    headers["Content-Type"] = "application/json"
    headers["Accept"] = "application/x-ndjson"
    decoder = NDJSONDecoder()
    x = await stream_post(session, chat_url(target.base_url), payload, headers, job, decoder)
    return _result(target, job, rendered, x, decoder)


class NDJSONDecoder:
    """Ollama's NDJSON lines; an object per line, the last with `done: true`."""

    expects = "an NDJSON stream"
    documents: tuple[str, ...] = ("text/html",)

    def __init__(self) -> None:
        self.stats = TokenStats()
        self.done = False
        self.final: dict[str, Any] = {}
        self.served_model: str | None = None
        self.describe_error: Callable[[bytes], str] = error_message
        self._buf = b""

    def feed(self, chunk: bytes, now: float) -> Verdict | None:
        *lines, self._buf = (self._buf + chunk).split(b"\n")
        return apply_messages(self, [line for line in lines if line.strip()], self._object, now)

    def end(self) -> Verdict:
        rest, self._buf = self._buf, b""
        if rest.strip():
            # A last line without its newline: complete JSON is fine, half a line a cut stream.
            try:
                parse_json(rest)
            except ValueError:
                return Outcome.DISCONNECT, "stream cut mid-line before the final done:true object"
            verdict = apply_messages(self, [rest], self._object, time.perf_counter())
            if verdict is not None:
                return verdict
        if self.stats.nbytes == 0:
            return Outcome.DISCONNECT, "empty response body (no NDJSON lines, no done:true)"
        return Outcome.DISCONNECT, "stream ended before the final done:true object"

    def _object(self, line: bytes, now: float) -> bool:
        """Apply one NDJSON line; True at the final `done: true` object."""
        obj = decode_message(line, "NDJSON line", error_message)
        done = shape.opt_bool(obj, "done")
        if done is None:
            raise ProtocolError("NDJSON object without the 'done' field")
        self.served_model = self.served_model or shape.text_or_none(obj.get("model"))
        message = shape.opt_obj(obj, "message")
        if message:
            piece = shape.opt_str(message, "content", ("message",))
            thinking = shape.opt_str(message, "thinking", ("message",))
            if piece or thinking or shape.opt_list(message, "tool_calls", ("message",)):
                # weighed by all the text it generated, thinking included (streamstats.py)
                self.stats.token(now, piece, len(piece or "") + len(thinking or "") or 1)
        elif not done:
            raise ProtocolError("stream object without 'message'")
        if done:
            self.stats.finish(now)
            final: dict[str, Any] = {k: shape.opt_count(obj, k) for k in SERVER_FIELDS}
            final["done_reason"] = shape.opt_str(obj, "done_reason")
            self.final = {k: v for k, v in final.items() if v is not None}
        return done


def _server_details(final: dict[str, Any]) -> dict[str, Any]:
    """Ollama's own counters (ns) and the rates derived from them, beside our timings."""
    details = dict(final)
    count, dur = final.get("eval_count"), final.get("eval_duration")
    if count is not None and dur:
        details["server_tokens_per_s"] = count / (dur / 1e9)
    if final.get("total_duration") is not None:
        details["server_total_s"] = final["total_duration"] / 1e9
    return details


def _result(target: Target, job: Job, rendered: Rendered, x: Exchange,
            d: NDJSONDecoder) -> ProbeResult:
    eval_count = d.final.get("eval_count")
    if eval_count is not None:
        tokens, source = eval_count, TOKENS_REPORTED
    elif d.stats.deltas or x.outcome is Outcome.OK:
        tokens, source = d.stats.deltas, TOKENS_COUNTED
    else:
        tokens, source = None, None
    return finish(
        target, job, rendered.prompt_hash, x.started_at, x.outcome, error=x.error,
        output=d.stats.output,
        http_status=x.status,
        input_tokens=d.final.get("prompt_eval_count"),
        retry_after_s=retry_after(x.headers) if x.status == 429 else None,
        served_model=d.served_model,
        node=node_of(x.headers) if x.headers else None,
        details=_server_details(d.final),
        **d.stats.fields(x.clock, x.end, tokens, source),
    )


KIND = ProbeKind.of(kinds.KINDS[kinds.OLLAMA], run)
