"""One chat completion with the parameters a contract check sends, read back in full (kind
`openai` only): the answer text, the tool calls (probes.toolcalls), `finish_reason`, usage,
logprobs and reasoning, streamed (`stream: true`, through the same SSE reader as the timed
probes) or not.

The request body is the caller's (monitor.core.contract builds it); this module only sends it
and reads what came back. Anything a network does wrong becomes an outcome or a field of
`Answer`, never an exception. Error texts are scrubbed of the target's secrets and cut here
(monitor.core.secrets); `Answer.scrubbed` scrubs what else the network wrote (answers, call
names, arguments) before the contract layer grades or keeps any of it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from monitor.core.checks import MinLength
from monitor.core.jobs import CHAT, Job
from monitor.core.result import ERROR_MAX_CHARS, Outcome
from monitor.core.secrets import cut, scrub
from monitor.core.target import Target
from probes import shape
from probes.account import error_outcome
from probes.base import auth_headers, error_message, status_outcome
from probes.oneshot import request_once
from probes.openai import ChatDecoder
from probes.session import TargetSession
from probes.shape import ProtocolError, parse_json
from probes.streaming import stream_post
from probes.toolcalls import ToolCall, ToolCallMerger, message_calls


@dataclass(frozen=True, slots=True)
class Answer:
    """What one contract request got back."""

    outcome: Outcome  # ok: a whole, well-formed answer (whatever it says)
    http_status: int | None
    error: str  # scrubbed of the target's secrets, cut
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    usage_in: int | None = None
    usage_out: int | None = None
    deltas: int = 0  # streamed: chunks that carried generated output
    generated_chars: int = 0  # content, reasoning and tool-call text, all of it
    reasoning_chars: int = 0
    logprobs: int = 0  # tokens that came with a logprob
    top_logprobs: int | None = None  # the fewest alternatives any of them had
    duration_s: float = 0.0

    def scrubbed(self, secrets: tuple[str | None, ...]) -> Answer:
        """The answer with every secret removed from what the network wrote."""
        calls = tuple(dataclasses.replace(c, name=scrub(c.name, secrets),
                                          arguments=scrub(c.arguments, secrets))
                      for c in self.tool_calls)
        return dataclasses.replace(self, content=scrub(self.content, secrets),
                                   tool_calls=calls, error=_error(self.error, secrets))


def _error(text: str, secrets: tuple[str | None, ...]) -> str:
    return cut(text, ERROR_MAX_CHARS, secrets, one_line=True) if text else ""


def _job(deadline_s: float) -> Job:
    # stream_post reads the deadline and the stall limit from a Job; nothing else of it.
    return Job(name="contract", version=1, request=CHAT, description="", system="", user="",
               max_tokens=0, deadline_s=deadline_s, stall_s=deadline_s, check=MinLength(0),
               reference_answer="")


class ContractDecoder(ChatDecoder):
    """The chat decoder, also keeping tool calls, finish_reason, logprobs and reasoning."""

    def __init__(self) -> None:
        super().__init__(completion=False)
        self.merger = ToolCallMerger()
        self.finish_reason: str | None = None
        self.reasoning_chars = 0
        self.logprobs = 0
        self.top_logprobs: int | None = None

    def _choice(self, choice: dict[str, Any], i: int, now: float) -> None:
        super()._choice(choice, i, now)
        if i != 0 and choice.get("index", i) != 0:
            return  # n = 1: only the first choice is graded
        at = ("choices", i, "delta")
        delta = shape.opt_obj(choice, "delta", ("choices", i)) or {}
        self.merger.feed(delta.get("tool_calls"), (*at, "tool_calls"))
        self.reasoning_chars += max(len(shape.opt_str(delta, "reasoning_content", at) or ""),
                                    len(shape.opt_str(delta, "reasoning", at) or ""))
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.finish_reason = reason
        self._logprobs(choice, ("choices", i))

    def _logprobs(self, choice: dict[str, Any], path: shape.Path) -> None:
        n, fewest = count_logprobs(choice, path)
        self.logprobs += n
        if fewest is not None:
            self.top_logprobs = fewest if self.top_logprobs is None else min(
                self.top_logprobs, fewest)


def count_logprobs(choice: dict[str, Any], path: shape.Path) -> tuple[int, int | None]:
    """(tokens with a logprob, the fewest `top_logprobs` alternatives of any) in a choice's
    `logprobs.content` (OpenAI's ChoiceLogprobs)."""
    logprobs = shape.opt_obj(choice, "logprobs", path)
    if not logprobs:
        return 0, None
    content = shape.opt_list(logprobs, "content", (*path, "logprobs")) or []
    fewest: int | None = None
    n = 0
    for item in content:
        if isinstance(item, dict) and isinstance(item.get("logprob"), int | float):
            n += 1
            top = item.get("top_logprobs")
            size = len(top) if isinstance(top, list) else 0
            fewest = size if fewest is None else min(fewest, size)
    return n, fewest


async def ask(target: Target, session: TargetSession, body: dict[str, Any], *,
              deadline_s: float) -> Answer:
    """Send `body` (its `stream` says how) to the target's /chat/completions."""
    url = target.base_url.rstrip("/") + "/chat/completions"
    headers = auth_headers(target)
    headers["Content-Type"] = "application/json"
    payload = json.dumps({**body, "model": target.model}).encode()
    secrets = target.secrets()
    if body.get("stream"):
        headers["Accept"] = "text/event-stream"
        decoder = ContractDecoder()
        x = await stream_post(session, url, payload, headers, _job(deadline_s), decoder)
        s = decoder.stats
        return Answer(
            x.outcome, x.status, _error(x.error, secrets), content=s.output,
            tool_calls=decoder.merger.calls(), finish_reason=decoder.finish_reason,
            usage_in=decoder.usage_in, usage_out=decoder.usage_out, deltas=s.deltas,
            generated_chars=s.total_weight, reasoning_chars=decoder.reasoning_chars,
            logprobs=decoder.logprobs, top_logprobs=decoder.top_logprobs,
            duration_s=x.end - x.clock.t0)
    reply = await request_once(session, "POST", url, headers=headers, data=payload,
                               deadline_s=deadline_s)
    took = reply.end - reply.clock.t0
    if reply.outcome is not None:
        return Answer(reply.outcome, reply.status, _error(reply.error, secrets), duration_s=took)
    if reply.status is None or reply.status >= 300:
        outcome, error = status_outcome(reply.status or 0, reply.body)
        return Answer(outcome, reply.status, _error(error, secrets), duration_s=took)
    if reply.oversized:
        return Answer(Outcome.MALFORMED, reply.status, "response exceeded the size cap",
                      duration_s=took)
    answer = read_whole(reply.body)
    return dataclasses.replace(answer, http_status=reply.status, duration_s=took,
                               error=_error(answer.error, secrets))


def read_whole(body: bytes) -> Answer:
    """A 200 `chat.completion` body as an Answer."""
    try:
        value = parse_json(body)
    except ValueError:
        return Answer(Outcome.MALFORMED, 200, "2xx body is not JSON")
    if isinstance(value, dict) and value.get("error"):
        return Answer(error_outcome(value["error"]), 200,
                      f"error in 200 response: {error_message(body)}")
    try:
        choice, message = shape.first_choice(value)
        at = ("choices", 0, "message")
        content = shape.opt_str(message, "content", at) or ""
        reasoning = max(len(shape.opt_str(message, "reasoning_content", at) or ""),
                        len(shape.opt_str(message, "reasoning", at) or ""))
        calls = message_calls(message, at)
        usage = shape.opt_obj(value, "usage") or {}
        n, fewest = count_logprobs(choice, ("choices", 0))
        reason = shape.opt_str(choice, "finish_reason", ("choices", 0))
        chars = len(content) + reasoning + sum(len(c.name) + len(c.arguments) for c in calls)
        return Answer(Outcome.OK, 200, "", content=content, tool_calls=calls,
                      finish_reason=reason,
                      usage_in=shape.opt_count(usage, "prompt_tokens", ("usage",)),
                      usage_out=shape.opt_count(usage, "completion_tokens", ("usage",)),
                      generated_chars=chars, reasoning_chars=reasoning, logprobs=n,
                      top_logprobs=fewest)
    except ProtocolError as exc:
        return Answer(Outcome.MALFORMED, 200, str(exc))
