"""Ollama's native API as the server speaks it: `POST /api/chat` (NDJSON stream or one JSON
object), `GET /api/tags`, `GET /api/version`, and `GET /` ("Ollama is running"); errors are
`{"error": "..."}`. Faults come from the network's FaultProfile dice like every protocol."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from monitor.simulator.capacity import admitted
from monitor.simulator.faults import (
    MAX_QUEUE,
    cut,
    early_fault,
    html_variant,
    play_stream,
)
from monitor.simulator.network import SimNetwork, Truth, answer_for, approx_tokens
from monitor.simulator.openai import SIM_KEY
from monitor.simulator.profiles import Plan

VERSION = "0.6.2"
DEFAULT_NUM_PREDICT = 128


def error_body(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


async def chat(request: web.Request) -> web.StreamResponse:
    received = time.perf_counter()
    sim = request.app[SIM_KEY]
    try:
        body = await request.json()
    except ValueError:
        return error_body(400, "invalid character 'x' looking for beginning of value")
    if not isinstance(body, dict):
        return error_body(400, "json: cannot unmarshal array into Go value of type api.ChatRequest")
    if sim.initializing:
        return error_body(503, "Service Initializing")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error_body(400, "model is required")
    messages = body.get("messages")
    if not isinstance(messages, list):
        return error_body(400, "messages is required")
    users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    user = users[-1] if users and isinstance(users[-1], str) else ""
    options = body.get("options") or {}
    if not isinstance(options, dict):
        return error_body(400, "options must be an object")
    num_predict = options.get("num_predict", DEFAULT_NUM_PREDICT)
    if not isinstance(num_predict, int) or num_predict == 0:
        num_predict = DEFAULT_NUM_PREDICT
    max_tokens = num_predict if num_predict > 0 else DEFAULT_NUM_PREDICT

    plan = sim.plan(max_tokens)
    pieces, reason = answer_for(user, max_tokens, wrong=plan.fault == "wrong")
    truth = sim.record(plan, received)
    early = early_fault(sim, plan, truth, error_body)
    if early is not None:
        truth.ended = time.perf_counter()
        return early
    prompt_tokens = approx_tokens(" ".join(str(m.get("content", "")) for m in messages
                                           if isinstance(m, dict)))
    # Ollama's own capacity: OLLAMA_NUM_PARALLEL requests at once, OLLAMA_MAX_QUEUE waiting,
    # then 503 with ErrMaxQueue (ollama/ollama server/sched.go).
    async with admitted(sim.slots, truth.received) as start:
        if start is None:
            truth.fault, truth.ended = "busy", time.perf_counter()
            return error_body(503, MAX_QUEUE)
        truth.admitted = start
        if body.get("stream", True) is False:
            return await _whole(sim, plan, truth, pieces, reason, model, prompt_tokens)
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson",
                                           "x-request-id": truth.request_id})
        return await play_stream(request, resp, truth, lambda: _stream(
            request, resp, sim, plan, truth, pieces, reason, model, prompt_tokens))


def _final(model: str, reason: str, truth: Truth, prompt_tokens: int, n: int) -> dict[str, Any]:
    now = time.perf_counter()
    first = truth.first_token or now
    return {
        "model": model, "created_at": _now(),
        "message": {"role": "assistant", "content": ""},
        "done_reason": reason, "done": True,
        "total_duration": int((now - truth.received) * 1e9),
        "load_duration": 1_200_000,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": int(max(first - truth.received, 0.0) * 1e9),
        "eval_count": n,
        "eval_duration": int(max(now - first, 1e-6) * 1e9),
    }


async def _stream(request: web.Request, resp: web.StreamResponse, sim: SimNetwork, plan: Plan,
                  truth: Truth, pieces: list[str], reason: str, model: str,
                  prompt_tokens: int) -> None:
    start = (truth.admitted or truth.received) + plan.ttft_s
    interval = 1.0 / plan.tokens_per_s if plan.tokens_per_s > 0 else 0.0
    pause = 0.0
    for i, piece in enumerate(pieces):
        if i == plan.fault_at and await _fault(request, resp, sim, plan, model):
            return
        if i == plan.fault_at and plan.fault == "stall":
            pause = sim.profile.stall_s
        delay = start + pause + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await resp.write(_line({"model": model, "created_at": _now(),
                                "message": {"role": "assistant", "content": piece},
                                "done": False}))
        now = time.perf_counter()
        if truth.first_token is None:
            truth.first_token = now
        truth.last_token = now
        truth.tokens += 1
    await resp.write(_line(_final(model, reason, truth, prompt_tokens, len(pieces))))
    await resp.write_eof()


async def _fault(request: web.Request, resp: web.StreamResponse, sim: SimNetwork, plan: Plan,
                 model: str) -> bool:
    """Inject a mid-stream fault; True when the response is over."""
    fault = plan.fault
    if fault == "malformed" and not html_variant(sim, plan):
        await resp.write(b'{"model":"' + model.encode() + b'","created_at":\n')
        await resp.write_eof()
        return True
    if fault == "stream_error":
        await resp.write(_line({"error": "an error was encountered while running the model: "
                                         "CUDA error: out of memory"}))
        await resp.write_eof()
        return True
    if fault == "truncate":
        await resp.write_eof()  # a clean end of body without the done:true object
        return True
    if fault in ("eof", "reset"):
        cut(request, fault)
    return False


async def _whole(sim: SimNetwork, plan: Plan, truth: Truth, pieces: list[str], reason: str,
                 model: str, prompt_tokens: int) -> web.Response:
    await asyncio.sleep(max(0.0, (truth.admitted or truth.received) + plan.ttft_s
                            + len(pieces) / max(plan.tokens_per_s, 1e-6) - time.perf_counter()))
    truth.tokens = len(pieces)
    final = _final(model, reason, truth, prompt_tokens, len(pieces))
    final["message"]["content"] = "".join(pieces)
    truth.ended = time.perf_counter()
    return web.json_response(final, headers={"x-request-id": truth.request_id})


async def tags(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    return web.json_response({"models": [{
        "name": model, "model": model, "modified_at": "2025-01-01T00:00:00Z",
        "size": 4_920_753_328, "digest": "sha256:" + "0" * 64,
        "details": {"format": "gguf", "family": "llama", "parameter_size": _size(model),
                    "quantization_level": "Q4_K_M"},
    } for model in sim.catalog]})


def _size(tag: str) -> str:
    """Ollama's `parameter_size` for a tag like `qwen3:32b` (8.0B when the tag does not say)."""
    size = re.search(r":(\d+(?:\.\d+)?)b\b", tag, re.IGNORECASE)
    return f"{float(size.group(1)):.1f}B" if size else "8.0B"


async def version(_request: web.Request) -> web.Response:
    return web.json_response({"version": VERSION})


async def root(_request: web.Request) -> web.Response:
    return web.Response(text="Ollama is running")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/chat", chat)
    app.router.add_get("/api/tags", tags)
    app.router.add_get("/api/version", version)
    app.router.add_get("/", root)
