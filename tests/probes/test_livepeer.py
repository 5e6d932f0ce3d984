"""The Livepeer probe: /llm in both stream formats, /text-to-image, every outcome, and the
request shapes ai-worker documents."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import livepeer
from probes.session import SessionPool
from tests.conftest import free_port, quick_job
from tests.probes.capture import capture_server

FAST = {"tokens_per_s": 2000.0}
MODEL = "sim-llama-3.1-8b-instruct"  # the reference network's pipeline model


async def probe(url: str, job=None, model: str = MODEL, **kw: object):
    target = Target(network="livepeer", name="small", kind="livepeer", base_url=url,
                    model=model, **kw)  # type: ignore[arg-type]
    pool = SessionPool()
    try:
        return await livepeer.run(target, job or quick_job(), pool.for_target(target))
    finally:
        await pool.close()


@pytest.mark.parametrize(("suffix", "fmt", "source"), [
    ("", "choices", "usage"),
    ("/legacy", "chunk", "counted"),
])
async def test_llm_ok_in_both_stream_formats(start_sim, suffix, fmt, source) -> None:
    net = await start_sim(tokens_per_s=1000.0)
    r = await probe(net.url + suffix, quick_job("chat-long-v1"))
    assert r.outcome is Outcome.OK, r.error
    assert r.details["stream_format"] == fmt
    assert r.token_source == source and r.output_tokens == 256
    assert 0 < r.ttfb_s <= r.ttft_s < r.duration_s
    assert r.tokens_per_s == pytest.approx(1000, rel=0.2)
    assert r.node and r.node.startswith("https://orch-")  # orchestrator header recorded


@pytest.mark.parametrize(("overrides", "job", "outcome", "error_part"), [
    ({"p_eof": 1.0, **FAST}, "chat-long-v1", Outcome.DISCONNECT, ""),
    ({"p_reset": 1.0, **FAST}, "chat-long-v1", Outcome.DISCONNECT, ""),
    ({"p_truncate": 1.0, **FAST}, "chat-long-v1", Outcome.DISCONNECT, "[DONE]"),
    ({"p_stream_error": 1.0, **FAST}, "chat-long-v1", Outcome.HTTP_ERROR, "CUDA out of memory"),
    ({"p_malformed": 1.0, "malformed_mode": "chunk", **FAST}, "chat-long-v1",
     Outcome.MALFORMED, "undecodable"),
    ({"p_malformed": 1.0, "malformed_mode": "html"}, "chat-short-v1", Outcome.MALFORMED,
     "not SSE"),
    ({"p_wrong": 1.0}, "chat-short-v1", Outcome.WRONG_OUTPUT, "refusal"),
    ({"p_rate_limit": 1.0}, "chat-short-v1", Outcome.RATE_LIMITED, "HTTP 429"),
    ({"p_http_5xx": 1.0}, "chat-short-v1", Outcome.HTTP_ERROR, "HTTP 5"),
    ({"p_stall": 1.0, "stall_s": 1.0, **FAST}, "chat-long-v1", Outcome.STALLED, "no token"),
])
@pytest.mark.parametrize("suffix", ["", "/legacy"])
async def test_llm_faults_are_classified(start_sim, suffix, overrides, job, outcome,
                                         error_part) -> None:
    net = await start_sim(**overrides)
    r = await probe(net.url + suffix, quick_job(job, stall_s=0.2, deadline_s=3.0))
    assert r.outcome is outcome, r.error
    assert error_part in r.error


async def test_llm_deadline_and_connect_error(start_sim) -> None:
    net = await start_sim(ttft_s=1.0)
    r = await probe(net.url, quick_job(deadline_s=0.2))
    assert r.outcome is Outcome.TIMEOUT
    r = await probe(f"http://127.0.0.1:{free_port()}")
    assert r.outcome is Outcome.CONNECT_ERROR


async def test_wrong_pipeline_model_is_a_400_with_the_runner_message(start_sim) -> None:
    net = await start_sim()
    r = await probe(net.url, model="meta-llama/Meta-Llama-3.1-8B-Instruct")
    assert r.outcome is Outcome.HTTP_ERROR and r.http_status == 400
    assert "pipeline configured with" in r.error


async def test_image_ok_records_image_details(start_sim) -> None:
    net = await start_sim()
    r = await probe(net.url, quick_job("image-small-v1"))
    assert r.outcome is Outcome.OK, r.error
    assert r.details == {"images": 1, "nsfw": 0, "seed": quick_job("image-small-v1").seed}
    assert 0 < r.ttfb_s <= r.duration_s and r.ttft_s is None


@pytest.mark.parametrize(("overrides", "outcome", "error_part"), [
    ({"p_eof": 1.0}, Outcome.DISCONNECT, ""),
    ({"p_reset": 1.0}, Outcome.DISCONNECT, ""),
    ({"p_truncate": 1.0}, Outcome.DISCONNECT, "mid-body"),
    ({"p_stream_error": 1.0}, Outcome.HTTP_ERROR, "GPU out of memory"),
    ({"p_malformed": 1.0, "malformed_mode": "chunk"}, Outcome.MALFORMED, "images[].url"),
    ({"p_malformed": 1.0, "malformed_mode": "html"}, Outcome.MALFORMED, "not JSON"),
    ({"p_wrong": 1.0}, Outcome.WRONG_OUTPUT, "images"),
    ({"p_rate_limit": 1.0}, Outcome.RATE_LIMITED, "HTTP 429"),
    ({"p_http_5xx": 1.0}, Outcome.HTTP_ERROR, "HTTP 5"),
    ({"p_stall": 1.0, "stall_s": 1.0}, Outcome.TIMEOUT, "no response"),
])
async def test_image_faults_are_classified(start_sim, overrides, outcome, error_part) -> None:
    net = await start_sim(**overrides)
    # a short deadline only where the deadline is the point: a loaded CI machine can take
    # longer than 0.4 s to answer a fault it serves at once
    deadline_s = 0.4 if outcome is Outcome.TIMEOUT else 10.0
    r = await probe(net.url, quick_job("image-small-v1", deadline_s=deadline_s))
    assert r.outcome is outcome, r.error
    assert error_part in r.error


async def _sse(request: web.Request, events: list[bytes]) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for event in events:
        await resp.write(event)
    await resp.write_eof()
    return resp


async def test_llm_request_is_the_documented_shape(monkeypatch) -> None:
    monkeypatch.setenv("LIVEPEER_TEST_KEY", "lp-secret-token")

    async def llm(request: web.Request) -> web.StreamResponse:
        chunk = {"choices": [{"delta": {"role": "assistant", "content": "42"}, "index": 0,
                              "finish_reason": "stop"}],
                 "tokens_used": {"prompt_tokens": 9, "completion_tokens": 1,
                                 "total_tokens": 10}, "id": "x", "model": "m", "created": 1}
        return await _sse(request, [b"data: " + json.dumps(chunk).encode() + b"\n\n",
                                    b"data: [DONE]\n\n"])

    async with capture_server({("POST", "/llm"): llm}) as cap:
        job = quick_job()
        r = await probe(cap.url, job, api_key_env="LIVEPEER_TEST_KEY")
    assert r.outcome is Outcome.OK, r.error
    (seen,) = cap.seen
    assert seen.path == "/llm"
    assert seen.json == {
        "model": MODEL,
        "messages": [{"role": "system", "content": seen.json["messages"][0]["content"]},
                     {"role": "user", "content": job.user}],
        "max_tokens": job.max_tokens, "temperature": 0.0, "stream": True,
    }
    assert seen.headers["Authorization"] == "Bearer lp-secret-token"
    assert r.input_tokens == 9 and r.output_tokens == 1 and r.token_source == "usage"


async def test_done_flag_ends_a_chunk_stream() -> None:
    async def llm(request: web.Request) -> web.StreamResponse:
        return await _sse(request, [b'data: {"chunk": "4"}\n\n', b'data: {"chunk": "2"}\n\n',
                                    b'data: {"chunk": "", "done": true}\n\n'])

    async with capture_server({("POST", "/llm"): llm}) as cap:
        r = await probe(cap.url)
    assert r.outcome is Outcome.OK, r.error
    assert r.output_tokens == 2 and r.details["stream_format"] == "chunk"


async def test_image_request_is_the_documented_shape() -> None:
    async def t2i(_r: web.Request) -> web.Response:
        return web.json_response({"images": [{"url": "https://x/1.png", "seed": 7,
                                              "nsfw": True}]})

    async with capture_server({("POST", "/text-to-image"): t2i}) as cap:
        job = quick_job("image-small-v1")
        r = await probe(cap.url, job, model="ByteDance/SDXL-Lightning")
    # The safety checker blanks a flagged image: a black square for a red cube is wrong.
    assert r.outcome is Outcome.WRONG_OUTPUT and "safety checker" in r.error
    assert r.details["nsfw"] == 1
    (seen,) = cap.seen
    assert seen.json == {"model_id": "ByteDance/SDXL-Lightning", "prompt": seen.json["prompt"],
                         "width": 512, "height": 512, "num_inference_steps": 4,
                         "guidance_scale": 2.0, "safety_check": True, "seed": job.seed}
    assert job.user in seen.json["prompt"]


async def test_runner_error_detail_message_is_reported() -> None:
    async def t2i(_r: web.Request) -> web.Response:
        return web.json_response({"detail": {"msg": "Pipeline error."}}, status=500)

    async with capture_server({("POST", "/text-to-image"): t2i}) as cap:
        r = await probe(cap.url, quick_job("image-small-v1"))
    assert r.outcome is Outcome.HTTP_ERROR and "Pipeline error." in r.error
