"""The OpenAI wire protocol as real servers speak it: /v1/chat/completions, /v1/completions
(SSE, byte for byte: role chunk, content chunks, finish chunk, usage chunk, `data: [DONE]`),
/v1/embeddings and /v1/models, with errors in OpenAI's `{"error": {...}}` shape."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from typing import Any

from aiohttp import web

from monitor.simulator.capacity import admitted, busy
from monitor.simulator.faults import HTML_PAGE, NGINX_502, cut, html_variant, play_stream
from monitor.simulator.firsttoken import logprobs_content
from monitor.simulator.network import SimNetwork, Truth, answer_for, approx_tokens
from monitor.simulator.profiles import Plan

COMPACT = (",", ":")  # OpenAI sends compact JSON
SIM_KEY: web.AppKey[SimNetwork] = web.AppKey("sim", SimNetwork)

SERVER_ERRORS = (
    (500, "server_error", "The server had an error while processing your request."),
    (503, "service_unavailable", "No instances available"),
    (504, "gateway_timeout", "No backend available"),
    (529, "overloaded", "No healthy backends"),
    (502, None, NGINX_502),
)

def error_response(status: int, message: str, etype: str, code: Any = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def pre_stream_fault(sim: SimNetwork, plan: Plan, truth: Truth) -> web.StreamResponse | None:
    """Faults that replace the whole response, shared by every protocol's handlers."""
    headers = {"x-request-id": truth.request_id}
    if plan.fault == "http_5xx":
        status, etype, message = SERVER_ERRORS[plan.fault_at % len(SERVER_ERRORS)]
        if etype is None:
            return web.Response(status=status, text=message, content_type="text/html",
                                headers=headers)
        return error_response(status, message, etype, headers=headers)
    if plan.fault == "rate_limit":
        headers["Retry-After"] = str(sim.profile.retry_after_s)
        return error_response(429, "Rate limit reached for requests", "rate_limit_error",
                              "rate_limit_exceeded", headers)
    if plan.fault == "malformed" and html_variant(sim, plan):
        return web.Response(status=200, text=HTML_PAGE, content_type="text/html",
                            headers=headers)
    return None


async def _read_json(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except ValueError:
        return error_response(400, "We could not parse the JSON body of your request.",
                              "invalid_request_error")
    if not isinstance(body, dict):
        return error_response(400, "The request body must be a JSON object.",
                              "invalid_request_error")
    return body


def _user_text(body: dict[str, Any], chat: bool) -> str | None:
    if not chat:
        prompt = body.get("prompt")
        return prompt if isinstance(prompt, str) else None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return _content_text(users[-1]) if users else None


def _content_text(content: object) -> str | None:
    """A message's text: a string, or the text parts of a list of content parts
    (`[{"type": "text", "text": ...}, ...]`, as GuideLLM sends): OpenAI's
    ChatCompletionUserMessageParam.content (openai-python, types/chat/
    chat_completion_user_message_param.py), which vLLM reads part by part
    (vllm/entrypoints/chat_utils.py, _parse_chat_message_content_parts)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    texts: list[str] = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text":
            text = part.get("text")
            if not isinstance(text, str):
                return None
            texts.append(text)
    return "\n".join(texts) if texts else None


def _prompt_text(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    return " ".join(_content_text(m.get("content")) or "" for m in body.get("messages", [])
                    if isinstance(m, dict))


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=False)


async def _generate(request: web.Request, *, chat: bool) -> web.StreamResponse:
    received = time.perf_counter()
    sim = request.app[SIM_KEY]
    body = await _read_json(request)
    if isinstance(body, web.Response):
        return body
    if sim.initializing:
        return error_response(503, "Service Initializing", "service_unavailable")
    if not isinstance(body.get("model"), str):
        return error_response(400, "you must provide a model parameter", "invalid_request_error")
    user = _user_text(body, chat)
    if user is None:
        field = "messages" if chat else "prompt"
        return error_response(400, f"'{field}' is a required property", "invalid_request_error")
    stream = bool(body.get("stream"))
    options = body.get("stream_options")
    if options is not None and not stream:
        return error_response(400, "The 'stream_options' parameter is only allowed when "
                              "'stream' is enabled.", "invalid_request_error")
    if options is not None and sim.profile.reject_stream_options:
        return error_response(400, "Unrecognized request argument supplied: stream_options",
                              "invalid_request_error")
    if options is not None and not isinstance(options, dict):
        return error_response(400, "'stream_options' must be an object", "invalid_request_error")
    include_usage = bool(options and options.get("include_usage")) and sim.profile.send_usage
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 256
    if not isinstance(max_tokens, int) or max_tokens < 1:
        return error_response(400, "max_tokens must be a positive integer",
                              "invalid_request_error")

    temperature = body.get("temperature", 1.0)  # OpenAI's default
    top_k = _top_logprobs(body)
    if isinstance(top_k, web.Response):
        return top_k
    first = sim.first_token(user, temperature, top_k or 0) if chat else None
    plan = sim.plan(max_tokens, sampling=sim.is_sampling(user, temperature)
                    or first is not None)
    pieces, finish_reason = answer_for(user, max_tokens, wrong=plan.fault == "wrong")
    sampled = None if plan.fault == "wrong" else sim.sampled_answer(user, max_tokens,
                                                                    temperature)
    if sampled is not None:
        pieces, finish_reason = sampled, "length" if len(sampled) == max_tokens else "stop"
    logprobs = None
    if first is not None and plan.fault != "wrong":
        pieces = [first.token, *pieces[: max_tokens - 1]]
        finish_reason = "length" if len(pieces) == max_tokens else "stop"
        if top_k is not None and sim.profile.logprobs:
            logprobs = {"content": logprobs_content(pieces, first)}
    truth = sim.record(plan, received)
    early = pre_stream_fault(sim, plan, truth)
    if early is not None:
        truth.ended = time.perf_counter()
        return early
    prompt_tokens = approx_tokens(_prompt_text(body))
    model = body["model"]
    # a slot for the whole answer (queueing for it first), or refused
    async with admitted(sim.slots, truth.received) as start:
        if start is None:
            truth.fault, truth.ended = "busy", time.perf_counter()
            return busy(sim.profile, truth.request_id)
        truth.admitted = start
        if not stream:
            return await _whole(request, sim, plan, truth, pieces, finish_reason, model, chat,
                                prompt_tokens, logprobs)
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "x-request-id": truth.request_id,
            "x-sim-planned-ttft-s": f"{plan.ttft_s:.6f}",
            "x-sim-planned-tokens-per-s": f"{plan.tokens_per_s:.3f}",
        })
        return await play_stream(request, resp, truth, lambda: _stream(
            request, resp, sim, plan, truth, pieces, finish_reason, model, chat, include_usage,
            prompt_tokens))


def _top_logprobs(body: dict[str, Any]) -> int | web.Response | None:
    """How many top_logprobs the request asks for (None: no logprobs), checked as vLLM's
    ChatCompletionRequest does (vllm/entrypoints/openai/protocol.py, check_logprobs):
    `top_logprobs` needs `logprobs: true`; 0 asks for the chosen token's logprob alone."""
    want, top = body.get("logprobs"), body.get("top_logprobs")
    if want is not None and not isinstance(want, bool):
        return error_response(400, "'logprobs' must be a boolean", "invalid_request_error")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 20:
            return error_response(400, "'top_logprobs' must be an integer from 0 to 20",
                                  "invalid_request_error")
        if not want:
            return error_response(400, "when using `top_logprobs`, `logprobs` must be set "
                                  "to true.", "invalid_request_error")
    return (top or 0) if want else None


class _Chunks:
    """Pre-rendered byte templates for one response: encoding per token stays cheap."""

    def __init__(self, model: str, chat: bool, include_usage: bool) -> None:
        rid = ("chatcmpl-" if chat else "cmpl-") + secrets.token_urlsafe(18)
        obj = "chat.completion.chunk" if chat else "text_completion"
        head = json.dumps({"id": rid, "object": obj, "created": int(time.time()),
                           "model": model, "system_fingerprint": "fp_sim0001"},
                          separators=COMPACT)[:-1]
        self.head = "data: " + head + ',"choices":[{"index":0,'
        self.tail = "}]" + (',"usage":null' if include_usage else "") + "}\n\n"
        self.chat = chat

    def role(self) -> bytes:
        return (self.head + '"delta":{"role":"assistant","content":""},"logprobs":null,'
                '"finish_reason":null' + self.tail).encode()

    def token(self, piece: str) -> bytes:
        text = json.dumps(piece)
        if self.chat:
            return (self.head + '"delta":{"content":' + text + '},"logprobs":null,'
                    '"finish_reason":null' + self.tail).encode()
        return (self.head + '"text":' + text + ',"logprobs":null,"finish_reason":null'
                + self.tail).encode()

    def finish(self, reason: str) -> bytes:
        body = '"delta":{},' if self.chat else '"text":"",'
        return (self.head + body + '"logprobs":null,"finish_reason":"' + reason + '"'
                + self.tail).encode()

    def usage(self, prompt: int, completion: int) -> bytes:
        head = self.head[: -len('"choices":[{"index":0,')]
        usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                 "total_tokens": prompt + completion}
        encoded = json.dumps(usage, separators=COMPACT)
        return (head + '"choices":[],"usage":' + encoded + "}\n\n").encode()


async def _stream(request: web.Request, resp: web.StreamResponse, sim: SimNetwork, plan: Plan,
                  truth: Truth, pieces: list[str], finish_reason: str, model: str, chat: bool,
                  include_usage: bool, prompt_tokens: int) -> None:
    chunks = _Chunks(model, chat, include_usage)
    if chat:
        await resp.write(chunks.role())  # the role-only opening chunk: not a token
    # Token i is generated at start + i * interval; a chunk of several tokens goes out when
    # its last token is ready (so the first chunk is the time to first token). Generation
    # starts once the request has a slot (`admitted`): queueing adds to the TTFT.
    start = (truth.admitted or truth.received) + plan.ttft_s
    interval = 1.0 / plan.tokens_per_s if plan.tokens_per_s > 0 else 0.0
    pause = 0.0
    first = 0
    for size in plan.chunk_sizes(sim.profile.tokens_per_chunk, len(pieces)):
        last = first + size - 1
        if first <= plan.fault_at <= last:
            if await _mid_stream_fault(request, resp, sim, plan, chunks):
                return
            if plan.fault == "stall":
                pause = sim.profile.stall_s
        delay = start + pause + last * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await resp.write(chunks.token("".join(pieces[first:last + 1])))
        truth.wrote(time.perf_counter(), size)
        first = last + 1
    await resp.write(chunks.finish(finish_reason))
    if include_usage:
        await resp.write(chunks.usage(prompt_tokens, len(pieces)))
    if sim.profile.send_done:
        await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()


async def _mid_stream_fault(request: web.Request, resp: web.StreamResponse, sim: SimNetwork,
                            plan: Plan, chunks: _Chunks) -> bool:
    """Inject a mid-stream fault; True when the response is over."""
    fault = plan.fault
    if fault == "malformed" and not html_variant(sim, plan):
        await resp.write(chunks.head.encode()[:40] + b"\n\n")  # an undecodable event
        await resp.write_eof()
        return True
    if fault == "stream_error":
        err = {"error": {"message": "CUDA out of memory. Tried to allocate 2.00 GiB",
                         "type": "server_error", "param": None, "code": 500}}
        await resp.write(b"data: " + json.dumps(err, separators=COMPACT).encode() + b"\n\n")
        await resp.write_eof()
        return True
    if fault == "truncate":
        await resp.write_eof()  # a complete HTTP body with no finish_reason and no [DONE]
        return True
    if fault in ("eof", "reset"):
        cut(request, fault)
    return False


async def _whole(request: web.Request, sim: SimNetwork, plan: Plan, truth: Truth,
                 pieces: list[str], finish_reason: str, model: str, chat: bool,
                 prompt_tokens: int, logprobs: dict[str, Any] | None = None) -> web.Response:
    """A non-streaming answer (stream: false), after the time generation would take."""
    await asyncio.sleep(max(0.0, (truth.admitted or truth.received) + plan.ttft_s
                            + len(pieces) / max(plan.tokens_per_s, 1e-6) - time.perf_counter()))
    text = "".join(pieces)
    choice: dict[str, Any] = {"index": 0, "logprobs": logprobs, "finish_reason": finish_reason}
    if chat:
        choice["message"] = {"role": "assistant", "content": text, "refusal": None}
    else:
        choice["text"] = text
    truth.tokens = len(pieces)
    truth.ended = time.perf_counter()
    return web.json_response({
        "id": ("chatcmpl-" if chat else "cmpl-") + secrets.token_urlsafe(18),
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()), "model": model, "system_fingerprint": "fp_sim0001",
        "choices": [choice],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                  "total_tokens": prompt_tokens + len(pieces)},
    }, headers={"x-request-id": truth.request_id})


async def embeddings(request: web.Request) -> web.StreamResponse:
    received = time.perf_counter()
    sim = request.app[SIM_KEY]
    body = await _read_json(request)
    if isinstance(body, web.Response):
        return body
    if sim.initializing:
        return error_response(503, "Service Initializing", "service_unavailable")
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(x, str) for x in inputs):
        return error_response(400, "'input' must be a string or a list of strings",
                              "invalid_request_error")
    plan = sim.plan(1)
    truth = sim.record(plan, received)
    early = pre_stream_fault(sim, plan, truth)
    if early is not None:
        return early
    await asyncio.sleep(plan.ttft_s)
    data = [{"object": "embedding", "index": i,
             "embedding": [] if plan.fault == "wrong" else _vector(text)}
            for i, text in enumerate(inputs)]
    tokens = sum(approx_tokens(t) for t in inputs)
    truth.ended = time.perf_counter()
    return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                             headers={"x-request-id": truth.request_id})


def _vector(text: str, dims: int = 64) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest() * 2
    return [round((b - 127.5) / 127.5, 6) for b in digest[:dims]]


async def models(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    return web.json_response({"object": "list", "data": [
        {"id": model, "object": "model", "created": 1700000000, "owned_by": "simulator"}
        for model in sim.catalog]})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
