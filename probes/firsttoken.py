"""One chat completion's first output token, for the fingerprint (kind `openai` only).

The request is the prompt verbatim (no nonce), `temperature: 0`, `max_tokens: 1`,
`stream: false`, and when asked `logprobs: true, top_logprobs: K`. The answer is OpenAI's
`chat.completion` object; its `choices[0].logprobs.content[0]` is
`{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}, ...]}`
(vllm/entrypoints/openai/protocol.py: ChatCompletionLogProbs, ChatCompletionLogProbsContent;
filled by vllm/entrypoints/openai/serving_chat.py, _create_chat_logprobs). A server that
drops logprobs answers `"logprobs": null`: the token alone is then the observation.
Anything else is an outcome, never an exception. Tokens are scrubbed of the key and cut
before anything stores or shows them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from monitor.core.result import ERROR_MAX_CHARS, Outcome
from monitor.core.secrets import cut
from monitor.core.target import Target
from probes import shape
from probes.account import error_outcome
from probes.base import auth_headers, error_message, status_outcome
from probes.oneshot import request_once
from probes.session import TargetSession
from probes.shape import ProtocolError, parse_json

TOKEN_MAX_CHARS = 64  # a first token is a few characters; what is longer is cut

@dataclass(frozen=True, slots=True)
class FirstToken:
    outcome: Outcome
    token: str | None  # the first output token (ok only): the content when no logprobs
    top: tuple[tuple[str, float], ...] | None  # (token, logprob) by rank; None: not sent
    input_tokens: int | None
    output_tokens: int | None
    error: str  # scrubbed of the key and cut


def request_body(model: str, prompt: str, *, top_logprobs: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}],
                            "temperature": 0, "max_tokens": 1, "stream": False}
    if top_logprobs:
        body.update(logprobs=True, top_logprobs=top_logprobs)
    return body


async def first_token(target: Target, session: TargetSession, prompt: str, *,
                      top_logprobs: int = 0, deadline_s: float = 30.0) -> FirstToken:
    headers = auth_headers(target)
    headers["Content-Type"] = "application/json"
    payload = json.dumps(request_body(target.model, prompt, top_logprobs=top_logprobs)).encode()
    reply = await request_once(session, "POST",
                               target.base_url.rstrip("/") + "/chat/completions",
                               headers=headers, data=payload, deadline_s=deadline_s)
    secrets = target.secrets()
    if reply.outcome is not None:
        return FirstToken(reply.outcome, None, None, None, None, _error(reply.error, secrets))
    if reply.status is None or reply.status >= 300:
        outcome, error = status_outcome(reply.status or 0, reply.body)
        return FirstToken(outcome, None, None, None, None, _error(error, secrets))
    if reply.oversized:
        return FirstToken(Outcome.MALFORMED, None, None, None, None,
                          "response exceeded the size cap")
    got = read_first_token(reply.body)
    top = None if got.top is None else tuple((_clean(t, secrets), lp) for t, lp in got.top)
    return FirstToken(got.outcome, None if got.token is None else _clean(got.token, secrets),
                      top, got.input_tokens, got.output_tokens, _error(got.error, secrets))


def _error(text: str, secrets: tuple[str | None, ...]) -> str:
    return cut(text, ERROR_MAX_CHARS, secrets, one_line=True) if text else ""


def _clean(token: str, secrets: tuple[str | None, ...]) -> str:
    """A token as it may be stored and shown: scrubbed of the key, then cut (a network
    that answers a long text instead of one token must not fill the store)."""
    return cut(token, TOKEN_MAX_CHARS, secrets)


def read_first_token(body: bytes) -> FirstToken:
    """The first token (and its top logprobs, when sent) of a 200 `chat.completion` body."""
    try:
        value = parse_json(body)
    except ValueError:
        return FirstToken(Outcome.MALFORMED, None, None, None, None, "2xx body is not JSON")
    if isinstance(value, dict) and value.get("error"):
        return FirstToken(error_outcome(value["error"]), None, None, None, None,
                          f"error in 200 response: {error_message(body)}")
    try:
        choice, message = shape.first_choice(value)
        text = shape.opt_str(message, "content", ("choices", 0, "message")) or ""
        token, top = _logprobs(choice)
        usage = shape.opt_obj(value, "usage") or {}
        tokens_in = shape.opt_count(usage, "prompt_tokens", ("usage",))
        tokens_out = shape.opt_count(usage, "completion_tokens", ("usage",))
    except ProtocolError as exc:
        return FirstToken(Outcome.MALFORMED, None, None, None, None, str(exc))
    return FirstToken(Outcome.OK, text if token is None else token, top, tokens_in,
                      tokens_out, "")


def _logprobs(choice: dict[str, Any]) -> tuple[str | None, tuple[tuple[str, float], ...] | None]:
    at: shape.Path = ("choices", 0, "logprobs")
    logprobs = shape.opt_obj(choice, "logprobs", ("choices", 0))
    if logprobs is None:
        return None, None
    content = shape.opt_list(logprobs, "content", at)
    if not content:
        return None, None
    first = shape.obj(content[0], (*at, "content", 0))
    token = shape.opt_str(first, "token", (*at, "content", 0))
    entries = shape.opt_list(first, "top_logprobs", (*at, "content", 0)) or []
    top = []
    for i, raw in enumerate(entries):
        path = (*at, "content", 0, "top_logprobs", i)
        entry = shape.obj(raw, path)
        name = shape.opt_str(entry, "token", path)
        logprob = entry.get("logprob")
        if name is None or isinstance(logprob, bool) or not isinstance(logprob, int | float) \
                or not math.isfinite(logprob) or logprob > 1e-6:
            raise ProtocolError(f"{shape.where(path)}: expected a token and a logprob <= 0")
        top.append((name, float(logprob)))
    return token, tuple(top) if top else None
