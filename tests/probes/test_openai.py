"""The OpenAI streaming probe against real loopback servers: every outcome, timing rules,
token accounting, quirks and secrets."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web

from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import base, openai, streaming
from probes.session import SessionPool
from tests.conftest import free_port, quick_job


def target_for(url: str, **kw: object) -> Target:
    return Target(network="sim", name="small", kind="openai", base_url=url,
                  model="sim-model", **kw)  # type: ignore[arg-type]


async def probe(url: str, job=None, **kw: object):
    pool = SessionPool()
    target = target_for(url, **kw)
    try:
        return await openai.run(target, job or quick_job(), pool.for_target(target))
    finally:
        await pool.close()


async def truth(net, result) -> dict:
    async with aiohttp.ClientSession() as s, s.get(
        f"{net.url}/sim/truth/{result.details['request_id']}"
    ) as r:
        return await r.json()


@pytest.mark.timing
async def test_ok_run_records_timings_tokens_and_served_model(start_sim) -> None:
    net = await start_sim()
    r = await probe(net.base_url, quick_job("chat-long-v1"))
    assert r.outcome is Outcome.OK, r.error
    assert r.http_status == 200
    assert r.token_source == "usage"
    assert r.output_tokens == 256  # truncated at max_tokens, as usage reports
    assert r.served_model == "sim-model" and r.system_fingerprint == "fp_sim0001"
    assert 0 < r.ttfb_s < r.ttft_s < r.duration_s
    assert r.tokens_per_s == pytest.approx(200, rel=0.05)
    assert r.max_gap_s is not None and r.max_gap_s < 0.05
    assert r.connect_s is not None and r.connect_s < 0.5
    assert r.prompt_hash == quick_job("chat-long-v1").prompt_hash


@pytest.mark.timing
async def test_ttft_is_the_first_generated_token_not_the_role_chunk(start_sim) -> None:
    # The role-only chunk is sent at once; the first token 300 ms later. A probe that stamps
    # the role chunk would report ~0 ms.
    net = await start_sim(ttft_s=0.3)
    r = await probe(net.base_url)
    assert r.outcome is Outcome.OK
    assert r.ttfb_s < 0.1
    assert r.ttft_s == pytest.approx(0.3, abs=0.03)


@pytest.mark.timing
async def test_ttft_matches_injected_ground_truth_within_milliseconds(start_sim) -> None:
    net = await start_sim(ttft_s=0.12)
    errors = []
    for _ in range(5):
        r = await probe(net.base_url)
        t = await truth(net, r)
        errors.append(abs(r.ttft_s - t["ttft_s"]))
    # Loopback and one stream: a wrong clock or a wrong first-token rule is off by >= 10 ms.
    assert max(errors) < 0.005, errors


async def test_missing_usage_falls_back_to_counting_content_deltas(start_sim) -> None:
    net = await start_sim(send_usage=False)
    r = await probe(net.base_url, quick_job("json-v1"))
    assert r.outcome is Outcome.OK
    assert r.token_source == "counted"
    assert r.output_tokens == 15  # the reference answer's pieces, never max_tokens (48)


async def test_finish_reason_then_eof_without_done_is_complete(start_sim) -> None:
    net = await start_sim(send_done=False)
    r = await probe(net.base_url)
    assert r.outcome is Outcome.OK


@pytest.mark.parametrize(
    ("overrides", "outcome", "error_part"),
    [
        ({"p_wrong": 1.0}, Outcome.WRONG_OUTPUT, "refusal"),
        ({"p_http_5xx": 1.0}, Outcome.HTTP_ERROR, "HTTP 5"),
        ({"p_rate_limit": 1.0, "retry_after_s": 7}, Outcome.RATE_LIMITED, "429"),
        ({"p_stream_error": 1.0}, Outcome.HTTP_ERROR, "CUDA out of memory"),
        ({"p_malformed": 1.0, "malformed_mode": "html"}, Outcome.MALFORMED, "not SSE"),
        ({"p_malformed": 1.0, "malformed_mode": "chunk"}, Outcome.MALFORMED, "undecodable"),
        ({"p_eof": 1.0}, Outcome.DISCONNECT, ""),
        ({"p_reset": 1.0}, Outcome.DISCONNECT, ""),
        ({"p_truncate": 1.0}, Outcome.DISCONNECT, "before [DONE]"),
        ({"cold_start_s": 60.0}, Outcome.HTTP_ERROR, "Service Initializing"),
    ],
)
async def test_each_fault_is_classified(start_sim, overrides, outcome, error_part) -> None:
    net = await start_sim(tokens_per_s=2000.0, **overrides)
    r = await probe(net.base_url, quick_job("chat-long-v1"))
    assert r.outcome is outcome, (r.outcome, r.error)
    assert error_part in r.error
    if outcome is Outcome.RATE_LIMITED:
        assert r.retry_after_s == 7
    if outcome is Outcome.DISCONNECT:
        assert r.output_tokens is not None and r.output_tokens < 256


async def test_deadline_before_first_token_is_timeout(start_sim) -> None:
    net = await start_sim(ttft_s=2.0)
    r = await probe(net.base_url, quick_job(deadline_s=0.3))
    assert r.outcome is Outcome.TIMEOUT
    assert r.duration_s == pytest.approx(0.3, abs=0.1)


async def test_gap_between_tokens_beyond_stall_limit_is_stalled(start_sim) -> None:
    net = await start_sim(p_stall=1.0, stall_s=3.0)
    r = await probe(net.base_url, quick_job("chat-long-v1", stall_s=0.3))
    assert r.outcome is Outcome.STALLED
    assert r.ttft_s is not None
    assert r.duration_s < 2.0  # detected at the stall limit, not at the end of the pause


async def test_refused_connection_is_connect_error() -> None:
    r = await probe(f"http://127.0.0.1:{free_port()}/v1")
    assert r.outcome is Outcome.CONNECT_ERROR
    assert r.http_status is None


async def test_node_churn_window_refuses_connections(start_sim) -> None:
    net = await start_sim()
    await net.go_down()
    r = await probe(net.base_url)
    assert r.outcome is Outcome.CONNECT_ERROR
    await net.come_up()
    assert (await probe(net.base_url)).outcome is Outcome.OK


async def test_stream_options_rejected_is_retried_once_and_remembered(start_sim) -> None:
    net = await start_sim(reject_stream_options=True)
    pool = SessionPool()
    target = target_for(net.base_url)
    session = pool.for_target(target)
    try:
        first = await openai.run(target, quick_job(), session)
        second = await openai.run(target, quick_job(), session)
    finally:
        await pool.close()
    assert first.outcome is Outcome.OK and first.token_source == "counted"
    assert first.details.get("stream_options") == "rejected"
    assert openai.NO_STREAM_OPTIONS in session.quirks
    assert second.outcome is Outcome.OK
    assert "stream_options" not in second.details  # not asked again: no second rejection


async def test_response_over_the_size_cap_ends_the_run(start_sim, monkeypatch) -> None:
    monkeypatch.setattr(streaming, "MAX_RESPONSE_BYTES", 4096)
    net = await start_sim()
    r = await probe(net.base_url, quick_job("chat-long-v1"))
    assert r.outcome is Outcome.MALFORMED
    assert "cap" in r.error


async def raw_server(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"


async def test_server_holding_the_stream_open_after_done_does_not_block() -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunk = {"choices": [{"index": 0, "delta": {"content": "42"}, "finish_reason": "stop"}]}
        await resp.write(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode())
        await asyncio.wait_for(release.wait(), 30)
        return resp

    runner, url = await raw_server(handler)
    try:
        r = await asyncio.wait_for(probe(url), 5)
    finally:
        release.set()
        await runner.cleanup()
    assert r.outcome is Outcome.OK
    assert r.duration_s < 1.0


async def test_json_error_in_a_200_response_is_http_error() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "model overloaded"}})

    runner, url = await raw_server(handler)
    try:
        r = await probe(url)
    finally:
        await runner.cleanup()
    assert r.outcome is Outcome.HTTP_ERROR
    assert "model overloaded" in r.error


async def test_api_key_is_sent_but_never_appears_in_the_error(monkeypatch) -> None:
    seen = {}

    async def handler(request: web.Request) -> web.Response:
        seen["auth"] = request.headers.get("Authorization")
        message = f"Incorrect API key provided: {request.headers['Authorization']}"
        return web.json_response({"error": {"message": message}}, status=401)

    monkeypatch.setenv("SIM_KEY_FOR_TEST", "sk-test-secret-123456")
    runner, url = await raw_server(handler)
    try:
        r = await probe(url, api_key_env="SIM_KEY_FOR_TEST")
    finally:
        await runner.cleanup()
    assert seen["auth"] == "Bearer sk-test-secret-123456"
    assert r.outcome is Outcome.AUTH_ERROR and r.http_status == 401
    assert "sk-test-secret" not in json.dumps(r.to_dict())


def test_request_body_is_the_documented_chat_shape() -> None:
    job = quick_job()
    rendered = job.render(nonce="abc")
    body = openai.request_body(job, rendered, "m", stream_options=True)
    assert body == {
        "model": "m",
        "messages": [{"role": "system", "content": f"[run abc] {job.system}"},
                     {"role": "user", "content": job.user}],
        "max_tokens": 16, "temperature": 0.0, "seed": 1234, "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_classify_maps_transport_errors() -> None:
    assert base.classify(ConnectionResetError(), None)[0] is Outcome.DISCONNECT
    assert base.classify(aiohttp.ServerDisconnectedError(), None)[0] is Outcome.DISCONNECT


@pytest.mark.parametrize("content,status", [
    ([{"type": "text", "text": "Say hi."}], 200),  # GuideLLM's and the SDK's content parts
    ([{"type": "image_url", "image_url": {"url": "data:,"}}], 400),  # no text to answer
])
async def test_reference_network_reads_content_parts(start_sim, content: object,
                                                     status: int) -> None:
    net = await start_sim()
    body = {"model": "m", "stream": True, "max_tokens": 5,
            "messages": [{"role": "user", "content": content}]}
    async with aiohttp.ClientSession() as s, \
            s.post(net.base_url + "/chat/completions", json=body) as r:
        text = await r.text()
    assert r.status == status, text
    if status == 200:
        assert text.rstrip().endswith("data: [DONE]")


async def test_the_reference_network_names_its_nodes_and_churns_through_them(start_sim
                                                                             ) -> None:
    """Each answer names the node that served it; nodes leave and new ones join, so a buyer
    sees how many machines stood behind the network (the report's `nodes`)."""
    net = await start_sim(nodes=3, node_lifetime_s=0.3, ttft_s=0.01)
    seen: list[str] = []
    for _ in range(12):
        r = await probe(net.base_url)
        assert r.outcome is Outcome.OK and r.node is not None
        seen.append(r.node)
        await asyncio.sleep(0.05)
    assert len(set(seen)) > 3  # more nodes over time than at any one moment
    assert len(set(seen[:3])) <= 3
    quiet = await start_sim()  # a profile without nodes names none, like most gateways
    assert (await probe(quiet.base_url)).node is None
