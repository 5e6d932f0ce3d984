"""Wire details of particular networks, each against its reference network: the go-livepeer
gateway (no `[DONE]`, `usage`, its error shape and required fields), Chutes' capacity answers
and AkashML's 529 and `Inference-Id`. The sources are in each reference module's docstring."""

from __future__ import annotations

import json

import httpx
import pytest

from monitor.core.result import Outcome
from monitor.core.target import Target
from monitor.simulator.akashml import AKASHML_KEY
from monitor.simulator.chutes import CHUTES_KEY, chute_id
from probes import livepeer, openai
from probes.session import SessionPool
from tests.conftest import quick_job

MODEL = "sim-llama-3.1-8b-instruct"


async def probe(kind: str, url: str, job=None, model: str = MODEL):
    module = {"livepeer": livepeer, "openai": openai}[kind]
    target = Target(network="n", name="small", kind=kind, base_url=url, model=model)
    pool = SessionPool()
    try:
        return await module.run(target, job or quick_job(), pool.for_target(target))
    finally:
        await pool.close()


# -- the Livepeer gateway --------------------------------------------------------------------

async def test_gateway_stream_ends_after_finish_reason_without_done(start_sim) -> None:
    net = await start_sim(tokens_per_s=1000.0)
    body = livepeer.llm_body(quick_job(), quick_job().render(), MODEL)
    async with httpx.AsyncClient() as client:
        resp = await client.post(net.url + "/gateway/llm", json=body)
    events = [line.removeprefix("data: ") for line in resp.text.split("\n\n") if line]
    assert resp.headers["content-type"] == "text/event-stream"
    assert "[DONE]" not in resp.text
    first = json.loads(events[0])
    assert events[0].startswith('{"choices":[{"delta":{"content":')  # Go's struct order
    assert list(first) == ["choices", "created", "id", "model", "usage"]
    assert first["choices"][0]["finish_reason"] == ""
    last = json.loads(events[-1])
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens"] == len(events) - 1
    assert not any(h.lower().endswith("orchestrator") for h in resp.headers)

    r = await probe("livepeer", net.url + "/gateway", quick_job("chat-long-v1"))
    assert r.outcome is Outcome.OK, r.error
    assert r.token_source == "usage" and r.output_tokens == 256
    assert r.details["stream_format"] == "choices" and r.node is None


async def test_gateway_needs_every_field_the_probe_sends(start_sim) -> None:
    net = await start_sim()
    body = livepeer.llm_body(quick_job(), quick_job().render(), MODEL)
    async with httpx.AsyncClient() as client:
        for field in ("model", "messages", "stream", "max_tokens"):
            partial = {k: v for k, v in body.items() if k != field}
            resp = await client.post(net.url + "/gateway/llm", json=partial)
            assert resp.status_code == 400, field
            assert resp.text == '{"error":{"message":"missing required fields"}}\n'


@pytest.mark.parametrize(("overrides", "outcome", "error_part"), [
    ({"cold_start_s": 60.0}, Outcome.HTTP_ERROR, "HTTP 503: Service Unavailable Error"),
    ({"p_rate_limit": 1.0}, Outcome.HTTP_ERROR, "HTTP 503: Service Unavailable Error"),
    ({"p_stream_error": 1.0, "tokens_per_s": 1000.0}, Outcome.DISCONNECT, ""),
    ({"p_truncate": 1.0, "tokens_per_s": 1000.0}, Outcome.DISCONNECT,
     "before [DONE] or a finish_reason"),
])
async def test_gateway_failures(start_sim, overrides, outcome, error_part) -> None:
    net = await start_sim(**overrides)
    r = await probe("livepeer", net.url + "/gateway", quick_job("chat-long-v1"))
    assert r.outcome is outcome, r.error
    assert error_part in r.error


async def test_gateway_without_an_orchestrator_for_the_model_is_503(start_sim) -> None:
    net = await start_sim()
    r = await probe("livepeer", net.url + "/gateway", model="meta-llama/Llama-3.3-70B")
    assert r.outcome is Outcome.HTTP_ERROR and r.http_status == 503


# -- Chutes ------------------------------------------------------------------------------------

async def test_chutes_capacity_answers(start_sim) -> None:
    net = await start_sim()
    state = net._runner.app[CHUTES_KEY]
    base = net.url + "/chutes-llm/v1"
    r = await probe("openai", base)
    assert r.outcome is Outcome.OK, r.error

    state.instances[MODEL] = 0
    r = await probe("openai", base)
    assert r.outcome is Outcome.HTTP_ERROR and r.http_status == 503
    assert r.error == (f"HTTP 503 (no capacity): No instances available (yet) for chute_id="
                       f"'{chute_id(MODEL)}'")

    state.instances[MODEL] = 2
    state.at_capacity = True
    r = await probe("openai", base)
    assert r.outcome is Outcome.RATE_LIMITED
    assert r.error == ("HTTP 429 (no capacity): Infrastructure is at maximum capacity, try "
                       "again later")

    state.maintenance.add(MODEL)
    r = await probe("openai", base)
    assert r.outcome is Outcome.RATE_LIMITED and r.error == "HTTP 429: model is under maintenance"

    r = await probe("openai", base, model="deepseek-ai/DeepSeek-V3-0324-TEE")
    assert r.outcome is Outcome.HTTP_ERROR and r.http_status == 404
    assert "model not found: deepseek-ai/DeepSeek-V3-0324-TEE" in r.error


# -- AkashML ---------------------------------------------------------------------------------

async def test_akashml_529_and_inference_id(start_sim) -> None:
    net = await start_sim()
    base = net.url + "/akashml/v1"
    r = await probe("openai", base)
    assert r.outcome is Outcome.OK, r.error
    # The Inference-Id names the request, not a node: one a run must not count as node churn
    assert r.node is None and r.details["request_id"]

    net._runner.app[AKASHML_KEY].healthy_backends = 0
    r = await probe("openai", base)
    assert r.outcome is Outcome.HTTP_ERROR and r.http_status == 529
    assert r.error == "HTTP 529 (no capacity): No healthy backends"
