"""The buyer's account at a reference network: the API key it requires and the credits that run
out (FaultProfile.api_key, .credits, .quota_answer), played before any protocol handler runs.

A request without `Authorization: Bearer <api_key>` is refused with 401. Once `credits`
billable requests (POSTs: inference calls and job submissions) were served, every further one
is refused as out of credits. Each answer comes in its protocol's error shape:

- OpenAI (/v1/...): 401 `{"error": {"message": "Incorrect API key provided.", "type":
  "invalid_request_error", "param": null, "code": "invalid_api_key"}}` (OpenAI's error codes
  guide). Out of credits, as `quota_answer` says: "402" is OpenRouter's `{"error": {"code":
  402, "message": ...}}` (openrouter.ai/docs, errors; AkashML and Chutes answer 402 too), "429"
  OpenAI's own `{"error": {"message": "You exceeded your current quota, ...", "type":
  "insufficient_quota", "param": null, "code": "insufficient_quota"}}`.
- Ollama, Livepeer and the job API: their own `error_body` with 401 and 402.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from monitor.simulator import jobapi, livepeer, ollama, openai
from monitor.simulator.faults import ErrorBody
from monitor.simulator.network import SimNetwork
from monitor.simulator.profiles import FaultProfile

UNMETERED = ("/sim/",)  # the simulator's own endpoints: no key, no credits
# Path prefixes -> the protocol whose error shape answers there (OpenAI's is the /v1 one).
ERROR_SHAPES: tuple[tuple[str, ErrorBody], ...] = (
    ("/api/jobs/", jobapi.error_body), ("/svc/", jobapi.error_body),
    ("/api/", ollama.error_body),
    ("/llm", livepeer.error_body), ("/legacy/", livepeer.error_body),
    ("/text-to-image", livepeer.error_body),
)


def refuse_key(path: str) -> web.Response:
    if path.startswith("/v1/"):
        return openai.error_response(401, "Incorrect API key provided.",
                                     "invalid_request_error", "invalid_api_key")
    return _error_body(path)(401, "unauthorized")


def refuse_credits(path: str, quota_answer: str) -> web.Response:
    if not path.startswith("/v1/"):
        return _error_body(path)(402, "insufficient balance: add credits to the account")
    if quota_answer == "429":
        return openai.error_response(
            429, "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota", "insufficient_quota")
    return web.json_response({"error": {"code": 402, "message": "Insufficient credits. Add more "
                                        "credits and retry the request."}}, status=402)


def _error_body(path: str) -> ErrorBody:
    for prefix, body in ERROR_SHAPES:
        if path.startswith(prefix):
            return body
    return ollama.error_body  # a plain {"error": "..."}


def metered(profile: FaultProfile) -> bool:
    """Whether the profile has an account to check at all (else no middleware is needed)."""
    return bool(profile.api_key) or profile.credits >= 0


def middleware(sim: SimNetwork) -> Middleware:
    """The account check for one simulated network's app (its credits are counted here)."""
    billed = 0

    @web.middleware
    async def account(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal billed
        profile = sim.profile
        if request.path.startswith(UNMETERED):
            return await handler(request)
        if profile.api_key and request.headers.get("Authorization") != f"Bearer {profile.api_key}":
            return refuse_key(request.path)
        if request.method == "POST" and profile.credits >= 0:
            if billed >= profile.credits:
                return refuse_credits(request.path, profile.quota_answer)
            billed += 1
        return await handler(request)

    return account
