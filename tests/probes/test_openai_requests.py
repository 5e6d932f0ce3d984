"""Kind `openai` for legacy /completions and /embeddings jobs: the request shapes OpenAI
documents (captured on the wire) and their outcomes against the reference network."""

from __future__ import annotations

import json

from aiohttp import web

from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import openai
from probes.session import SessionPool
from tests.conftest import quick_job
from tests.probes.capture import capture_server


async def probe(url: str, job, **kw: object):
    target = Target(network="sim", name="small", kind="openai", base_url=url,
                    model="sim-model", **kw)  # type: ignore[arg-type]
    pool = SessionPool()
    try:
        return await openai.run(target, job, pool.for_target(target))
    finally:
        await pool.close()


async def test_completions_request_is_the_documented_legacy_shape() -> None:
    async def completions(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunk = {"id": "c", "object": "text_completion", "model": "sim-model",
                 "choices": [{"index": 0, "text": " C.", "finish_reason": "stop"}]}
        await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async with capture_server({("POST", "/v1/completions"): completions}) as cap:
        job = quick_job("completion-short-v1")
        r = await probe(cap.url + "/v1", job)
    assert r.outcome is Outcome.OK, r.error
    (seen,) = cap.seen
    assert seen.path == "/v1/completions"
    body = seen.json
    assert "messages" not in body and body["prompt"].endswith(job.user)
    assert body["model"] == "sim-model" and body["stream"] is True
    assert body["max_tokens"] == job.max_tokens and body["temperature"] == 0.0
    assert body["seed"] == job.seed


async def test_completions_against_the_reference_network(start_sim) -> None:
    net = await start_sim()
    r = await probe(net.base_url, quick_job("completion-short-v1"))
    assert r.outcome is Outcome.OK, r.error
    assert r.ttft_s is not None and r.output_tokens


async def test_embeddings_request_is_the_documented_shape() -> None:
    async def embeddings(_r: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"object": "embedding", "index": 0, "embedding": [0.1, -0.2] * 8}],
            "model": "sim-model", "usage": {"prompt_tokens": 7, "total_tokens": 7}})

    async with capture_server({("POST", "/v1/embeddings"): embeddings}) as cap:
        job = quick_job("embed-v1")
        r = await probe(cap.url + "/v1", job)
    assert r.outcome is Outcome.OK, r.error
    (seen,) = cap.seen
    assert seen.path == "/v1/embeddings"
    assert seen.json["model"] == "sim-model" and seen.json["encoding_format"] == "float"
    (text,) = seen.json["input"]
    assert text.endswith(job.user)
    assert r.input_tokens == 7 and r.details["dimensions"] == 16


async def test_embeddings_outcomes_against_the_reference_network(start_sim) -> None:
    ok = await start_sim()
    assert (await probe(ok.base_url, quick_job("embed-v1"))).outcome is Outcome.OK
    wrong = await start_sim(p_wrong=1.0)  # an empty vector
    r = await probe(wrong.base_url, quick_job("embed-v1"))
    assert r.outcome is Outcome.WRONG_OUTPUT
    limited = await start_sim(p_rate_limit=1.0)
    r = await probe(limited.base_url, quick_job("embed-v1"))
    assert r.outcome is Outcome.RATE_LIMITED and r.retry_after_s == 5
