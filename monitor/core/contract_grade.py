"""Grading the contract checks: a suite item's tool calls against its known answer, and a
parameter's answers into a matrix cell. Pure functions over what the network sent (already
scrubbed of secrets); arguments are validated with the `jsonschema` library against the
schema the request declared (Draft 2020-12, the dialect OpenAI's structured outputs use).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

from monitor.core.contract import (
    CITY_SCHEMA,
    PARAM_MAX_TOKENS,
    STOP_STRING,
    TOP_LOGPROBS,
    Cell,
    Grade,
    Param,
    ToolItem,
)

DETAIL_CHARS = 160


@dataclass(frozen=True, slots=True)
class SeenCall:
    """A call as the network made it (the probe's ToolCall, without wire details)."""

    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Reply:
    """What grading needs of one answer (probes.contract.Answer, seen from the core)."""

    ok: bool  # a whole, well-formed answer
    status: int | None
    error: str
    content: str = ""
    calls: tuple[SeenCall, ...] = ()
    finish_reason: str | None = None
    usage_out: int | None = None
    deltas: int = 0
    generated_chars: int = 0
    reasoning_chars: int = 0
    logprobs: int = 0
    top_logprobs: int | None = None
    stream: bool = False


def shorten(text: str, limit: int = DETAIL_CHARS) -> str:
    """An account for a detail column: one line, at most `limit` characters (the text is
    already scrubbed: monitor.core.secrets)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _same(got: Any, want: Any) -> bool:
    """Arguments equal as JSON values; strings compared without case and outer spaces, and a
    number equal to an integer (250.0 is 250)."""
    if isinstance(want, str):
        return isinstance(got, str) and got.strip().casefold() == want.casefold()
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, int | float):
        return isinstance(got, int | float) and float(got) == float(want)
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(
            _same(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(
            _same(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want)


def grade_tools(item: ToolItem, calls: Sequence[SeenCall]) -> tuple[Grade, str]:
    """The item's grade and what was wrong. The first failing call decides, in OpenRouter's
    order (a name it does not know, then arguments that are not JSON, then a schema
    mismatch); then whether the calls are exactly the known right ones (order free)."""
    if not item.expected:
        if calls:
            return Grade.UNEXPECTED_CALL, shorten(f"called {calls[0].name}({calls[0].arguments})")
        return Grade.OK, ""
    if not calls:
        return Grade.NO_CALL, ""
    declared = item.declared()
    parsed: list[tuple[str, Any]] = []
    for call in calls:
        if call.name not in declared:
            return Grade.UNKNOWN_NAME, shorten(f"called {call.name!r}, declared "
                                           f"{', '.join(sorted(declared))}")
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError as exc:
            return Grade.INVALID_JSON, shorten(f"{call.name}: {exc}: {call.arguments}")
        if not isinstance(args, dict):
            return Grade.INVALID_JSON, shorten(f"{call.name}: arguments are not an object: "
                                           f"{call.arguments}")
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(declared[call.name]).iter_errors(args))
        if error is not None:
            return Grade.SCHEMA_MISMATCH, shorten(f"{call.name}: {error.message}")
        parsed.append((call.name, args))
    left = list(item.expected)
    for name, args in parsed:
        match = next((c for c in left if c.name == name and _same(args, dict(c.arguments))),
                     None)
        if match is None:
            return Grade.WRONG_ARGUMENTS, shorten(f"{name}({json.dumps(args)})")
        left.remove(match)
    if left:
        return Grade.WRONG_ARGUMENTS, shorten(f"{len(parsed)} of {len(item.expected)} calls")
    return Grade.OK, ""


# the simulator's tokens too: words with their leading space, punctuation, runs of spaces
TOKEN_PATTERN = re.compile(r"\s?\w+|\s?[^\w\s]|\s+")


def approx_tokens(text: str) -> int:
    """A token count for a server that reported none (words and punctuation)."""
    return len(TOKEN_PATTERN.findall(text))


def _failed(replies: Sequence[Reply]) -> tuple[Cell, str] | None:
    """rejected (a 4xx naming the parameter's request) or unmeasured, when a request failed."""
    for r in replies:
        if r.ok:
            continue
        if r.status is not None and 400 <= r.status < 500 and r.status not in (401, 402, 403,
                                                                               429):
            return Cell.REJECTED, shorten(r.error)
        return Cell.UNMEASURED, shorten(r.error)
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def grade_param(param: Param, replies: Sequence[Reply]) -> tuple[Cell, str, float | None]:
    """The cell of one parameter from the answers to its requests
    (monitor.core.contract.param_requests), a short account, and a value where one is kept."""
    failed = _failed(replies)
    if failed is not None:
        return failed[0], failed[1], None
    r = replies[0]
    if param is Param.MAX_TOKENS:
        used = r.usage_out if r.usage_out is not None else approx_tokens(r.content)
        said = f"{used} tokens for max_tokens {PARAM_MAX_TOKENS}, finish_reason {r.finish_reason}"
        if used > PARAM_MAX_TOKENS or r.finish_reason != "length":
            return Cell.IGNORED, said, float(used)
        return Cell.HONOURED, said, float(used)
    if param is Param.STOP:
        if STOP_STRING in r.content:
            return Cell.IGNORED, shorten(f"the text contains {STOP_STRING!r}: {r.content}"), None
        return Cell.HONOURED, f"finish_reason {r.finish_reason}", None
    if param is Param.JSON_OBJECT:
        value = _json(r.content)
        if not isinstance(value, dict):
            return Cell.IGNORED, shorten(f"not a JSON object: {r.content}"), None
        return Cell.HONOURED, "", None
    if param is Param.JSON_SCHEMA:
        value = _json(r.content)
        if value is None:
            return Cell.IGNORED, shorten(f"not JSON: {r.content}"), None
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(CITY_SCHEMA).iter_errors(value))
        if error is not None:
            return Cell.IGNORED, shorten(f"schema not obeyed: {error.message}"), None
        return Cell.HONOURED, "", None
    if param is Param.SEED:
        texts = [x.content for x in replies]
        share = max(texts.count(t) for t in texts) / len(texts)
        said = f"{share:.0%} of {len(texts)} identical requests gave the same answer"
        return (Cell.HONOURED if share == 1.0 else Cell.IGNORED), said, share
    if param is Param.LOGPROBS:
        if r.logprobs == 0:
            return Cell.IGNORED, "no logprobs in the answer", None
        if r.top_logprobs is None or r.top_logprobs < TOP_LOGPROBS:
            return Cell.IGNORED, f"top_logprobs {r.top_logprobs} < {TOP_LOGPROBS}", None
        return Cell.HONOURED, f"{r.logprobs} tokens with {r.top_logprobs}+ alternatives", None
    if param is Param.INCLUDE_USAGE:
        if r.usage_out is None:
            return Cell.IGNORED, "no usage in the stream", None
        # a chunk carries at least one token; a token at least one character (or it is a
        # textless stop token: one more)
        if not r.deltas <= r.usage_out <= r.generated_chars + 1:
            return (Cell.IGNORED, f"usage {r.usage_out} tokens for {r.deltas} chunks of "
                    f"{r.generated_chars} characters", float(r.usage_out))
        return Cell.HONOURED, f"usage {r.usage_out} tokens, {r.deltas} chunks", None
    # REASONING: more effort, more reasoning; a model that shows none has no such control
    low, high = replies[0], replies[1]
    if not (low.reasoning_chars or high.reasoning_chars):
        return Cell.NOT_APPLICABLE, "no reasoning in either answer", None
    said = f"reasoning {low.reasoning_chars} characters at low, {high.reasoning_chars} at high"
    if high.reasoning_chars > low.reasoning_chars or (
            low.usage_out is not None and high.usage_out is not None
            and high.usage_out > low.usage_out):
        return Cell.HONOURED, said, None
    return Cell.IGNORED, said, None
