"""The simulator's side of the contract checks: tool calls and the parameters of the matrix,
answered right by a good network, and broken on purpose by the profile's `contract` knobs.

A chat request with `tools`, or with one of the contract prompts (monitor.core.contract), is
answered here: the known right answer, streamed as vLLM streams tool calls (the first fragment
of a call with `id`, `type` and `name`, then `arguments` in pieces, parallel calls under their
own `index`; tests/conformance/servers/vllm.py names the source) or whole
(`message.tool_calls`).

Knobs (`FaultProfile.contract`, comma-separated), each one way a real server breaks the
contract: BREAKS below. `reasoning` makes the model a reasoning one (reasoning text grows with
`reasoning_effort`); every other network has no reasoning control (the cell is not applicable).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from aiohttp import web

from monitor.core.contract import (
    CAPITAL_PROMPT,
    CITY_PROMPT,
    COUNT_PROMPT,
    REASONING_PROMPT,
    STORY_PROMPT,
    SUITES,
    Call,
)
from monitor.core.contract_grade import TOKEN_PATTERN

COMPACT = (",", ":")

BREAKS = {
    "args_not_json": "tool-call arguments cut short: not JSON",
    "invented_name": "calls a function the request did not declare",
    "missing_arg": "leaves a required argument out",
    "wrong_args": "calls the right function with the wrong city",
    "no_call": "answers in text where a call was right",
    "call_always": "calls a function where no call was right",
    "stop_ignored": "generates past the stop string",
    "max_tokens_overrun": "generates past max_tokens, finish_reason stop",
    "json_schema_ignored": "answers prose to response_format json_schema",
    "json_object_ignored": "answers prose to response_format json_object",
    "seed_ignored": "samples at temperature 0 despite a seed",
    "logprobs_rejected": "refuses logprobs with a 400",
    "logprobs_ignored": "sends no logprobs",
    "reasoning": "a reasoning model: reasoning grows with reasoning_effort",
    "reasoning_ignored": "a reasoning model that ignores reasoning_effort",
}


def knobs(spec: str) -> frozenset[str]:
    """The profile's `contract` value as a set; ValueError naming an unknown knob."""
    names = frozenset(k.strip() for k in spec.split(",") if k.strip())
    unknown = names - BREAKS.keys()
    if unknown:
        raise ValueError(f"contract {', '.join(sorted(unknown))!r}: expected any of "
                         f"{', '.join(BREAKS)}")
    return names


_PROMPTS = (COUNT_PROMPT, CAPITAL_PROMPT, CITY_PROMPT, STORY_PROMPT, REASONING_PROMPT)


def handles(body: dict[str, Any], user: str) -> bool:
    """A request for this module: one with `tools`, or one of the contract prompts (the
    matrix's parameters are judged on those only: other requests keep their own handling,
    e.g. the fingerprint's `logprobs`)."""
    return bool(body.get("tools")) or user in _PROMPTS or any(
        s.by_prompt(user) for s in SUITES.values())


def _pieces(text: str) -> list[str]:
    return list(TOKEN_PATTERN.findall(text))


def _calls_for(user: str, brk: frozenset[str]) -> list[tuple[str, str]] | None:
    """(name, arguments JSON) of the calls to make, or None to answer in text."""
    item = next((i for s in SUITES.values() if (i := s.by_prompt(user)) is not None), None)
    if item is None:
        return None
    expected: list[Call] = list(item.expected)
    if not expected:
        if "call_always" in brk:
            return [("get_weather", json.dumps({"city": "Paris", "unit": "celsius"}))]
        return None
    if "no_call" in brk:
        return None
    out = []
    for call in expected:
        name, args = call.name, dict(call.arguments)
        if "invented_name" in brk:
            name += "_v2"
        if "missing_arg" in brk:
            args.pop(next(iter(args)))
        if "wrong_args" in brk and "city" in args:
            args["city"] = "London"
        text = json.dumps(args)
        if "args_not_json" in brk:
            text = text[:-1]
        out.append((name, text))
    return out


def _text_for(user: str, body: dict[str, Any], brk: frozenset[str]) -> str:
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if user == COUNT_PROMPT:
        return ", ".join(str(i) for i in range(1, 31)) + "."
    if user == CAPITAL_PROMPT:
        if kind == "json_object" and "json_object_ignored" not in brk:
            return '{"capital": "Paris"}'
        return "The capital of France is Paris."
    if user == CITY_PROMPT:
        if kind == "json_schema" and "json_schema_ignored" not in brk:
            return '{"city": "Tokyo", "population_millions": 37.4}'
        return "The largest city of Japan is Tokyo, with about 37 million people."
    if user == STORY_PROMPT:
        story = "The keeper lit the lamp at dusk and watched the ships pass safely by"
        if "seed_ignored" in brk and body.get("temperature") == 0:
            # sampled anyway: two identical answers in a row about once in 4 billion
            story += f" for the {secrets.randbits(32)}th night"
        return story + "."
    if user == REASONING_PROMPT:
        return "No."
    item = next((i for s in SUITES.values() if (i := s.by_prompt(user)) is not None), None)
    if item is not None and not item.expected:
        return "42"
    if item is not None:
        return "I can answer that without a tool: it is sunny."
    return "OK."


def _reasoning_for(user: str, body: dict[str, Any], brk: frozenset[str]) -> str:
    # only the reasoning question is reasoned about: max_tokens counts reasoning tokens too
    if not brk & {"reasoning", "reasoning_ignored"} or user != REASONING_PROMPT:
        return ""
    effort = body.get("reasoning_effort")
    steps = {"low": 1, "medium": 2, "high": 4}.get(effort if isinstance(effort, str) else "",
                                                    2)
    if "reasoning_ignored" in brk:
        steps = 2
    return " ".join(["221 = 13 x 17, so it has divisors other than 1 and itself."] * steps)


def _limit(pieces: list[str], body: dict[str, Any], brk: frozenset[str]
           ) -> tuple[list[str], str]:
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    reason = "stop"
    if stops and "stop_ignored" not in brk:
        text = "".join(pieces)
        at = min((text.find(s) for s in stops if s in text), default=-1)
        if at >= 0:
            pieces = _pieces(text[:at])
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 256
    if isinstance(max_tokens, int) and len(pieces) > max_tokens:
        if "max_tokens_overrun" in brk:
            pieces = pieces[: max_tokens + 5]
        else:
            pieces, reason = pieces[:max_tokens], "length"
    return pieces, reason


def _logprobs(pieces: list[str], body: dict[str, Any], brk: frozenset[str]
              ) -> list[dict[str, Any]] | None:
    if not body.get("logprobs") or "logprobs_ignored" in brk:
        return None
    top = body.get("top_logprobs") or 0
    return [{"token": p, "logprob": -0.01 * (i + 1), "bytes": list(p.encode()),
             "top_logprobs": [{"token": p if k == 0 else f"{p}{k}", "logprob": -0.01 * (k + 1),
                               "bytes": list(p.encode())} for k in range(top)]}
            for i, p in enumerate(pieces)]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "invalid_request_error",
                                        "param": None, "code": None}}, status=status)


async def respond(request: web.Request, body: dict[str, Any], user: str, *, stream: bool,
                  include_usage: bool, contract: str, delay_s: float) -> web.StreamResponse:
    """Answer one contract request (after `delay_s`, the network's time to first token)."""
    brk = knobs(contract)
    if body.get("logprobs") and "logprobs_rejected" in brk:
        return _error(400, "logprobs is not supported by this model")
    await asyncio.sleep(delay_s)
    calls = _calls_for(user, brk) if body.get("tools") else None
    pieces, reason = ([], "tool_calls") if calls else _limit(
        _pieces(_text_for(user, body, brk)), body, brk)
    reasoning = _reasoning_for(user, body, brk)
    model = body.get("model", "")
    prompt_tokens = len(_pieces(user)) + (60 * len(body.get("tools") or []))
    completion = len(pieces) + len(_pieces(reasoning)) + sum(
        len(_pieces(a)) + 1 for _, a in calls or [])
    rid = "chatcmpl-" + secrets.token_urlsafe(18)
    created = int(time.time())
    call_ids = ["chatcmpl-tool-" + secrets.token_hex(8) for _ in calls or []]
    logprobs = _logprobs(pieces, body, brk)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
             "total_tokens": prompt_tokens + completion}
    if not stream:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces) or None}
        if reasoning:
            message["reasoning_content"] = reasoning
        if calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": n, "arguments": a}}
                for cid, (n, a) in zip(call_ids, calls, strict=True)]
        choice = {"index": 0, "message": message,
                  "logprobs": {"content": logprobs} if logprobs is not None else None,
                  "finish_reason": reason}
        return web.json_response({"id": rid, "object": "chat.completion", "created": created,
                                  "model": model, "choices": [choice], "usage": usage})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                       "Cache-Control": "no-cache"})
    try:  # a client that goes away (a monitor stopping) just ends the answer
        await resp.prepare(request)
        head = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}

        async def send(delta: dict[str, Any], finish: str | None = None,
                       lp: list[dict[str, Any]] | None = None) -> None:
            choice = {"index": 0, "delta": delta,
                      "logprobs": {"content": lp} if lp is not None else None,
                      "finish_reason": finish}
            await resp.write(b"data: " + json.dumps({**head, "choices": [choice]},
                                                    separators=COMPACT).encode() + b"\n\n")

        await send({"role": "assistant", "content": ""})
        for piece in _pieces(reasoning):
            await send({"reasoning_content": piece})
        for i, piece in enumerate(pieces):
            await send({"content": piece}, lp=None if logprobs is None else [logprobs[i]])
        for index, (cid, (name, args)) in enumerate(zip(call_ids, calls or [], strict=True)):
            await send({"tool_calls": [{"id": cid, "type": "function", "index": index,
                                        "function": {"name": name, "arguments": ""}}]})
            for k in range(0, len(args), 7):  # arguments split mid-token, as servers do
                await send({"tool_calls": [{"index": index,
                                            "function": {"arguments": args[k:k + 7]}}]})
        await send({}, finish=reason)
        if include_usage:
            await resp.write(b"data: " + json.dumps({**head, "choices": [], "usage": usage},
                                                    separators=COMPACT).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp
