"""The job-API probe (Nosana: deployments with an inline definition, or the credits jobs API with
a pinned one) against the reference job network: every outcome, queue/run/ready timings, the
state map and the request shapes of Nosana's SDK and deployment manager."""

from __future__ import annotations

import pytest
from aiohttp import web

from monitor.core.result import Outcome
from monitor.core.target import Target
from monitor.simulator.jobapi import JOBS_KEY, pin
from probes import jobapi
from probes.session import SessionPool
from tests.conftest import free_port, quick_job
from tests.probes.capture import capture_server

# NVIDIA 3060 market address (nosana-sdk examples/jobs/api-jobs.ts)
MARKET = "7AtiXMSH6R1jjBxrcYjehCkkSF7zvYWte63gwEDBcGHq"
QUERY = f"?market={MARKET}&poll=0.02"


async def probe(url: str, job=None, **kw: object):
    target = Target(network="nosana", name="small", kind="jobapi", base_url=url,
                    model="llama3.1:8b", **kw)  # type: ignore[arg-type]
    pool = SessionPool()
    try:
        return await jobapi.run(target, job or quick_job(deadline_s=2.0), pool.for_target(target))
    finally:
        await pool.close()


def nosana(net):
    return net._runner.app[JOBS_KEY]


def credits_query(net, job=None) -> str:
    """Pin the definition the probe would send inline; the credits route names it by CID."""
    job = job or quick_job()
    st = jobapi.settings(Target(network="n", name="t", kind="jobapi",
                                base_url="http://x/api" + QUERY, model="llama3.1:8b"), job)
    cid = pin(net._runner.app, jobapi.job_definition(job, job.render(), "llama3.1:8b", st))
    return f"{QUERY}&ipfs={cid}&ipfs_gateway={net.url}/ipfs/"


async def test_deployment_ok_measures_queue_run_and_result(start_sim) -> None:
    net = await start_sim(ttft_s=0.1)  # the reference job network queues for ttft_s
    r = await probe(net.url + "/api" + QUERY)
    assert r.outcome is Outcome.OK, r.error
    assert r.kind == "jobapi" and r.http_status == 200
    assert r.details["states"] == ["QUEUED", "RUNNING", "COMPLETED"]
    assert r.queue_s == pytest.approx(0.1, abs=0.05)
    assert r.details["run_s"] == pytest.approx(0.05, abs=0.05)
    (deployment,) = nosana(net).deployments.values()
    assert r.details["deployment"] == deployment.id
    assert r.details["job_id"] == deployment.job.address
    assert r.node and len(r.node) == 44  # the node's address, once it picked the job up
    assert "stop_status" not in r.details  # a SIMPLE deployment stops by itself
    assert 0 < r.ttfb_s < r.queue_s < r.duration_s


async def test_credits_job_reads_its_result_from_ipfs(start_sim) -> None:
    net = await start_sim(ttft_s=0.05)
    r = await probe(net.url + "/api" + credits_query(net))
    assert r.outcome is Outcome.OK, r.error
    assert r.details["states"] == ["QUEUED", "RUNNING", "COMPLETED"]
    assert "deployment" not in r.details and r.details["result_fetch_s"] < 0.5
    assert r.details["job_id"] in nosana(net).jobs


@pytest.mark.parametrize("mode", ["deployment", "credits"])
@pytest.mark.parametrize(("overrides", "outcome", "error_part"), [
    ({"p_eof": 1.0}, Outcome.JOB_FAILED, "STOPPED on node"),
    ({"p_reset": 1.0}, Outcome.JOB_FAILED, "exit code 137"),
    ({"p_truncate": 1.0}, Outcome.MALFORMED, "opStates"),
    ({"p_stream_error": 1.0}, Outcome.HTTP_ERROR, "3 polls in a row"),
    ({"p_malformed": 1.0, "malformed_mode": "chunk"}, Outcome.MALFORMED, "unknown job state"),
    ({"p_malformed": 1.0, "malformed_mode": "html"}, Outcome.MALFORMED, "submit: 2xx body"),
    ({"p_wrong": 1.0}, Outcome.WRONG_OUTPUT, "refusal"),
    ({"p_rate_limit": 1.0}, Outcome.RATE_LIMITED, "submit: HTTP 429"),
    ({"p_http_5xx": 1.0}, Outcome.HTTP_ERROR, "submit: HTTP 5"),
    ({"p_stall": 1.0}, Outcome.TIMEOUT, "still QUEUED"),
])
async def test_each_fault_is_classified(start_sim, mode, overrides, outcome, error_part) -> None:
    net = await start_sim(**overrides)
    # Short only where the outcome is the deadline: elsewhere a loaded machine must not turn
    # the fault into a timeout.
    job = quick_job(deadline_s=0.4 if outcome is Outcome.TIMEOUT else 3.0)
    query = QUERY if mode == "deployment" else credits_query(net, job)
    r = await probe(net.url + "/api" + query, job)
    assert r.outcome is outcome, r.error
    assert error_part in r.error
    if outcome is Outcome.RATE_LIMITED:
        assert r.retry_after_s == 5 and r.http_status == 429


async def test_a_job_the_probe_gives_up_on_is_stopped(start_sim) -> None:
    net = await start_sim(p_stall=1.0)
    r = await probe(net.url + "/api" + QUERY, quick_job(deadline_s=0.2))
    assert r.outcome is Outcome.TIMEOUT and r.details["stop_status"] == 200
    (deployment,) = nosana(net).deployments.values()
    assert deployment.stopping and deployment.job.stopped_at is not None

    r = await probe(net.url + "/api" + credits_query(net), quick_job(deadline_s=0.2))
    assert r.outcome is Outcome.TIMEOUT and r.details["stop_status"] == 200
    assert nosana(net).jobs[r.details["job_id"]].stopped_at is not None


async def test_service_job_ok_once_its_endpoint_answers(start_sim) -> None:
    net = await start_sim()
    r = await probe(net.url + "/api" + QUERY + "&serve=1")
    assert r.outcome is Outcome.OK, r.error
    assert r.details["states"] == ["QUEUED", "RUNNING"]
    (deployment,) = nosana(net).deployments.values()
    assert r.details["ready_s"] < 0.1 and r.details["endpoint"] == f"{net.url}/svc/{deployment.id}"
    assert deployment.stopping  # not left running


async def test_running_but_service_initializing_is_caught(start_sim) -> None:
    net = await start_sim(cold_start_s=5.0)
    r = await probe(net.url + "/api" + QUERY + "&serve=1", quick_job(deadline_s=0.4))
    assert r.outcome is Outcome.TIMEOUT
    assert "RUNNING, but its endpoint never answered 2xx" in r.error
    assert r.details["endpoint_last"] == "HTTP 503: Service Initializing"
    assert r.queue_s is not None and "ready_s" not in r.details


async def test_a_market_slug_is_refused_by_the_api(start_sim) -> None:
    net = await start_sim()
    r = await probe(net.url + "/api?market=nvidia-4090&poll=0.02")
    assert r.outcome is Outcome.HTTP_ERROR and r.http_status == 400
    assert "market must be a market address" in r.error


async def test_refused_connection_is_connect_error() -> None:
    r = await probe(f"http://127.0.0.1:{free_port()}/api{QUERY}")
    assert r.outcome is Outcome.CONNECT_ERROR


def test_state_map_is_explicit() -> None:
    m = jobapi.map_state
    assert [m(s) for s in ("QUEUED", "RUNNING", "COMPLETED", "STOPPED")] == [
        "queued", "running", "done", "failed"]
    assert [m(n) for n in (0, 1, 2, 3)] == ["queued", "running", "done", "failed"]
    assert m("running") == "running"  # names are case-insensitive
    for status in ("DRAFT", "STARTING"):
        assert m(status) == "queued"
    for status in ("ERROR", "STOPPING", "ARCHIVED"):
        assert m(status) == "failed"
    assert m("WHATEVER") is None and m(7) is None and m(True) is None and m(None) is None


async def test_deployment_request_shapes_and_inline_result(monkeypatch) -> None:
    monkeypatch.setenv("NOSANA_TEST_KEY", "nos_secret_key")
    polls = {"n": 0}

    async def create(_r: web.Request) -> web.Response:
        return web.json_response({"id": "D1", "status": "STARTING", "endpoints": []})

    async def jobs(_r: web.Request) -> web.Response:
        return web.json_response({"jobs": [{"job": "J1", "state": "QUEUED", "node": None}],
                                  "pagination": {"cursor_next": None, "total_items": 1}})

    async def job_doc(request: web.Request) -> web.Response:
        polls["n"] += 1
        if polls["n"] == 1:
            return web.json_response({"state": 1, "node": "N1"})
        result = {"status": "success", "opStates": [{"exitCode": 0, "logs": [
            {"type": "stdout", "log": "4"}, {"type": "stderr", "log": "noise"},
            {"type": "stdout", "log": "2\n"}]}]}
        return web.json_response({"state": 2, "node": "N1", "timeStart": 100,
                                  "timeEnd": 103, "jobResult": result, "ipfsResult": None})

    routes = {("POST", "/api/deployments/create"): create,
              ("GET", "/api/deployments/{d}/jobs"): jobs,
              ("GET", "/api/deployments/{d}/jobs/{job}"): job_doc}
    async with capture_server(routes) as cap:
        job = quick_job(deadline_s=2.0)
        r = await probe(cap.url + f"/api?market={MARKET}&poll=0.01&timeout=600", job,
                        api_key_env="NOSANA_TEST_KEY")
    assert r.outcome is Outcome.OK, r.error
    assert r.node == "N1" and r.details["server_run_s"] == 3
    submit_seen = cap.seen[0]
    assert submit_seen.path == "/api/deployments/create"
    assert submit_seen.headers["Authorization"] == "Bearer nos_secret_key"
    body = submit_seen.json
    assert {k: body[k] for k in ("market", "replicas", "timeout", "strategy", "autostart")} == {
        "market": MARKET, "replicas": 1, "timeout": 10, "strategy": "SIMPLE", "autostart": True}
    definition = body["job_definition"]
    assert definition["version"] == "0.1" and definition["type"] == "container"
    (op,) = definition["ops"]
    assert op["type"] == "container/run" and op["args"]["gpu"] is True
    assert op["args"]["env"]["MODEL"] == "llama3.1:8b"
    assert job.user in op["args"]["env"]["PROMPT"]
    assert [s.path for s in cap.seen[1:]] == [
        "/api/deployments/D1/jobs", "/api/deployments/D1/jobs/J1", "/api/deployments/D1/jobs/J1"]


async def test_credits_request_shape_and_no_key_to_ipfs(monkeypatch) -> None:
    monkeypatch.setenv("NOSANA_TEST_KEY", "nos_secret_key")

    async def submit(_r: web.Request) -> web.Response:
        return web.json_response({"jobAddress": "J1", "costUSD": 0.1, "timeout": 600})

    async def job_doc(_r: web.Request) -> web.Response:
        return web.json_response({"state": 2, "node": "N1", "ipfsResult": "QmR"})

    async def result(_r: web.Request) -> web.Response:
        return web.json_response({"status": "success", "opStates": [
            {"exitCode": 0, "logs": [{"type": "stdout", "log": "42"}]}]})

    routes = {("POST", "/api/jobs/list"): submit, ("GET", "/api/jobs/{job}"): job_doc,
              ("GET", "/ipfs/{cid}"): result}
    async with capture_server(routes) as cap:
        r = await probe(cap.url + f"/api?market={MARKET}&poll=0.01&timeout=600&ipfs=QmDef"
                        f"&ipfs_gateway={cap.url}/ipfs", api_key_env="NOSANA_TEST_KEY")
    assert r.outcome is Outcome.OK, r.error
    assert cap.seen[0].json == {"ipfsHash": "QmDef", "market": MARKET, "timeout": 600}
    assert [s.path for s in cap.seen] == ["/api/jobs/list", "/api/jobs/J1", "/ipfs/QmR"]
    assert "Authorization" not in cap.seen[2].headers  # the Nosana key stays with Nosana


@pytest.mark.parametrize(("status", "outcome", "error_part"), [
    ("ERROR", Outcome.JOB_FAILED, "the network reports the deployment ERROR before it listed"),
    ("INSUFFICIENT_FUNDS", Outcome.QUOTA_EXHAUSTED, "the account cannot pay for it"),
])
async def test_a_deployment_that_fails_before_its_job(status, outcome, error_part) -> None:
    async def create(_r: web.Request) -> web.Response:
        return web.json_response({"id": "D1", "status": "STARTING", "endpoints": []})

    async def jobs(_r: web.Request) -> web.Response:
        return web.json_response({"jobs": [], "pagination": {"total_items": 0}})

    async def deployment(_r: web.Request) -> web.Response:
        return web.json_response({"id": "D1", "status": status})

    routes = {("POST", "/api/deployments/create"): create,
              ("GET", "/api/deployments/{d}/jobs"): jobs,
              ("GET", "/api/deployments/{d}"): deployment}
    async with capture_server(routes) as cap:
        r = await probe(cap.url + "/api" + QUERY)
    assert r.outcome is outcome and error_part in r.error
    assert cap.seen[-1].path == "/api/deployments/D1/stop"  # nothing left running


async def test_a_lost_job_is_job_failed() -> None:
    async def submit(_r: web.Request) -> web.Response:
        return web.json_response({"jobAddress": "GONE"})

    async with capture_server({("POST", "/api/jobs/list"): submit}) as cap:
        r = await probe(cap.url + "/api" + QUERY + "&ipfs=Qm1")  # GET /api/jobs/GONE: 404
    assert r.outcome is Outcome.JOB_FAILED and "lost job GONE" in r.error


def test_settings_come_from_params_over_query() -> None:
    target = Target(network="n", name="t", kind="jobapi",
                    base_url="https://x/api?market=a&poll=9&serve=1&ipfs=Qm1", model="m")
    st = jobapi.settings(target, quick_job(params={"market": "b"}))
    assert (st.base, st.market, st.poll_s, st.serve, st.ipfs) == ("https://x/api", "b", 9.0,
                                                                  True, "Qm1")
    assert not st.deployments and st.ipfs_gateway == "https://nosana.mypinata.cloud/ipfs/"
