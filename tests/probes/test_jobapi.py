"""The job-API probe (Nosana-style submit/poll/result) against the reference job network:
every outcome, queue/run/ready timings, the state map and the request shape."""

from __future__ import annotations

import pytest
from aiohttp import web

from monitor.core.result import Outcome
from monitor.core.target import Target
from monitor.simulator.jobapi import JOBS_KEY
from probes import jobapi
from probes.session import SessionPool
from tests.conftest import free_port, quick_job
from tests.probes.capture import capture_server

QUERY = "?market=sim-market&poll=0.02"


async def probe(url: str, job=None, **kw: object):
    target = Target(network="nosana", name="small", kind="jobapi", base_url=url,
                    model="llama3.1:8b", **kw)  # type: ignore[arg-type]
    pool = SessionPool()
    try:
        return await jobapi.run(target, job or quick_job(deadline_s=2.0), pool.for_target(target))
    finally:
        await pool.close()


def sim_jobs(net):
    return net._runner.app[JOBS_KEY]


async def test_batch_job_ok_measures_queue_run_and_result(start_sim) -> None:
    net = await start_sim(ttft_s=0.1)  # the reference job network queues for ttft_s
    r = await probe(net.url + "/api" + QUERY)
    assert r.outcome is Outcome.OK, r.error
    assert r.kind == "jobapi" and r.http_status == 200
    assert r.details["states"] == ["QUEUED", "RUNNING", "COMPLETED"]
    assert r.queue_s == pytest.approx(0.1, abs=0.05)
    assert r.details["run_s"] == pytest.approx(0.05, abs=0.05)
    assert r.details["result_fetch_s"] < 0.1
    assert r.node and r.node.startswith("node-") and r.details["job_id"].startswith("job-")
    assert 0 < r.ttfb_s < r.queue_s < r.duration_s


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
async def test_each_fault_is_classified(start_sim, overrides, outcome, error_part) -> None:
    net = await start_sim(**overrides)
    r = await probe(net.url + "/api" + QUERY, quick_job(deadline_s=0.4))
    assert r.outcome is outcome, r.error
    assert error_part in r.error
    if outcome is Outcome.RATE_LIMITED:
        assert r.retry_after_s == 5 and r.http_status == 429


async def test_a_job_the_probe_gives_up_on_is_stopped(start_sim) -> None:
    net = await start_sim(p_stall=1.0)
    r = await probe(net.url + "/api" + QUERY, quick_job(deadline_s=0.2))
    assert r.outcome is Outcome.TIMEOUT and r.details["stop_status"] == 200
    (job,) = sim_jobs(net).values()
    assert job.stopped_at is not None


async def test_service_job_ok_once_its_endpoint_answers(start_sim) -> None:
    net = await start_sim()
    r = await probe(net.url + "/api" + QUERY + "&serve=1")
    assert r.outcome is Outcome.OK, r.error
    assert r.details["states"] == ["QUEUED", "RUNNING"]
    assert r.details["ready_s"] < 0.1 and r.details["endpoint"].startswith(net.url)
    (job,) = sim_jobs(net).values()
    assert job.stopped_at is not None  # not left running


async def test_running_but_service_initializing_is_caught(start_sim) -> None:
    net = await start_sim(cold_start_s=5.0)
    r = await probe(net.url + "/api" + QUERY + "&serve=1", quick_job(deadline_s=0.4))
    assert r.outcome is Outcome.TIMEOUT
    assert "RUNNING, but its endpoint never answered 2xx" in r.error
    assert r.details["endpoint_last"] == "HTTP 503: Service Initializing"
    assert r.queue_s is not None and "ready_s" not in r.details


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


async def test_submit_shape_inline_result_and_lost_job(monkeypatch) -> None:
    monkeypatch.setenv("NOSANA_TEST_KEY", "nos_secret_key")
    polls = {"n": 0}

    async def submit(_r: web.Request) -> web.Response:
        return web.json_response({"tx": "t", "job": "J1"})

    async def poll(request: web.Request) -> web.Response:
        if request.match_info["job"] != "J1":
            return web.json_response({"error": "Job not found"}, status=404)
        polls["n"] += 1
        if polls["n"] == 1:
            return web.json_response({"state": 1, "node": "N1"})
        result = {"status": "success", "opStates": [{"exitCode": 0, "logs": [
            {"type": "stdout", "log": "4"}, {"type": "stderr", "log": "noise"},
            {"type": "stdout", "log": "2\n"}]}]}
        return web.json_response({"state": 2, "node": "N1", "timeStart": 100,
                                  "timeEnd": 103, "jobResult": result})

    routes = {("POST", "/api/jobs/list"): submit, ("GET", "/api/jobs/{job}"): poll}
    async with capture_server(routes) as cap:
        job = quick_job(deadline_s=2.0)
        r = await probe(cap.url + "/api?market=7AtiXMSH6R1jjBxrcYjehCkkSF7zvYWte63gwEDBcGHq"
                        "&poll=0.01&timeout=600", job, api_key_env="NOSANA_TEST_KEY")
    assert r.outcome is Outcome.OK, r.error
    assert r.node == "N1" and r.details["server_run_s"] == 3
    submit_seen = cap.seen[0]
    assert submit_seen.path == "/api/jobs/list"
    assert submit_seen.headers["Authorization"] == "Bearer nos_secret_key"
    body = submit_seen.json
    assert body["market"] == "7AtiXMSH6R1jjBxrcYjehCkkSF7zvYWte63gwEDBcGHq"
    assert body["timeout"] == 600 and "ipfsHash" not in body
    definition = body["jobDefinition"]
    assert definition["version"] == "0.1" and definition["type"] == "container"
    (op,) = definition["ops"]
    assert op["type"] == "container/run" and op["args"]["gpu"] is True
    assert op["args"]["env"]["MODEL"] == "llama3.1:8b"
    assert job.user in op["args"]["env"]["PROMPT"]
    assert [s.path for s in cap.seen[1:]] == ["/api/jobs/J1", "/api/jobs/J1"]  # no /results

    async def lost(_r: web.Request) -> web.Response:
        return web.json_response({"tx": "t", "job": "GONE"})

    routes[("POST", "/api/jobs/list")] = lost
    async with capture_server(routes) as cap:
        r = await probe(cap.url + "/api" + QUERY)
    assert r.outcome is Outcome.JOB_FAILED and "lost job GONE" in r.error


def test_settings_come_from_params_over_query() -> None:
    target = Target(network="n", name="t", kind="jobapi",
                    base_url="https://x/api?market=a&poll=9&serve=1&ipfs=Qm1", model="m")
    st = jobapi.settings(target, quick_job(params={"market": "b"}))
    assert (st.base, st.market, st.poll_s, st.serve, st.ipfs) == ("https://x/api", "b", 9.0,
                                                                  True, "Qm1")
