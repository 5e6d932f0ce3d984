"""Buyer-side answers (probes.account): a refused key is `auth_error`, an account out of credits
or quota `quota_exhausted`, from every kind's status codes and from error objects in a stream;
everything else stays the network's failure."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.jobs import get_job
from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import PROBES, account, jobapi
from probes.base import status_outcome
from probes.session import SessionPool
from tests.conftest import quick_job
from tests.probes.capture import capture_server
from tests.probes.test_jobapi import probe as probe_jobapi
from tests.probes.test_openai import probe as probe_openai
from tests.probes.test_openai import raw_server

AUTH, QUOTA = Outcome.AUTH_ERROR, Outcome.QUOTA_EXHAUSTED
OPENAI_QUOTA = {"error": {"message": "You exceeded your current quota, please check your plan "
                          "and billing details.", "type": "insufficient_quota", "param": None,
                          "code": "insufficient_quota"}}


@pytest.mark.parametrize(("status", "body", "outcome"), [
    # OpenAI's 401 for a bad key; a 403 is a key without the permission.
    (401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                     "param": None, "code": "invalid_api_key"}}, AUTH),
    (403, {"error": {"code": 403, "message": "forbidden"}}, AUTH),
    # Chutes (chutesai/chutes-api api/invocation/router.py _invoke): quota spent, no balance.
    (402, {"detail": {"message": "Quota exceeded and account balance is $0.0, please pay with "
                      "fiat or send tao to 5F...", "quota_reset_timestamp": "2026-01-02T00:00:00"
                      "+00:00"}}, QUOTA),
    (402, {"error": {"code": 402, "message": "Insufficient credits"}}, QUOTA),  # OpenRouter
    (402, b"", QUOTA),
    # OpenAI's billing 429s: waiting does not fix them.
    (429, OPENAI_QUOTA, QUOTA),
    (429, {"error": {"message": "x", "type": "insufficient_quota",
                     "code": "project_spend_limit_exceeded"}}, QUOTA),
    (429, {"error": {"message": "x", "type": "tokens", "code": "credit_balance_exhausted"}},
     QUOTA),
    # A rate limit is the network's answer, however it is worded.
    (429, {"error": {"message": "Rate limit reached for requests", "type": "requests",
                     "code": "rate_limit_exceeded"}}, Outcome.RATE_LIMITED),
    (429, {"detail": "Infrastructure is at maximum capacity, try again later"},
     Outcome.RATE_LIMITED),  # Chutes' capacity 429
    (429, b"<html>Too Many Requests</html>", Outcome.RATE_LIMITED),
    (503, {"error": {"message": "No instances available", "type": "insufficient_quota"}},
     Outcome.HTTP_ERROR),
    (404, {"error": {"code": 402}}, Outcome.HTTP_ERROR),
])
def test_documented_answers(status: int, body: object, outcome: Outcome) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    got, text = status_outcome(status, raw)
    assert got is outcome
    assert text.startswith(f"HTTP {status}")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@given(status=st.integers(100, 599), body=st.binary(max_size=200) | JSON.map(
    lambda v: json.dumps(v).encode()))
def test_any_body_gives_an_outcome_and_only_account_statuses_are_the_buyers(
        status: int, body: bytes) -> None:
    got = account.buyer_side_status(status, body)
    if status not in (401, 402, 403, 429):
        assert got is None
    else:
        assert got in (AUTH, QUOTA) or (status == 429 and got is None)


@given(JSON)
def test_any_error_object_gives_an_outcome(error: object) -> None:
    assert account.buyer_side_error(error) in (None, AUTH, QUOTA)


@pytest.mark.parametrize(("error", "outcome"), [
    ({"code": 402, "message": "Insufficient credits"}, QUOTA),  # OpenRouter: code = status
    ({"code": 401, "message": "User not found."}, AUTH),
    ({"object": "error", "message": "x", "type": "BadRequestError", "param": None,
      "code": 400}, None),  # vLLM's error event: a 400 is the network's
    ({"code": "server_error", "message": "Provider disconnected"}, None),
    ({"type": "insufficient_quota", "message": "quota"}, QUOTA),
    ({"code": True}, None),
    ("Insufficient credits", None),
])
def test_error_objects(error: object, outcome: Outcome | None) -> None:
    assert account.buyer_side_error(error) is outcome


def sse(*events: object) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)


ROLE = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
TEXT = {"choices": [{"index": 0, "delta": {"content": "4"}}]}


@pytest.mark.parametrize(("error", "outcome"), [
    ({"code": 402, "message": "Insufficient credits"}, QUOTA),
    ({"code": 401, "message": "No auth credentials found"}, AUTH),
    ({"code": "server_error", "message": "Provider disconnected"}, Outcome.HTTP_ERROR),
])
async def test_error_event_in_a_200_stream(error: dict, outcome: Outcome) -> None:
    # OpenRouter's mid-stream error: the error object and finish_reason "error" in one chunk.
    failed = {"error": error, "choices": [{"index": 0, "delta": {"content": ""},
                                           "finish_reason": "error"}]}

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(sse(ROLE, TEXT, failed))
        return resp

    runner, url = await raw_server(handler)
    try:
        r = await probe_openai(url)
    finally:
        await runner.cleanup()
    assert r.outcome is outcome
    assert r.http_status == 200 and error["message"] in r.error


async def test_billing_error_in_a_200_json_body_is_quota() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(OPENAI_QUOTA)

    runner, url = await raw_server(handler)
    try:
        r = await probe_openai(url)
    finally:
        await runner.cleanup()
    assert r.outcome is QUOTA and "exceeded your current quota" in r.error


async def test_job_api_unfunded_deployment_and_refused_poll() -> None:
    answers = {"poll": lambda: web.json_response({"state": "INSUFFICIENT_FUNDS"})}

    async def submit(_r: web.Request) -> web.Response:
        return web.json_response({"job": "J1", "state": "DRAFT"})

    async def poll(_r: web.Request) -> web.Response:
        return answers["poll"]()

    routes = {("POST", "/api/jobs/list"): submit, ("GET", "/api/jobs/{job}"): poll,
              ("POST", "/api/jobs/{job}/stop"): submit}
    job = quick_job(deadline_s=2.0)
    async with capture_server(routes) as cap:
        r = await probe_jobapi(cap.url + "/api?market=m&poll=0.01&ipfs=Qm1", job)
    assert r.outcome is QUOTA and "INSUFFICIENT_FUNDS" in r.error
    assert jobapi.map_state("INSUFFICIENT_FUNDS") == jobapi.UNFUNDED

    # A poll refused for the key ends the run at once: no blip tolerance for our own key.
    answers["poll"] = lambda: web.json_response({"error": "unauthorized"}, status=401)
    async with capture_server(routes) as cap:
        r = await probe_jobapi(cap.url + "/api?market=m&poll=0.01&ipfs=Qm1", job)
    assert r.outcome is AUTH and r.http_status == 401 and "poll: HTTP 401" in r.error
    assert [s.path for s in cap.seen].count("/api/jobs/J1") == 1


@pytest.mark.parametrize(("answer", "status"), [("402", 402), ("429", 429)])
async def test_reference_network_out_of_credits(start_sim, answer: str, status: int) -> None:
    net = await start_sim(credits=0, quota_answer=answer)
    r = await probe_openai(net.base_url)
    assert (r.outcome, r.http_status) == (QUOTA, status)


@pytest.mark.parametrize(("kind", "path", "job"), [
    ("ollama", "", "chat-short-v1"), ("livepeer", "", "chat-short-v1"),
    ("livepeer", "", "image-small-v1"), ("jobapi", "/api?market=m&poll=0.02", "chat-short-v1"),
    ("http", "/health", "health-v1"),
])
async def test_every_kind_reads_a_refused_key_and_spent_credits(
        start_sim, monkeypatch, kind: str, path: str, job: str) -> None:
    net = await start_sim(api_key="sk-sim-right-0001", credits=0)

    async def probe(key: str) -> Outcome:
        monkeypatch.setenv("SIM_KEY", key)
        target = Target(network="sim", name="small", kind=kind, base_url=net.url + path,
                        model="sim-llama-3.1-8b-instruct", api_key_env="SIM_KEY")
        pool = SessionPool()
        try:
            return (await PROBES[kind].run(target, get_job(job), pool.for_target(target))).outcome
        finally:
            await pool.close()

    assert await probe("sk-sim-wrong-0002") is AUTH
    # A health check is not billed; every inference call is.
    assert await probe("sk-sim-right-0001") is (Outcome.OK if kind == "http" else QUOTA)
