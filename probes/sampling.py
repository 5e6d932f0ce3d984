"""One sampled chat completion's text, for model equality testing (kind `openai` only).

Unlike the timed jobs this asks for a *sample*: the prompt verbatim (no nonce: another prompt
is another distribution), the stated temperature and max_tokens, no seed, `stream: false`.
The answer is OpenAI's `chat.completion` object, `{"choices": [{"message": {"content"}}],
"usage": {"prompt_tokens", "completion_tokens"}}`, read with the same shape checks as the
probes; anything else is an outcome, never an exception.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from monitor.core.result import ERROR_MAX_CHARS, Outcome
from monitor.core.secrets import cut, scrub
from monitor.core.target import Target
from probes import shape
from probes.account import error_outcome
from probes.base import auth_headers, error_message, status_outcome
from probes.oneshot import request_once
from probes.session import TargetSession
from probes.shape import ProtocolError, parse_json


@dataclass(frozen=True, slots=True)
class Completion:
    outcome: Outcome
    text: str | None  # the completion (ok only; "" is a valid, empty completion)
    input_tokens: int | None
    output_tokens: int | None
    error: str  # scrubbed of the key and cut


def request_body(model: str, prompt: str, *, temperature: float, max_tokens: int
                 ) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}],
            "temperature": temperature, "max_tokens": max_tokens, "stream": False}


async def complete(target: Target, session: TargetSession, prompt: str, *, temperature: float,
                   max_tokens: int, deadline_s: float) -> Completion:
    headers = auth_headers(target)
    headers["Content-Type"] = "application/json"
    payload = json.dumps(request_body(target.model, prompt, temperature=temperature,
                                      max_tokens=max_tokens)).encode()
    reply = await request_once(session, "POST",
                               target.base_url.rstrip("/") + "/chat/completions",
                               headers=headers, data=payload, deadline_s=deadline_s)
    secrets = target.secrets()
    if reply.outcome is not None:
        return Completion(reply.outcome, None, None, None, _error(reply.error, secrets))
    if reply.status is None or reply.status >= 300:
        outcome, error = status_outcome(reply.status or 0, reply.body)
        return Completion(outcome, None, None, None, _error(error, secrets))
    if reply.oversized:
        return Completion(Outcome.MALFORMED, None, None, None, "response exceeded the size cap")
    done = read_completion(reply.body)
    # The network wrote the text and the error: scrubbed of the key before anything keeps them
    return Completion(done.outcome, None if done.text is None else scrub(done.text, secrets),
                      done.input_tokens, done.output_tokens, _error(done.error, secrets))


def _error(text: str, secrets: tuple[str | None, ...]) -> str:
    return cut(text, ERROR_MAX_CHARS, secrets, one_line=True) if text else ""


def read_completion(body: bytes) -> Completion:
    """The text and token counts of a 200 `chat.completion` body."""
    try:
        value = parse_json(body)
    except ValueError:
        return Completion(Outcome.MALFORMED, None, None, None, "2xx body is not JSON")
    if isinstance(value, dict) and value.get("error"):
        return Completion(error_outcome(value["error"]), None, None, None,
                          f"error in 200 response: {error_message(body)}")
    try:
        _, message = shape.first_choice(value)
        text = shape.opt_str(message, "content", ("choices", 0, "message")) or ""
        usage = shape.opt_obj(value, "usage") or {}
        tokens_in = shape.opt_count(usage, "prompt_tokens", ("usage",))
        tokens_out = shape.opt_count(usage, "completion_tokens", ("usage",))
    except ProtocolError as exc:
        return Completion(Outcome.MALFORMED, None, None, None, str(exc))
    return Completion(Outcome.OK, text, tokens_in, tokens_out, "")
