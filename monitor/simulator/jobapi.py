"""A Nosana-like job API: `POST /api/jobs/list`, `GET /api/jobs/{job}`, `GET .../results`,
`POST .../stop`, and for service jobs the job's endpoint `GET /svc/{job}/`.

A job is QUEUED for the plan's time-to-first-token, RUNNING for as long as its answer takes
to generate, then COMPLETED with a Nosana-style result (`opStates[].logs[]`). Service jobs
(`expose` in the op) stay RUNNING until stopped; their endpoint answers 503 "Service
Initializing" for the profile's `cold_start_s` after the job starts running (Nosana's reported
"running but not serving"). The dice's faults become job failures:

    http_5xx, rate_limit   the submit is refused (5xx / 429 with Retry-After)
    malformed              the submit answers an HTML page, or a poll reports an unknown state
    stall                  queued forever: no node ever picks the job up
    eof                    node lost mid-run: RUNNING, then STOPPED
    reset                  the container dies: COMPLETED with exit code 137
    truncate               COMPLETED, but the result has no opStates
    stream_error           the control plane fails: every poll answers 503
    wrong                  COMPLETED with a wrong answer in the logs
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from monitor.core.jobs import find_job_by_prompt
from monitor.simulator.faults import early_fault, html_variant
from monitor.simulator.network import Truth, answer_for
from monitor.simulator.openai import SIM_KEY
from monitor.simulator.profiles import Plan


@dataclass
class SimJob:
    id: str
    plan: Plan
    truth: Truth
    submitted: float  # perf_counter
    submitted_wall: float
    answer: str
    serve: bool
    stopped_at: float | None = None

    @property
    def queue_s(self) -> float:
        return self.plan.ttft_s

    @property
    def run_s(self) -> float:
        n = max(len(self.answer.split()), 1)
        return max(n / max(self.plan.tokens_per_s, 1e-6), 0.05)


JOBS_KEY: web.AppKey[dict[str, SimJob]] = web.AppKey("jobapi_jobs", dict)


def error_body(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _phase(job: SimJob, now: float) -> str:
    """QUEUED, RUNNING, COMPLETED or STOPPED at perf_counter time `now`."""
    fault = job.plan.fault
    if job.stopped_at is not None and now >= job.stopped_at:
        return "STOPPED"
    if fault == "stall":
        return "QUEUED"
    start = job.submitted + job.queue_s
    if now < start:
        return "QUEUED"
    if job.serve:
        return "RUNNING"
    if fault == "eof" and now >= start + job.run_s / 2:
        return "STOPPED"
    if now < start + job.run_s:
        return "RUNNING"
    return "COMPLETED"


def _wall(job: SimJob, perf: float) -> int:
    return int(job.submitted_wall + (perf - job.submitted))


def _prompt(definition: Any) -> str | None:
    try:
        args = definition["ops"][0]["args"]
    except (KeyError, IndexError, TypeError):
        return None
    env = args.get("env") if isinstance(args, dict) else None
    return env.get("PROMPT", "") if isinstance(env, dict) else ""


def _user_part(prompt: str) -> str:
    """The user message inside a flattened `system\\n\\nuser` prompt, when it is a known job's."""
    parts = prompt.split("\n\n")
    for i in range(len(parts)):
        candidate = "\n\n".join(parts[i:])
        if find_job_by_prompt(candidate) is not None:
            return candidate
    return prompt


async def submit(request: web.Request) -> web.StreamResponse:
    received = time.perf_counter()
    sim = request.app[SIM_KEY]
    try:
        body = await request.json()
    except ValueError:
        return error_body(400, "Invalid JSON body")
    if not isinstance(body, dict):
        return error_body(400, "Invalid body")
    if not isinstance(body.get("market"), str) or not body["market"]:
        return error_body(400, "market is required")
    definition = body.get("jobDefinition")
    if definition is None and not body.get("ipfsHash"):
        return error_body(400, "ipfsHash or jobDefinition is required")
    prompt = _prompt(definition) if definition is not None else ""
    if prompt is None:
        return error_body(400, "jobDefinition.ops[0].args is missing")
    timeout = body.get("timeout")
    if not isinstance(timeout, int) or timeout < 1:
        return error_body(400, "timeout must be a positive integer (seconds)")
    serve = bool(definition and "expose" in definition["ops"][0]["args"])
    plan = sim.plan(1)
    truth = sim.record(plan, received)
    early = early_fault(sim, plan, truth, error_body)
    if early is not None:
        truth.ended = time.perf_counter()
        return early
    pieces, _ = answer_for(_user_part(prompt or ""), 64, wrong=plan.fault == "wrong")
    job = SimJob("job-" + secrets.token_hex(16), plan, truth, time.perf_counter(), time.time(),
                 "".join(pieces), serve)
    request.app[JOBS_KEY][job.id] = job
    return web.json_response({"tx": secrets.token_hex(32), "job": job.id,
                              "run": None, "credits": {"reserved": 0.01}},
                             headers={"x-request-id": truth.request_id})


def _job(request: web.Request) -> SimJob | None:
    return request.app[JOBS_KEY].get(request.match_info["job"])


async def poll(request: web.Request) -> web.Response:
    job = _job(request)
    if job is None:
        return error_body(404, "Job not found")
    sim = request.app[SIM_KEY]
    if job.plan.fault == "stream_error":
        return error_body(503, "Service Unavailable")
    now = time.perf_counter()
    state = _phase(job, now)
    if job.plan.fault == "malformed" and not html_variant(sim, job.plan) and state != "QUEUED":
        state = "PROVISIONING_UNKNOWN"
    start = job.submitted + job.queue_s
    doc: dict[str, Any] = {"address": job.id, "state": state, "market": "sim-market",
                           "node": None, "timeStart": 0, "timeEnd": 0, "jobResult": None,
                           "listedAt": int(job.submitted_wall)}
    if state != "QUEUED":
        doc["node"] = "node-" + job.id[4:20]
        doc["timeStart"] = _wall(job, start)
    if state in ("COMPLETED", "STOPPED"):
        end = job.stopped_at if job.stopped_at is not None else start + (
            job.run_s / 2 if job.plan.fault == "eof" else job.run_s)
        doc["timeEnd"] = _wall(job, min(end, now))
        if job.truth.ended is None:
            job.truth.ended = end
    if job.serve and state == "RUNNING":
        doc["endpoint"] = f"{request.url.origin()}/svc/{job.id}/"
    return web.json_response(doc)


async def results(request: web.Request) -> web.Response:
    job = _job(request)
    if job is None:
        return error_body(404, "Job not found")
    if _phase(job, time.perf_counter()) != "COMPLETED":
        return error_body(409, "Job has no results yet")
    start_ms = int((job.submitted_wall + job.queue_s) * 1000)
    end_ms = start_ms + int(job.run_s * 1000)
    if job.plan.fault == "truncate":
        return web.json_response({"status": "success", "startTime": start_ms,
                                  "endTime": end_ms})
    code = 137 if job.plan.fault == "reset" else 0
    op = {"operationId": "probe", "providerId": "container", "status":
          "failed" if code else "success", "startTime": start_ms, "endTime": end_ms,
          "exitCode": code,
          "logs": [{"type": "stdout", "log": "" if code else job.answer},
                   {"type": "stderr", "log": "Killed\n" if code else "pulling manifest\n"}]}
    return web.json_response({"status": "failed" if code else "success",
                              "startTime": start_ms, "endTime": end_ms, "opStates": [op]})


async def stop(request: web.Request) -> web.Response:
    job = _job(request)
    if job is None:
        return error_body(404, "Job not found")
    if job.stopped_at is None and _phase(job, time.perf_counter()) in ("QUEUED", "RUNNING"):
        job.stopped_at = time.perf_counter()
    return web.json_response({"tx": secrets.token_hex(32), "job": job.id})


async def service(request: web.Request) -> web.Response:
    job = _job(request)
    if job is None or _phase(job, time.perf_counter()) != "RUNNING":
        return web.Response(status=502, text="Bad Gateway")
    sim = request.app[SIM_KEY]
    running_since = time.perf_counter() - (job.submitted + job.queue_s)
    if running_since < sim.profile.cold_start_s:
        return web.Response(status=503, text="Service Initializing")
    return web.Response(text="Ollama is running")


def add_routes(app: web.Application) -> None:
    app[JOBS_KEY] = {}
    app.router.add_post("/api/jobs/list", submit)
    app.router.add_get("/api/jobs/{job}", poll)
    app.router.add_get("/api/jobs/{job}/results", results)
    app.router.add_post("/api/jobs/{job}/stop", stop)
    app.router.add_get("/svc/{job}/", service)

