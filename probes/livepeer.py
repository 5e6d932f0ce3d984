"""Livepeer AI gateway pipelines (kind `livepeer`): `POST {gateway}/llm` and `/text-to-image`.

LLM (ai-runner `runner/src/runner/routes/llm.py`): JSON `{model, messages, max_tokens,
temperature, stream: true}`; the SSE stream carries either the current OpenAI-like chunks
`{"id", "model", "created", "usage": {prompt_tokens, completion_tokens, total_tokens},
"choices": [{"index", "finish_reason", "delta": {"role", "content"}}]}` (`usage`, a running
count on every chunk, was `tokens_used` before 2025-01-28) or the older `{"chunk": "..."}`
events closed by `{"tokens_used": N}`. The runner ends with `data: [DONE]`; the go-livepeer
gateway in front of it stops after the `finish_reason` chunk without `[DONE]`
(server/ai_mediaserver.go `LLM`): both are complete. A `"done": true` flag is accepted too;
failures are `data: {"error": "..."}` in the stream, `{"error": {"message"}}` from the gateway.
Text-to-image: JSON `{model_id, prompt, width, height, num_inference_steps, guidance_scale,
safety_check, seed}` -> `{"images": [{"url", "seed", "nsfw"}]}`.
"""

from __future__ import annotations

import json
from typing import Any

from monitor.core import kinds
from monitor.core.jobs import IMAGE, Job, Rendered
from monitor.core.kindsettings import LivepeerSettings
from monitor.core.result import TOKENS_COUNTED, TOKENS_REPORTED, Outcome, ProbeResult
from monitor.core.target import Target
from probes import shape
from probes.base import (
    ProbeKind,
    auth_headers,
    error_message,
    finish,
    node_of,
    retry_after,
    status_outcome,
)
from probes.oneshot import Reply, request_once
from probes.session import TargetSession
from probes.shape import ProtocolError, parse_json
from probes.streaming import SSEDecoder, decode_message, stream_post


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
    """The JSON a text-to-image job sends, sizes from the job's settings
    (monitor.core.kindsettings.LivepeerSettings)."""
    st = kinds.settings_of(LivepeerSettings, job)
    return {"model_id": model, "prompt": rendered.prompt, "width": st.width,
            "height": st.height, "num_inference_steps": st.num_inference_steps,
            "guidance_scale": st.guidance_scale, "safety_check": st.safety_check,
            "seed": job.seed}


def error_text(body: bytes) -> str:
    """Livepeer's error shapes: runner `{"detail": {"msg"}}`, gateway `{"error": ...}`, text."""
    try:
        value = parse_json(body)
    except ValueError:
        return error_message(body)
    if isinstance(value, dict):
        detail = value.get("detail")
        if isinstance(detail, dict) and detail.get("msg"):
            return str(detail["msg"])
    return error_message(body)


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
    d = LLMDecoder()
    x = await stream_post(session, _url(target, "/llm"), payload, headers, job, d)
    # The gateway's Go struct always carries `usage`: all zeros when the runner sent none.
    if d.usage_out is not None and (d.usage_out > 0 or not d.stats.deltas):
        tokens, source = d.usage_out, TOKENS_REPORTED
    elif d.stats.deltas or x.outcome is Outcome.OK:
        tokens, source = d.stats.deltas, TOKENS_COUNTED
    else:
        tokens, source = None, None
    return finish(
        target, job, rendered.prompt_hash, x.started_at, x.outcome, error=x.error,
        output=d.stats.output,
        http_status=x.status, input_tokens=d.usage_in,
        retry_after_s=retry_after(x.headers) if x.status == 429 else None,
        served_model=d.served_model, node=node_of(x.headers) if x.headers else None,
        details=d.details(),
        **d.stats.fields(x.clock, x.end, tokens, source),
    )


class LLMDecoder(SSEDecoder):
    """Either Livepeer stream format, told apart by its first event."""

    def __init__(self) -> None:
        super().__init__()
        self.describe_error = error_text
        self.fmt: str | None = None  # "choices" (current) or "chunk" (legacy)
        self.usage_out: int | None = None
        self.usage_in: int | None = None
        self.legacy_used: int | None = None  # legacy {"tokens_used": N}: meaning undocumented
        self.served_model: str | None = None

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.fmt:
            details["stream_format"] = self.fmt
        if self.legacy_used is not None:
            details["tokens_used"] = self.legacy_used
        return details

    def event(self, data: str, now: float) -> bool:
        """Apply one SSE data payload in either format; True when the stream is over."""
        if data.strip() == "[DONE]":
            return True
        obj = decode_message(data, "stream event", error_text)
        known = False
        # The runner's running count rides on every chunk: `usage` since 2025-01-28, `tokens_used`
        # before (ai-runner runner/src/runner/pipelines/llm.py, LLMPipeline.generate); the
        # go-livepeer gateway passes it through (server/ai_process.go, handleSSEStream).
        key = "usage" if obj.get("usage") is not None else "tokens_used"
        if isinstance(obj.get(key), dict):
            used = obj[key]
            out = shape.opt_count(used, "completion_tokens", (key,))
            if out is not None:
                self.usage_out = out
                self.stats.usage(now, out)
            into = shape.opt_count(used, "prompt_tokens", (key,))
            self.usage_in = self.usage_in if into is None else into
            known = True
        elif obj.get(key) is not None:  # legacy: the closing {"tokens_used": N}
            self.legacy_used, known = shape.opt_count(obj, key), True
        if "chunk" in obj:
            known = True
            self.fmt = self.fmt or "chunk"
            piece = obj["chunk"]
            if not isinstance(piece, str):
                raise shape.wrong(("chunk",), piece, "a string")
            if piece:
                self.stats.token(now, piece)
        choices = shape.opt_list(obj, "choices")
        if choices is not None:
            known = True
            self.fmt = self.fmt or "choices"
            self.served_model = self.served_model or shape.text_or_none(obj.get("model"))
            for i, choice in enumerate(choices):
                self._choice(shape.obj(choice, ("choices", i)), ("choices", i), now)
        if shape.opt_bool(obj, "done") is True:
            return True
        if not known and "done" not in obj:
            raise ProtocolError("stream event with neither choices, chunk, tokens_used nor done")
        return False

    def _choice(self, choice: dict[str, Any], path: shape.Path, now: float) -> None:
        key = "delta" if choice.get("delta") is not None else "message"
        delta = shape.opt_obj(choice, key, path) or {}
        piece = shape.opt_str(delta, "content", (*path, key))
        if piece:
            self.stats.token(now, piece)
        if shape.opt_str(choice, "finish_reason", path):
            self.finished = True
            self.stats.finish(now)


async def _image(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    rendered = job.render()
    headers = auth_headers(target)
    headers["Content-Type"] = "application/json"
    payload = json.dumps(image_body(job, rendered, target.model)).encode()
    reply = await request_once(session, "POST", _url(target, "/text-to-image"),
                               headers=headers, data=payload, deadline_s=job.deadline_s)
    details: dict[str, Any] = {}
    outcome, error, images = reply.outcome, reply.error, None
    if outcome is None:
        outcome, error, images, details = _judge_image(reply)
    return finish(target, job, rendered.prompt_hash, reply.started_at, outcome, error=error,
                  output=images, details=details, **reply.fields())


def _judge_image(reply: Reply) -> tuple[Outcome, str, list[Any] | None, dict[str, Any]]:
    """(outcome, error, the images to check, details) of a whole text-to-image answer."""
    if reply.status is None or reply.status >= 300:
        return *status_outcome(reply.status or 0, reply.body, error_text), None, {}
    if reply.oversized:
        return Outcome.MALFORMED, "response exceeded the size cap", None, {}
    try:
        value = parse_json(reply.body)
    except ValueError:
        return Outcome.MALFORMED, "2xx body is not JSON", None, {}
    if not isinstance(value, dict):
        return Outcome.MALFORMED, "response is not a JSON object", None, {}
    if value.get("error"):
        return Outcome.HTTP_ERROR, f"error in 200 response: {error_text(reply.body)}", None, {}
    images = value.get("images")
    if not isinstance(images, list) or not all(
        isinstance(i, dict) and isinstance(i.get("url"), str) for i in images
    ):
        return (Outcome.MALFORMED, "not a text-to-image response (images[].url missing)",
                None, {})
    details: dict[str, Any] = {"images": len(images),
                               "nsfw": sum(1 for i in images if i.get("nsfw") is True)}
    seed = images[0].get("seed") if images else None
    if isinstance(seed, int) and not isinstance(seed, bool) and abs(seed) <= shape.MAX_COUNT:
        details["seed"] = seed
    return Outcome.OK, "", images, details


KIND = ProbeKind.of(kinds.KINDS[kinds.LIVEPEER], run)
