"""OpenAI-compatible streaming probe (kind `openai`): /chat/completions and /completions over SSE.

Sends `stream: true` with `stream_options.include_usage`; a server that rejects the latter with
a 400 is retried once without it (before measuring) and remembered. Timings on perf_counter,
from the request being sent: first byte (headers), first *generated* token (never the
role-only opening chunk), last token, terminal event. A stream is complete only at `[DONE]`
or, for servers that omit it, EOF after a finish_reason.
"""

from __future__ import annotations

import json
from typing import Any

from monitor.core import kinds
from monitor.core.jobs import COMPLETION, EMBEDDING, Job, Rendered
from monitor.core.result import TOKENS_COUNTED, TOKENS_REPORTED, Outcome, ProbeResult
from monitor.core.target import Target
from probes import embeddings, shape
from probes.base import (
    ProbeKind,
    auth_headers,
    error_message,
    finish,
    node_of,
    request_id_of,
    retry_after,
)
from probes.session import TargetSession
from probes.shape import ProtocolError, parse_json
from probes.streaming import Exchange, SSEDecoder, StreamError, stream_post

NO_STREAM_OPTIONS = "no-stream-options"


def request_body(job: Job, rendered: Rendered, model: str, *, stream_options: bool
                 ) -> dict[str, Any]:
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

    decoder = ChatDecoder(completion=job.request == COMPLETION)
    x = await stream_post(session, url, payload, headers, job, decoder)
    return _result(target, job, rendered, x, decoder)


class ChatDecoder(SSEDecoder):
    """OpenAI's streamed chunks: `{choices: [{index, delta: {role, content, reasoning_content,
    tool_calls}, finish_reason}], usage, model, system_fingerprint}` (`text` instead of
    `delta` for /completions), `{"error": {...}}` inside the stream, then `data: [DONE]`."""

    def __init__(self, *, completion: bool) -> None:
        super().__init__()
        self.completion = completion
        self.usage_out: int | None = None
        self.usage_in: int | None = None
        self.served_model: str | None = None
        self.fingerprint: str | None = None

    def event(self, data: str, now: float) -> bool:
        if data == "[DONE]":
            return True
        try:
            chunk = parse_json(data)
        except ValueError:
            # Tolerate gateways that put several JSON chunks in one event, one per line.
            lines = [line for line in data.split("\n") if line.strip()]
            if len(lines) > 1:
                return any([self.event(line, now) for line in lines])
            raise ProtocolError(f"undecodable stream event: {data[:60]!r}") from None
        if not isinstance(chunk, dict):
            raise shape.wrong(("stream event",), chunk, "an object")
        if chunk.get("error"):
            raise StreamError(error_message(data), chunk["error"])
        if self.served_model is None:
            self.served_model = shape.text_or_none(chunk.get("model"))
        if self.fingerprint is None:
            self.fingerprint = shape.text_or_none(chunk.get("system_fingerprint"))
        usage = chunk.get("usage")
        if usage is not None:
            usage = shape.obj(usage, ("usage",))
            out = shape.opt_count(usage, "completion_tokens", ("usage",))
            if out is not None:
                self.usage_out = out
                self.stats.usage(now, out)
            into = shape.opt_count(usage, "prompt_tokens", ("usage",))
            self.usage_in = self.usage_in if into is None else into
        choices = chunk.get("choices")
        if choices is None:
            if usage is None:
                raise ProtocolError("stream chunk without choices or usage")
            return False
        if not isinstance(choices, list):
            raise shape.wrong(("choices",), choices, "a list")
        for i, choice in enumerate(choices):
            if not isinstance(choice, dict):
                raise shape.wrong(("choices", i), choice, "an object")
            self._choice(choice, i, now)
        return False

    def _choice(self, choice: dict[str, Any], i: int, now: float) -> None:
        # Written out rather than through probes.shape helpers: this runs for every token.
        if self.completion:
            piece = choice.get("text")
            if piece is not None and not isinstance(piece, str):
                raise shape.wrong(("choices", i, "text"), piece, "a string")
            weight = len(piece) if piece else 0
        else:
            delta = choice.get("delta")
            if delta is None:
                delta = {}
            elif not isinstance(delta, dict):
                raise shape.wrong(("choices", i, "delta"), delta, "an object")
            piece = delta.get("content")
            if piece is not None and not isinstance(piece, str):
                raise shape.wrong(("choices", i, "delta", "content"), piece, "a string")
            weight = len(piece) if piece else 0
            if piece is None or len(delta) > 1:  # more than content: reasoning, tool calls
                weight = generated_length(delta, weight, i)
        if weight:
            self.stats.token(now, piece, weight)
        reason = choice.get("finish_reason")
        if reason is not None:
            if not isinstance(reason, str):
                raise shape.wrong(("choices", i, "finish_reason"), reason, "a string")
            if reason == "error":
                # OpenRouter ends a stream that failed mid-generation with finish_reason "error"
                # (docs: api-reference/streaming, "Handling errors during streaming").
                raise StreamError("finish_reason: error")
            if reason:
                self.finished = True
                self.stats.finish(now)


def generated_length(delta: dict[str, Any], content: int, i: int) -> int:
    """Characters a chat delta generated, given its content's: plus reasoning
    (`reasoning_content` as DeepSeek, SGLang and older vLLM name it, `reasoning` as newer vLLM
    and OpenRouter do) and tool-call names and arguments. Zero for a role-only or empty delta."""
    at = ("choices", i, "delta")
    # Some vLLM versions send the same reasoning text under both names: count it once.
    n = content + max(len(shape.opt_str(delta, "reasoning_content", at) or ""),
                      len(shape.opt_str(delta, "reasoning", at) or ""))
    calls = shape.opt_list(delta, "tool_calls", at)
    if calls is not None:
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                for key in ("name", "arguments"):
                    if isinstance(function.get(key), str):
                        n += len(function[key])
        n = max(n, 1)  # a tool-call delta is generated output even when it carries no text
    return n


def _result(target: Target, job: Job, rendered: Rendered, x: Exchange,
            d: ChatDecoder) -> ProbeResult:
    s = d.stats
    if d.usage_out is not None:
        tokens, source = d.usage_out, TOKENS_REPORTED
    elif s.deltas or x.outcome is Outcome.OK or d.done:
        tokens, source = s.deltas, TOKENS_COUNTED
    else:
        tokens, source = None, None
    request_id = request_id_of(x.headers) if x.headers else None
    return finish(
        target, job, rendered.prompt_hash, x.started_at, x.outcome,
        error=x.error,
        output=s.output,
        http_status=x.status,
        input_tokens=d.usage_in,
        **s.fields(x.clock, x.end, tokens, source),
        retry_after_s=retry_after(x.headers) if x.status == 429 else None,
        served_model=d.served_model,
        system_fingerprint=d.fingerprint,
        node=node_of(x.headers) if x.headers else None,
        details={"request_id": request_id} if request_id else {},
    )


KIND = ProbeKind.of(kinds.KINDS[kinds.OPENAI], run)
