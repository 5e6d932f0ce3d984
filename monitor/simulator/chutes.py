"""Chutes (Bittensor subnet 64): its public chute listing and its LLM gateway's capacity answers.

    GET  /chutes/                               the listing (api.chutes.ai/chutes/)
    POST /chutes-llm/v1/chat/completions        the LLM gateway (llm.chutes.ai/v1)

From chutesai/chutes-api: `list_chutes` (api/chute/router.py) answers anonymous callers with the
public chutes, `{total, page, limit, items, cord_refs}` (api/pagination.py), 25 a page by
default, each item a `ChuteResponse` (api/chute/response.py) whose `name` is the model id and
`standard_template` "vllm" for LLMs. The gateway (api/invocation/router.py) answers FastAPI's
`{"detail": ...}`: 404 "model not found: <model>", 429 "model is under maintenance" (a disabled
model), 503 "No instances available (yet) for chute_id='<id>'" (no instance running), and 429
"Infrastructure is at maximum capacity, try again later" (every instance busy: the
`infra_overload` error of api/chute/util.py turned into a 429 before the first chunk). A
request that passes those checks is answered by the OpenAI reference protocol, with the
`X-Chutes-InvocationID` header.

The capacity state is `app[CHUTES_KEY]` (tests set it): instances per model (1 unless set),
models under maintenance, and whether the infrastructure is at capacity.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from monitor.simulator import openai as openai_protocol
from monitor.simulator.openai import SIM_KEY

LLM_PREFIX = "/chutes-llm/v1"
DEFAULT_LIMIT = 25
# A public non-LLM chute, so that a listing reader must look at standard_template.
IMAGE_CHUTE = "chutes/FLUX.1-schnell"


@dataclass
class ChutesState:
    instances: dict[str, int] = field(default_factory=dict)  # model -> instances (default 1)
    maintenance: set[str] = field(default_factory=set)
    at_capacity: bool = False

    def instances_of(self, model: str) -> int:
        return self.instances.get(model, 1)


CHUTES_KEY: web.AppKey[ChutesState] = web.AppKey("chutes", ChutesState)


def chute_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://chutes.ai/{name}"))


def detail(status: int, message: str) -> web.Response:
    return web.json_response({"detail": message}, status=status)


def _item(name: str, template: str | None, instances: int, rank: int) -> dict[str, Any]:
    cid = chute_id(name)
    return {
        "chute_id": cid, "name": name, "tagline": "", "readme": "", "public": True,
        "version": "1", "tool_description": None,
        "slug": name.lower().replace("/", "-").replace(".", "-"),
        "standard_template": template, "cords": None, "jobs": [], "cord_ref_id": cid,
        "created_at": "2025-06-01T00:00:00Z", "updated_at": "2025-06-01T00:00:00Z",
        "supported_gpus": ["h100", "h200"], "node_selector": {"gpu_count": 1},
        "invocation_count": 1_000_000 - rank, "current_estimated_price": None,
        "instances": [{"instance_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{cid}/{i}")),
                       "active": True, "verified": True, "region": "n/a"}
                      for i in range(instances)],
        "logo_id": None, "openrouter": False, "chutes_version": "0.3.0", "revision": None,
        "concurrency": 8, "boost": None, "max_instances": None, "scaling_threshold": None,
        "shutdown_after_seconds": None, "preemptible": False, "logo": None,
        "hot": instances > 0,
    }


async def list_chutes(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    state = request.app[CHUTES_KEY]
    try:
        page = int(request.query.get("page", "0"))
        limit = int(request.query.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        return detail(422, "page and limit must be integers")
    chutes = [(m, "vllm", state.instances_of(m)) for m in sim.catalog]
    chutes.append((IMAGE_CHUTE, "diffusion", 1))
    start = page * limit
    items = [_item(name, template, n, start + i)
             for i, (name, template, n) in enumerate(chutes[start:start + limit])]
    return web.json_response({"total": len(chutes), "page": page, "limit": limit,
                              "items": items, "cord_refs": {}})


async def chat_completions(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    state = request.app[CHUTES_KEY]
    try:
        body = await request.json()  # aiohttp keeps the body: the OpenAI handler reads it again
    except ValueError:
        return detail(400, "invalid request JSON payload")
    model = body.get("model") if isinstance(body, dict) else None
    if model not in sim.catalog:
        return detail(404, f"model not found: {model}")
    if model in state.maintenance:
        return detail(429, "model is under maintenance")
    if state.instances_of(model) <= 0:
        return detail(503, f"No instances available (yet) for chute_id={chute_id(model)!r}")
    if state.at_capacity:
        return detail(429, "Infrastructure is at maximum capacity, try again later")
    return await openai_protocol.chat_completions(request)


async def _invocation_header(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(LLM_PREFIX) and response.status < 300:
        response.headers["X-Chutes-InvocationID"] = str(uuid.uuid4())


def add_routes(app: web.Application) -> None:
    app[CHUTES_KEY] = ChutesState()
    app.router.add_get("/chutes/", list_chutes)
    app.router.add_post(LLM_PREFIX + "/chat/completions", chat_completions)
    app.on_response_prepare.append(_invocation_header)
