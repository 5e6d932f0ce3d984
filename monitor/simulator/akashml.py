"""AkashML's OpenAI-compatible API (api.akashml.com/v1), under `/akashml/v1`: the OpenAI reference
protocol plus what AkashML's docs add, an `Inference-Id` header on every answer and 529
"No healthy backends" when no provider behind it can serve the model.

The error body's shape is not documented; it is the OpenAI `{"error": {...}}` shape here (type
"overloaded"), so a probe must not depend on it beyond the status. The capacity state is
`app[AKASHML_KEY]` (tests set it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiohttp import web

from monitor.simulator import openai as openai_protocol

PREFIX = "/akashml/v1"


@dataclass
class AkashMLState:
    healthy_backends: int = 1


AKASHML_KEY: web.AppKey[AkashMLState] = web.AppKey("akashml", AkashMLState)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    if request.app[AKASHML_KEY].healthy_backends <= 0:
        return openai_protocol.error_response(529, "No healthy backends", "overloaded")
    return await openai_protocol.chat_completions(request)


async def _inference_id(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(PREFIX):
        response.headers["Inference-Id"] = str(uuid.uuid4())


def add_routes(app: web.Application) -> None:
    app[AKASHML_KEY] = AkashMLState()
    app.router.add_post(PREFIX + "/chat/completions", chat_completions)
    app.router.add_get(PREFIX + "/models", openai_protocol.models)
    app.on_response_prepare.append(_inference_id)
