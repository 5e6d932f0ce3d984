"""The go-livepeer AI gateway's `POST /llm` as buyers reach it, under `/gateway` (a gateway base
URL of `{sim}/gateway`): what go-livepeer does to the runner's stream, byte for byte.

From go-livepeer (server/ai_mediaserver.go `LLM`, server/ai_process.go `handleSSEStream`,
server/handlers.go `respondJsonError`, ai/worker/runner.gen.go `LLMResponse`):
- no key is checked; 400 `missing required fields` unless `model`, `messages` (non-empty),
  `stream` and `max_tokens` are all present;
- errors are `{"error":{"message":...}}` plus a newline (json.Encoder), 503 always reading
  "Service Unavailable Error" (no orchestrator free), 500 always "Internal Server Error";
- each runner chunk is decoded into `worker.LLMResponse` and re-encoded by Go's encoding/json:
  fields in struct order (`choices`, `created`, `id`, `model`, `usage`), `delta` before
  `finish_reason` before `index`, `<`, `>`, `&` escaped; unknown fields (the old
  `tokens_used`) are dropped and undecodable lines (the runner's `[DONE]`) skipped;
- the stream stops after the chunk whose `finish_reason` is set: no `data: [DONE]`;
- no response header names the orchestrator.

Faults: `http_5xx` alternates 500 and 503; `rate_limit` is a 503 (the gateway has no 429 of its
own: a busy orchestrator pool is "Service Unavailable"); `stream_error` drops the connection,
because a runner error event has no `choices` and `handleSSEStream` indexes `Choices[0]` without
a length check (the gateway's goroutine panics); `truncate` ends the body cleanly before any
`finish_reason` (the runner's stream closed early); `malformed` is an HTML page from a proxy in
front (the gateway itself cannot send an undecodable chunk).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from aiohttp import web

from monitor.simulator.faults import HTML_PAGE, cut, play_stream
from monitor.simulator.network import SimNetwork, Truth, answer_for, approx_tokens
from monitor.simulator.openai import SIM_KEY
from monitor.simulator.profiles import Plan

PREFIX = "/gateway"
MESSAGES = {400: None, 500: "Internal Server Error", 503: "Service Unavailable Error"}


def go_json(obj: Any) -> bytes:
    """What Go's encoding/json writes for `obj` (compact; HTML characters escaped; keys in the
    order given, which the callers keep in Go's struct field order)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text.encode()


def error_response(status: int, message: str = "") -> web.Response:
    """`respondJsonError`: 500 and 503 hide the cause behind a fixed message."""
    body = {"error": {"message": MESSAGES.get(status) or message}}
    return web.Response(status=status, body=go_json(body) + b"\n",
                        content_type="application/json")


def llm_response(rid: str, model: str, content: str, finish: str, prompt: int, done: int,
                 *, whole: bool = False) -> dict[str, Any]:
    """worker.LLMResponse in struct order. `finish_reason` is a *string with omitempty: the
    runner's "" decodes to a non-nil pointer, so it is written as ""."""
    message = {"content": content, "role": "assistant"}
    choice = ({"finish_reason": finish, "index": 0, "message": message} if whole
              else {"delta": message, "finish_reason": finish, "index": 0})
    return {"choices": [choice], "created": int(time.time()), "id": rid, "model": model,
            "usage": {"completion_tokens": done, "prompt_tokens": prompt,
                      "total_tokens": prompt + done}}


async def llm(request: web.Request) -> web.StreamResponse:
    received = time.perf_counter()
    sim = request.app[SIM_KEY]
    try:
        body = await request.json()
    except ValueError:
        return error_response(400, "invalid character in request body")
    if not isinstance(body, dict):
        return error_response(400, "request body is not an object")
    required = ("model", "messages", "stream", "max_tokens")
    if any(body.get(key) is None for key in required) or not body["messages"]:
        return error_response(400, "missing required fields")
    messages, max_tokens = body["messages"], body["max_tokens"]
    if not isinstance(messages, list) or not isinstance(max_tokens, int) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
        return error_response(400, "request body does not match the LLMRequest schema")
    if sim.initializing or body["model"] not in sim.catalog:
        return error_response(503)  # no orchestrator offers this model (yet)
    plan = sim.plan(max_tokens)
    users = [m["content"] for m in messages if m.get("role") == "user"]
    pieces, _ = answer_for(users[-1] if users else "", max_tokens, wrong=plan.fault == "wrong")
    truth = sim.record(plan, received)
    early = _early(plan)
    if early is not None:
        truth.ended = time.perf_counter()
        early.headers["x-request-id"] = truth.request_id
        return early
    prompt = approx_tokens(" ".join(m["content"] for m in messages))
    rid = "chatcmpl-" + secrets.token_hex(8)
    if not body["stream"]:
        await asyncio.sleep(max(0.0, truth.received + plan.ttft_s
                                + len(pieces) / max(plan.tokens_per_s, 1e-6)
                                - time.perf_counter()))
        truth.tokens, truth.ended = len(pieces), time.perf_counter()
        answer = llm_response(rid, body["model"], "".join(pieces), "stop", prompt, len(pieces),
                              whole=True)
        return web.Response(body=go_json(answer) + b"\n", content_type="application/json",
                            headers={"x-request-id": truth.request_id})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache", "Connection": "keep-alive",
                                       "x-request-id": truth.request_id})
    return await play_stream(request, resp, truth, lambda: _stream(
        request, resp, sim, plan, truth, pieces, body["model"], rid, prompt))


def _early(plan: Plan) -> web.Response | None:
    if plan.fault == "http_5xx":
        return error_response(503 if plan.fault_at % 2 else 500)
    if plan.fault == "rate_limit":
        return error_response(503)
    if plan.fault == "malformed":
        return web.Response(status=200, text=HTML_PAGE, content_type="text/html")
    return None


async def _stream(request: web.Request, resp: web.StreamResponse, sim: SimNetwork, plan: Plan,
                  truth: Truth, pieces: list[str], model: str, rid: str, prompt: int) -> None:
    start = truth.received + plan.ttft_s
    interval = 1.0 / plan.tokens_per_s if plan.tokens_per_s > 0 else 0.0
    pause = 0.0
    for i, piece in enumerate(pieces):
        if i == plan.fault_at and plan.fault == "truncate":
            await resp.write_eof()
            return
        if i == plan.fault_at and plan.fault in ("eof", "reset", "stream_error"):
            cut(request, "reset" if plan.fault == "reset" else "eof")
        if i == plan.fault_at and plan.fault == "stall":
            pause = sim.profile.stall_s
        delay = start + pause + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = llm_response(rid, model, piece, "", prompt, i + 1)
        await resp.write(b"data: " + go_json(chunk) + b"\n\n")
        now = time.perf_counter()
        if truth.first_token is None:
            truth.first_token = now
        truth.last_token = now
        truth.tokens += 1
    final = llm_response(rid, model, "", "stop", prompt, len(pieces))
    await resp.write(b"data: " + go_json(final) + b"\n\n")
    await resp.write_eof()  # the loop breaks on finish_reason: no [DONE]


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX + "/llm", llm)
