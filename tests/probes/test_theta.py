"""The Theta EdgeCloud probe (submit an inference request, poll it) against the reference on-demand
API: every outcome, the wait/poll timings and the request shape of Theta's own MCP client."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import theta
from probes.session import SessionPool
from tests.conftest import free_port, quick_job
from tests.probes.capture import capture_server

MODEL = "sim-llama-3.1-8b-instruct"  # the reference network's service alias


async def probe(url: str, job=None, model: str = MODEL, **kw: object):
    target = Target(network="theta", name="small", kind="theta", base_url=url, model=model,
                    **kw)  # type: ignore[arg-type]
    pool = SessionPool()
    try:
        return await theta.run(target, job or quick_job(deadline_s=2.0), pool.for_target(target))
    finally:
        await pool.close()


async def test_wait_holds_the_submit_until_the_answer(start_sim) -> None:
    net = await start_sim(ttft_s=0.1)
    r = await probe(net.url)
    assert r.outcome is Outcome.OK, r.error
    assert r.details["states"] == ["success"] and r.details["polls"] == 0
    assert r.details["wait_s"] == 2.0  # the job's deadline, under the 30 s default
    assert r.ttfb_s == pytest.approx(r.duration_s, abs=0.01) and r.duration_s >= 0.1
    assert r.details["request_id"].startswith("infer_")


async def test_without_wait_it_polls_through_pending_and_processing(start_sim) -> None:
    net = await start_sim(ttft_s=0.1, tokens_per_s=20.0)
    r = await probe(net.url + "?wait=0&poll=0.02")
    assert r.outcome is Outcome.OK, r.error
    assert r.details["states"] == ["pending", "processing", "success"]
    assert r.queue_s == pytest.approx(0.1, abs=0.05)
    assert r.ttfb_s < r.queue_s < r.duration_s


@pytest.mark.parametrize(("overrides", "outcome", "error_part"), [
    ({"p_eof": 1.0}, Outcome.JOB_FAILED, "worker lost"),
    ({"p_truncate": 1.0}, Outcome.MALFORMED, "without an output"),
    ({"p_stream_error": 1.0}, Outcome.HTTP_ERROR, "HTTP 503: service unavailable (3 polls"),
    ({"p_malformed": 1.0}, Outcome.MALFORMED, "not JSON"),
    ({"p_wrong": 1.0}, Outcome.WRONG_OUTPUT, "refusal"),
    ({"p_rate_limit": 1.0}, Outcome.RATE_LIMITED, "HTTP 429: rate limit exceeded"),
    ({"p_http_5xx": 1.0}, Outcome.HTTP_ERROR, "HTTP 50"),
    ({"p_stall": 1.0}, Outcome.TIMEOUT, "still pending"),
    ({"p_reset": 1.0}, Outcome.DISCONNECT, ""),
])
async def test_each_fault_is_classified(start_sim, overrides, outcome, error_part) -> None:
    net = await start_sim(**overrides)
    r = await probe(net.url + "?wait=0&poll=0.02", quick_job(deadline_s=0.5))
    assert r.outcome is outcome, r.error
    assert error_part in r.error
    if outcome is Outcome.RATE_LIMITED:
        assert r.retry_after_s == 5 and r.http_status == 429


async def test_a_service_the_network_does_not_serve_is_an_http_error(start_sim) -> None:
    net = await start_sim()
    r = await probe(net.url, model="llama-3-1-405b")
    assert r.outcome is Outcome.HTTP_ERROR and r.http_status == 404
    assert "service llama-3-1-405b not found" in r.error


async def test_refused_connection_is_connect_error() -> None:
    r = await probe(f"http://127.0.0.1:{free_port()}")
    assert r.outcome is Outcome.CONNECT_ERROR


async def test_request_shape_bearer_key_and_a_lost_request(monkeypatch) -> None:
    monkeypatch.setenv("THETA_TEST_KEY", "theta-secret")

    async def submit(_r: web.Request) -> web.Response:
        return web.json_response({"status": "success", "body": {"infer_requests": [
            {"id": "infer_1", "state": "pending"}]}})

    async def lost(_r: web.Request) -> web.Response:
        return web.json_response({"status": "error", "message": "not found"}, status=404)

    routes = {("POST", "/infer_request/{service}"): submit,
              ("GET", "/infer_request/{service}"): lost}
    async with capture_server(routes) as cap:
        job = quick_job(deadline_s=2.0)
        r = await probe(cap.url + "?poll=0.01&wait=7", job, model="llama-3-1-8b",
                        api_key_env="THETA_TEST_KEY")
    assert r.outcome is Outcome.JOB_FAILED and "lost request infer_1 (404)" in r.error
    submitted = cap.seen[0]
    assert submitted.path == "/infer_request/llama-3-1-8b"
    assert submitted.headers["Authorization"] == "Bearer theta-secret"
    assert "x-theta-api-key" not in {h.lower() for h in submitted.headers}
    sent = submitted.json["input"]
    assert sent["stream"] is False and sent["max_tokens"] == job.max_tokens
    assert sent["temperature"] == 0 and sent["messages"][-1]["role"] == "user"
    assert cap.seen[1].method == "GET" and cap.seen[1].path == "/infer_request/infer_1"
    assert "theta-secret" not in r.error


def test_the_answer_is_read_where_clients_find_it() -> None:
    assert theta.answer_of({"message": "42"}) == "42"
    assert theta.answer_of({"text": "42"}) == "42"
    assert theta.answer_of({"choices": [42]}) == '{"choices": [42]}'  # still checkable
    assert theta.answer_of({}) is None and theta.answer_of(None) is None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["status", "body", "infer_requests", "id", "state", "output",
                         "message", "text"]), inner, max_size=4), max_leaves=12)


@given(JSON_VALUES | st.sampled_from([{"body": {"infer_requests": [{"state": s}]}}
                                      for s in ("pending", "processing", "success", "error",
                                                "queued")]))
def test_any_answer_is_a_request_document_or_a_classified_failure(value: object) -> None:
    try:
        doc = theta.infer_request(json.dumps(value).encode())
    except theta._Failed as exc:
        assert exc.outcome is Outcome.MALFORMED
        return
    assert doc["state"] in ("pending", "processing", "success", "error")
    text = theta.answer_of(doc.get("output"))
    assert text is None or isinstance(text, str)


# -- No capacity: Theta's 409, on the submit route and on the OpenAI-compatible route ----------

async def test_no_instance_409_is_the_networks_capacity_on_both_routes(start_sim) -> None:
    from monitor.simulator.theta import THETA_KEY
    from probes import openai

    net = await start_sim()
    net._runner.app[THETA_KEY].instances[MODEL] = 0
    r = await probe(net.url)
    assert r.outcome is Outcome.HTTP_ERROR and r.http_status == 409
    assert r.error == "HTTP 409 (no capacity): No instances available - try again later"

    target = Target(network="theta-openai", name="large", kind="openai",
                    base_url=net.url + "/infer_request", model=MODEL)
    pool = SessionPool()
    try:
        job = quick_job(deadline_s=2.0)
        r = await openai.run(target, job, pool.for_target(target))
        assert r.outcome is Outcome.HTTP_ERROR and r.http_status == 409
        assert r.error == "HTTP 409 (no capacity): No instances available - try again later"
        net._runner.app[THETA_KEY].instances[MODEL] = 1  # an instance is free again
        r = await openai.run(target, job, pool.for_target(target))
        assert r.outcome is Outcome.OK, r.error
    finally:
        await pool.close()


@given(status=st.integers(400, 599), text=st.text(max_size=80))
def test_only_the_documented_answers_are_named_no_capacity(status: int, text: str) -> None:
    from probes.busy import NO_CAPACITY_ANSWERS, no_capacity

    documented = {(s, p) for s, p in NO_CAPACITY_ANSWERS}
    expected = any(status == s and p in text.lower() for s, p in documented)
    assert no_capacity(status, text) is expected
    assert not no_capacity(status, "Bad request: messages is required")
