"""The Ollama probe against the reference network and a capturing server: every outcome, the
documented request shape, server counters beside our timings."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import ollama
from probes.session import SessionPool
from tests.conftest import free_port, quick_job
from tests.probes.capture import capture_server

FAST = {"tokens_per_s": 2000.0}  # 256 tokens in ~0.13 s


async def probe(url: str, job=None, **kw: object):
    target = Target(network="sim", name="small", kind="ollama", base_url=url,
                    model="llama3.1:8b", **kw)  # type: ignore[arg-type]
    pool = SessionPool()
    try:
        return await ollama.run(target, job or quick_job(), pool.for_target(target))
    finally:
        await pool.close()


async def test_ok_run_keeps_server_counters_beside_our_timings(start_sim) -> None:
    net = await start_sim(tokens_per_s=1000.0)
    r = await probe(net.url, quick_job("chat-long-v1"))
    assert r.outcome is Outcome.OK, r.error
    assert r.kind == "ollama" and r.http_status == 200
    assert r.token_source == "usage" and r.output_tokens == r.details["eval_count"] == 256
    assert r.input_tokens == r.details["prompt_eval_count"] > 0
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(r.details[key], int)  # nanoseconds, as Ollama reports them
    assert r.details["done_reason"] == "length"
    assert r.details["server_tokens_per_s"] == pytest.approx(1000, rel=0.2)
    assert 0 < r.ttfb_s <= r.ttft_s < r.duration_s
    assert r.ttft_s == pytest.approx(0.05, abs=0.03)
    assert r.tokens_per_s == pytest.approx(1000, rel=0.2)
    assert r.served_model == "llama3.1:8b"


async def test_short_job_passes_its_check(start_sim) -> None:
    net = await start_sim()
    r = await probe(net.url + "/")  # a trailing slash is fine
    assert r.outcome is Outcome.OK and r.output_tokens == 1


@pytest.mark.parametrize(("overrides", "job", "outcome", "error_part"), [
    ({"p_eof": 1.0, **FAST}, "chat-long-v1", Outcome.DISCONNECT, "mid-body"),
    ({"p_reset": 1.0, **FAST}, "chat-long-v1", Outcome.DISCONNECT, ""),
    ({"p_truncate": 1.0, **FAST}, "chat-long-v1", Outcome.DISCONNECT, "done:true"),
    ({"p_stream_error": 1.0, **FAST}, "chat-long-v1", Outcome.HTTP_ERROR, "out of memory"),
    ({"p_malformed": 1.0, "malformed_mode": "chunk", **FAST}, "chat-long-v1",
     Outcome.MALFORMED, "undecodable NDJSON"),
    ({"p_malformed": 1.0, "malformed_mode": "html"}, "chat-short-v1", Outcome.MALFORMED,
     "expected an NDJSON stream, got a whole document (text/html)"),
    ({"p_wrong": 1.0}, "chat-short-v1", Outcome.WRONG_OUTPUT, "refusal"),
    ({"p_rate_limit": 1.0}, "chat-short-v1", Outcome.RATE_LIMITED, "HTTP 429"),
    ({"p_http_5xx": 1.0}, "chat-short-v1", Outcome.HTTP_ERROR, "HTTP 5"),
    ({"p_stall": 1.0, "stall_s": 1.0, **FAST}, "chat-long-v1", Outcome.STALLED, "no token"),
])
async def test_each_fault_is_classified(start_sim, overrides, job, outcome, error_part) -> None:
    net = await start_sim(**overrides)
    r = await probe(net.url, quick_job(job, stall_s=0.2, deadline_s=3.0))
    assert r.outcome is outcome, r.error
    assert error_part in r.error
    if outcome is Outcome.RATE_LIMITED:
        assert r.retry_after_s == 5


async def test_deadline_before_first_token_is_timeout(start_sim) -> None:
    net = await start_sim(ttft_s=1.0)
    r = await probe(net.url, quick_job(deadline_s=0.2))
    assert r.outcome is Outcome.TIMEOUT and r.duration_s == pytest.approx(0.2, abs=0.1)


async def test_refused_connection_is_connect_error() -> None:
    r = await probe(f"http://127.0.0.1:{free_port()}")
    assert r.outcome is Outcome.CONNECT_ERROR and r.http_status is None


def _line(obj: dict) -> bytes:
    return json.dumps(obj).encode() + b"\n"


async def _canned(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    for piece in ("4", "2"):
        await resp.write(_line({"model": "m", "created_at": "2025-01-01T00:00:00Z",
                                "message": {"role": "assistant", "content": piece},
                                "done": False}))
    await resp.write(_line({"model": "m", "created_at": "2025-01-01T00:00:00Z",
                            "message": {"role": "assistant", "content": ""},
                            "done_reason": "stop", "done": True}))
    await resp.write_eof()
    return resp


async def test_request_is_the_documented_api_chat_shape(monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_TEST_KEY", "sk-ollama-secret")
    async with capture_server({("POST", "/api/chat"): _canned}) as cap:
        job = quick_job()
        r = await probe(cap.url + "/api", job, api_key_env="OLLAMA_TEST_KEY")
    assert r.outcome is Outcome.OK, r.error
    (seen,) = cap.seen
    assert seen.path == "/api/chat"
    body = seen.json
    assert set(body) == {"model", "messages", "stream", "options"}
    assert body["model"] == "llama3.1:8b" and body["stream"] is True
    assert body["options"] == {"temperature": 0.0, "seed": job.seed,
                               "num_predict": job.max_tokens}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == job.user
    assert seen.headers["Authorization"] == "Bearer sk-ollama-secret"
    # no eval_count in the final object: tokens are counted from the content lines
    assert r.token_source == "counted" and r.output_tokens == 2


async def test_error_object_with_status_is_http_error_with_its_message() -> None:
    async def not_found(_r: web.Request) -> web.Response:
        return web.json_response({"error": 'model "llama3.1:8b" not found, try pulling it '
                                           "first"}, status=404)

    async with capture_server({("POST", "/api/chat"): not_found}) as cap:
        r = await probe(cap.url)
    assert r.outcome is Outcome.HTTP_ERROR and r.http_status == 404
    assert "not found, try pulling it first" in r.error


async def test_line_without_done_field_is_malformed() -> None:
    async def odd(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        await resp.write(b'{"response": "42"}\n')
        await resp.write_eof()
        return resp

    async with capture_server({("POST", "/api/chat"): odd}) as cap:
        r = await probe(cap.url)
    assert r.outcome is Outcome.MALFORMED and "done" in r.error


async def test_tags_and_version_are_served(start_sim) -> None:
    import aiohttp

    net = await start_sim()
    async with aiohttp.ClientSession() as s:
        async with s.get(net.url + "/api/tags") as resp:
            tags = await resp.json()
        async with s.get(net.url + "/api/version") as resp:
            version = await resp.json()
    assert tags["models"][0]["name"] == net.sim.model
    assert version["version"]
