"""Theta EdgeCloud's on-demand inference API: submit a request, poll it, list the services.

    POST /infer_request/{service}?wait=N   {"input": {"messages": [...], "max_tokens", ...}}
    GET  /infer_request/{request_id}
    GET  /service/list
    POST /infer_request/chat/completions   OpenAI's chat completions, `model` = the alias

Shapes from thetatoken/on-demand-api-mcp (src/api/client.ts `createInferRequest`,
`getInferRequest`, `listServices`; src/types/index.ts `InferRequest`, `Service`,
`ServiceListResponse`): every answer is an envelope `{status, body}`; requests are
`{id, service_id, project_id, state, input, output?, error?, prediction, create_time,
update_time}` with `state` one of pending, processing, success, error; `wait` holds the submit
open up to N seconds for the result. Two third-party clients show the envelope's status as
"success" and an LLM answer in `output.message` (the MCP's own types say a number and do not
name the output field: both unverified). Auth is `Authorization: Bearer` (the MCP switched from
`x-theta-api-key` on 2026-01-04, commit 665cb43: "API expects Authorization: Bearer"); this
reference network checks no key.

The OpenAI-compatible route and the capacity answer come from a live validation published
2026-06-09 (zeuslabsllc/theta-edgecloud-hermes-skill SKILL.md): `gpt_oss_120b` answered
OpenAI-compatible JSON on `POST /infer_request/chat/completions`, and `qwen3` answered `409 No
instances available - try again later` in several tests. The 409's body shape is not shown
there; it is the envelope of the API's other failures here (`{"status": "error", "message"}`,
as the MCP client reads them). Whether that route streams is not shown either: this reference
network serves it with the OpenAI protocol, streamed or not as asked. A service with no
instance (`app[THETA_KEY].instances`, set by tests) answers that 409 on both routes.

A request is pending for the plan's time-to-first-token, processing while its answer
generates, then success. The dice's faults:

    http_5xx       the submit answers 502 or 503 (a deployment "Running" but not serving)
    rate_limit     429 with Retry-After
    malformed      the submit answers an HTML page (200)
    stall          pending forever: no GPU picks the request up
    eof            state error, "worker lost"
    reset          the submit's connection is reset
    truncate       state success, but no output
    stream_error   every poll answers 503
    wrong          success with a wrong answer
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from monitor.simulator import openai as openai_protocol
from monitor.simulator.faults import HTML_PAGE, NGINX_502, cut
from monitor.simulator.network import SimNetwork, Truth, answer_for
from monitor.simulator.openai import SIM_KEY
from monitor.simulator.profiles import Plan

MAX_WAIT_S = 60  # the MCP documents wait as 0-60 s
NO_INSTANCES = "No instances available - try again later"


@dataclass
class ThetaState:
    """Instances per service alias (1 unless set): 0 plays the 409 capacity answer."""
    instances: dict[str, int] = field(default_factory=dict)

    def has_instances(self, service: str) -> bool:
        return self.instances.get(service, 1) > 0


THETA_KEY: web.AppKey[ThetaState] = web.AppKey("theta", ThetaState)


@dataclass
class SimRequest:
    id: str
    service: str
    plan: Plan
    truth: Truth
    submitted: float  # perf_counter
    created: str
    input: dict[str, Any]
    answer: str

    @property
    def run_s(self) -> float:
        n = max(len(self.answer.split()), 1)
        return max(n / max(self.plan.tokens_per_s, 1e-6), 0.02)

    def state(self, now: float) -> str:
        fault = self.plan.fault
        if fault == "stall" or now < self.submitted + self.plan.ttft_s:
            return "pending"
        if now < self.submitted + self.plan.ttft_s + self.run_s:
            return "processing"
        return "error" if fault == "eof" else "success"

    def document(self, now: float) -> dict[str, Any]:
        state = self.state(now)
        doc: dict[str, Any] = {
            "id": self.id, "service_id": "svc_" + self.service.replace("-", "_"),
            "project_id": "prj_sim", "state": state, "input": self.input,
            "prediction": "default", "create_time": self.created, "update_time": _iso(),
        }
        if state == "success" and self.plan.fault != "truncate":
            doc["output"] = {"message": self.answer}
        if state == "error":
            doc["error"] = "worker lost while processing the request"
        if self.truth.ended is None and state in ("success", "error"):
            self.truth.ended = now
        return doc


REQUESTS_KEY: web.AppKey[dict[str, SimRequest]] = web.AppKey("theta_requests", dict)


def _iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"status": "success", "body": body}, headers=headers)


def error_body(status: int, message: str, **headers: str) -> web.Response:
    """The MCP client reads `message` (or `error`) from a failed answer."""
    return web.json_response({"status": "error", "message": message}, status=status,
                             headers=headers)


async def submit(request: web.Request) -> web.StreamResponse:
    received = time.perf_counter()
    sim = request.app[SIM_KEY]
    service = request.match_info["service"]
    if service not in sim.catalog:
        return error_body(404, f"service {service} not found")
    if not request.app[THETA_KEY].has_instances(service):
        return error_body(409, NO_INSTANCES)
    try:
        body = await request.json()
    except ValueError:
        return error_body(400, "invalid JSON body")
    inputs = body.get("input") if isinstance(body, dict) else None
    if not isinstance(inputs, dict) or not isinstance(inputs.get("messages"), list):
        return error_body(400, "input.messages is required")
    try:
        wait = min(max(float(request.query.get("wait", "0")), 0.0), MAX_WAIT_S)
    except ValueError:
        return error_body(400, "wait must be a number of seconds")
    users = [m.get("content") for m in inputs["messages"]
             if isinstance(m, dict) and m.get("role") == "user"]
    asked = inputs.get("max_tokens")
    max_tokens = asked if isinstance(asked, int) and not isinstance(asked, bool) else 256
    plan = sim.plan(max_tokens)
    truth = sim.record(plan, received)
    early = _early(request, sim, plan, truth)
    if early is not None:
        truth.ended = time.perf_counter()
        return early
    pieces, _ = answer_for(str(users[-1]) if users else "", max_tokens,
                           wrong=plan.fault == "wrong")
    job = SimRequest("infer_" + secrets.token_hex(12), service, plan, truth, received, _iso(),
                     inputs, "".join(pieces))
    request.app[REQUESTS_KEY][job.id] = job
    deadline = received + wait
    while job.state(time.perf_counter()) in ("pending", "processing"):
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        await asyncio.sleep(min(left, 0.01))
    return envelope({"infer_requests": [job.document(time.perf_counter())]},
                    {"x-request-id": truth.request_id})


def _early(request: web.Request, sim: SimNetwork, plan: Plan, truth: Truth
           ) -> web.Response | None:
    headers = {"x-request-id": truth.request_id}
    if plan.fault == "http_5xx":
        if plan.fault_at % 2:
            return web.Response(status=502, text=NGINX_502, content_type="text/html",
                                headers=headers)
        return error_body(503, "service unavailable", **headers)
    if plan.fault == "rate_limit":
        return error_body(429, "rate limit exceeded",
                          **headers, **{"Retry-After": str(sim.profile.retry_after_s)})
    if plan.fault == "malformed":
        return web.Response(status=200, text=HTML_PAGE, content_type="text/html",
                            headers=headers)
    if plan.fault == "reset":
        try:
            cut(request, "reset")
        except ConnectionResetError:
            return web.Response(status=500)  # never sent: the connection is gone
    return None


async def status(request: web.Request) -> web.Response:
    job = request.app[REQUESTS_KEY].get(request.match_info["service"])
    if job is None:
        return error_body(404, "infer request not found")
    if job.plan.fault == "stream_error":
        return error_body(503, "service unavailable")
    return envelope({"infer_requests": [job.document(time.perf_counter())]})


async def services(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    listed = [{
        "id": "svc_" + alias.replace("-", "_"), "name": alias, "alias": alias,
        "state": "public", "template_id": "tpl_sim", "workload_type": "inference",
        "predictions": {"default": {"rank": 0, "func_type": "chat", "instructions":
                                    "chat completion", "cost": 1, "cost_divisor": 1_000_000,
                                    "input_vars": {"messages": {"type": "array",
                                                                "required": True}},
                                    "output_vars": {"message": {"type": "string"}}}},
        "default_prediction": "default", "min_vram": 16, "min_ram": 32, "executions": 0,
        "rank": i, "create_time": "2025-01-01T00:00:00.000Z",
        "update_time": "2025-01-01T00:00:00.000Z",
    } for i, alias in enumerate(sim.catalog)]
    return envelope({"services": listed,
                     "pagination": {"page": 1, "number": len(listed), "total": len(listed)}})


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """The OpenAI-compatible route: the OpenAI protocol, or the 409 when no instance serves."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    model = body.get("model") if isinstance(body, dict) else None
    if isinstance(model, str) and not request.app[THETA_KEY].has_instances(model):
        return error_body(409, NO_INSTANCES)
    return await openai_protocol.chat_completions(request)


def add_routes(app: web.Application) -> None:
    app[REQUESTS_KEY] = {}
    app[THETA_KEY] = ThetaState()
    app.router.add_post("/infer_request/chat/completions", chat_completions)
    # One path, two meanings, as in the real API: POST a service alias, GET a request id.
    app.router.add_post("/infer_request/{service}", submit)
    app.router.add_get("/infer_request/{service}", status)
    app.router.add_get("/service/list", services)
