"""The Livepeer AI pipelines as the runner (livepeer/ai-runner) serves them: `POST /llm` (SSE
in the current OpenAI-like `choices[].delta` format with `usage`, closed by `data: [DONE]`),
`POST /legacy/llm` (the older `{"chunk": ...}` events, so a URL ending in `/legacy` selects
that format) and `POST /text-to-image` (`{"images": [{"url", "seed", "nsfw"}]}`). Errors in
the runner's `{"detail": {"msg"}}` shape; faults from the FaultProfile dice like every
protocol. What a buyer calls is the go-livepeer gateway in front of the runner, which
re-encodes these chunks: that is `livepeer_gateway.py`, under `/gateway`."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from aiohttp import web

from monitor.simulator.faults import cut, early_fault, html_variant, play_stream
from monitor.simulator.network import SimNetwork, Truth, answer_for, approx_tokens
from monitor.simulator.openai import SIM_KEY
from monitor.simulator.profiles import Plan

# Which orchestrator served the request. A simulator convention: the real gateway's header
# for this is unverified (see docs/networks.md).
ORCH_HEADER = "X-Livepeer-Orchestrator"


def error_body(status: int, message: str) -> web.Response:
    return web.json_response({"detail": {"msg": message}}, status=status)


def _event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _orchestrator(plan: Plan) -> str:
    return f"https://orch-{plan.fault_at % 3 + 1}.sim.invalid:8935"


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except ValueError:
        return error_body(400, "Invalid JSON body")
    if not isinstance(body, dict):
        return error_body(422, "body must be an object")
    return body


async def llm(request: web.Request) -> web.StreamResponse:
    return await _llm(request, legacy=False)


async def legacy_llm(request: web.Request) -> web.StreamResponse:
    return await _llm(request, legacy=True)


async def _llm(request: web.Request, *, legacy: bool) -> web.StreamResponse:
    received = time.perf_counter()
    sim = request.app[SIM_KEY]
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    if sim.initializing:
        return error_body(503, "Service Initializing")
    model = body.get("model", "")
    if model and model != sim.model:
        return error_body(400, f"pipeline configured with {sim.model} but called with {model}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
    ):
        return error_body(422, "messages: field required (a list of {role, content})")
    max_tokens = body.get("max_tokens", 256)
    if not isinstance(max_tokens, int) or max_tokens < 1:
        return error_body(422, "max_tokens must be a positive integer")
    users = [m["content"] for m in messages if m.get("role") == "user"]
    plan = sim.plan(max_tokens)
    pieces, _reason = answer_for(users[-1] if users else "", max_tokens,
                                 wrong=plan.fault == "wrong")
    truth = sim.record(plan, received)
    early = early_fault(sim, plan, truth, error_body)
    if early is not None:
        truth.ended = time.perf_counter()
        return early
    prompt_tokens = approx_tokens(" ".join(m["content"] for m in messages))
    rid = "chatcmpl-" + secrets.token_hex(8)
    headers = {"x-request-id": truth.request_id, ORCH_HEADER: _orchestrator(plan)}
    if not body.get("stream"):
        await asyncio.sleep(max(0.0, truth.received + plan.ttft_s
                                + len(pieces) / max(plan.tokens_per_s, 1e-6)
                                - time.perf_counter()))
        truth.tokens, truth.ended = len(pieces), time.perf_counter()
        return web.json_response(_chunk(rid, sim.model, "".join(pieces), "stop", prompt_tokens,
                                        len(pieces), whole=True), headers=headers)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **headers})
    return await play_stream(request, resp, truth, lambda: _stream(
        request, resp, sim, plan, truth, pieces, legacy, rid, prompt_tokens))


def _chunk(rid: str, model: str, content: str, finish: str, prompt: int, done: int,
           *, whole: bool = False) -> dict[str, Any]:
    """One LLMResponse as the runner serialises it (pydantic `model_dump_json`, field order of
    ai-runner runner/src/runner/routes/utils.py `LLMResponse`/`LLMChoice`; `usage` since
    2025-01-28, `tokens_used` before). A streamed chunk carries `delta`, a whole answer
    (`stream: false`, routes/llm.py) `message`."""
    text = {"role": "assistant", "content": content}
    return {"id": rid, "model": model, "created": int(time.time()),
            "usage": {"prompt_tokens": prompt, "completion_tokens": done,
                      "total_tokens": prompt + done},
            "choices": [{"index": 0, "finish_reason": finish,
                         "delta": None if whole else text, "message": text if whole else None}]}


async def _stream(request: web.Request, resp: web.StreamResponse, sim: SimNetwork, plan: Plan,
                  truth: Truth, pieces: list[str], legacy: bool, rid: str,
                  prompt_tokens: int) -> None:
    start = truth.received + plan.ttft_s
    interval = 1.0 / plan.tokens_per_s if plan.tokens_per_s > 0 else 0.0
    pause = 0.0
    for i, piece in enumerate(pieces):
        if i == plan.fault_at and await _fault(request, resp, sim, plan):
            return
        if i == plan.fault_at and plan.fault == "stall":
            pause = sim.profile.stall_s
        delay = start + pause + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if legacy:
            await resp.write(_event({"chunk": piece}))
        else:
            await resp.write(_event(_chunk(rid, sim.model, piece, "", prompt_tokens, i + 1)))
        now = time.perf_counter()
        if truth.first_token is None:
            truth.first_token = now
        truth.last_token = now
        truth.tokens += 1
    if legacy:
        await resp.write(_event({"tokens_used": prompt_tokens + len(pieces)}))
    else:
        await resp.write(_event(_chunk(rid, sim.model, "", "stop", prompt_tokens, len(pieces))))
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()


async def _fault(request: web.Request, resp: web.StreamResponse, sim: SimNetwork,
                 plan: Plan) -> bool:
    fault = plan.fault
    if fault == "malformed" and not html_variant(sim, plan):
        await resp.write(b'data: {"choices":[{"delta":{"content\n\n')
        await resp.write_eof()
        return True
    if fault == "stream_error":  # what ai-worker's stream_generator yields on an exception
        await resp.write(_event({"error": "CUDA out of memory. Tried to allocate 2.00 GiB"}))
        await resp.write_eof()
        return True
    if fault == "truncate":
        await resp.write_eof()
        return True
    if fault in ("eof", "reset"):
        cut(request, fault)
    return False


async def text_to_image(request: web.Request) -> web.StreamResponse:
    received = time.perf_counter()
    sim = request.app[SIM_KEY]
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    if sim.initializing:
        return error_body(503, "Service Initializing")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return error_body(422, "prompt: field required")
    model = body.get("model_id", "")
    if model and model != sim.model:
        return error_body(400, f"pipeline configured with {sim.model} but called with {model}")
    for key in ("width", "height", "num_inference_steps"):
        if key in body and not isinstance(body[key], int):
            return error_body(422, f"{key}: value is not a valid integer")
    plan = sim.plan(1)
    truth = sim.record(plan, received)
    early = early_fault(sim, plan, truth, error_body)
    if early is not None:
        truth.ended = time.perf_counter()
        return early
    pause = sim.profile.stall_s if plan.fault == "stall" else 0.0
    await asyncio.sleep(plan.ttft_s + pause)
    headers = {"x-request-id": truth.request_id, ORCH_HEADER: _orchestrator(plan)}
    if plan.fault in ("eof", "reset"):
        try:
            cut(request, plan.fault)
        except ConnectionResetError:
            return web.Response(status=500)  # never sent: the connection is gone
    if plan.fault == "stream_error":
        failed = error_body(500, "GPU out of memory.")
        failed.headers.update(headers)
        return failed
    seed = body.get("seed") if isinstance(body.get("seed"), int) else 42
    images = [] if plan.fault == "wrong" else [
        {"url": f"/stream/{secrets.token_hex(8)}/{secrets.token_hex(4)}.png", "seed": seed,
         "nsfw": False}]
    payload: dict[str, Any] = {"images": images}
    if plan.fault == "malformed":  # the chunk variant: JSON, but not the response schema
        payload = {"output": "ok"}
    encoded = json.dumps(payload).encode()
    truth.tokens, truth.ended = len(images), time.perf_counter()
    if plan.fault == "truncate":  # the body stops halfway, then the connection closes
        resp = web.StreamResponse(headers={"Content-Type": "application/json", **headers})
        resp.content_length = len(encoded)
        await resp.prepare(request)
        await resp.write(encoded[: len(encoded) // 2])
        try:
            cut(request, "eof")
        except ConnectionResetError:
            return resp
    return web.Response(body=encoded, content_type="application/json", headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/llm", llm)
    app.router.add_post("/legacy/llm", legacy_llm)
    app.router.add_post("/text-to-image", text_to_image)
    app.router.add_post("/legacy/text-to-image", text_to_image)
