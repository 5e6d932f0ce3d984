"""Nosana's two ways to run a job, under `/api` as on dashboard.k8s.prd.nos.ci, plus the IPFS
gateway its results come from and the endpoint a service job exposes.

Credits jobs API (nosana-ci/nosana-sdk src/services/api/jobs.ts; request and answer of the
API's OpenAPI schema as the SDK generated it, `postApiJobsCreate-with-credits`):

    POST /api/jobs/list           {ipfsHash, market, timeout (s)} -> {jobAddress, costUSD, ...}
    GET  /api/jobs/{address}      -> {address, state (0-3), node, timeStart, timeEnd, ipfsResult}
    POST /api/jobs/{address}/stop
    GET  /ipfs/{cid}              the pinned job definition, or a finished job's result

`market` is a market *address* (base58), not a slug; the job definition must be pinned on IPFS
beforehand (`pin()` here). The job document's fields are the on-chain job account's (what the
deployment manager's `lifecycleOf` reads): unverified for this route.

Deployments (nosana-ci/nosana-deployment-manager src/router/setup/setupDeploymentsRoutes.ts,
schemas under src/router/schema/; the SDK reaches them under /api): the only way to send a job
definition inline.

    POST /api/deployments/create   {name, market, replicas, timeout (min), strategy,
                                    job_definition, autostart} -> Deployment
    GET  /api/deployments/{id}     -> Deployment {id, status, endpoints: [{opId, port, url}], ...}
    GET  /api/deployments/{id}/jobs            -> {jobs: [{job, state: "QUEUED", ...}], pagination}
    GET  /api/deployments/{id}/jobs/{job}      -> {state (0-3), node, jobResult, timeStart, ...}
    POST /api/deployments/{id}/stop
    GET  /svc/{id}/                the deployment's exposed endpoint (a service job)

A job is QUEUED for the plan's time-to-first-token, RUNNING while its answer generates, then
COMPLETED with a result `{status, opStates: [{exitCode, status, logs: [{type, log}]}]}`
(nosana-kit FlowState). A service job (`expose` in its op) stays RUNNING until stopped; its
endpoint answers 503 "Service Initializing" for the profile's `cold_start_s` once running
(Nosana's reported "running but not serving"). The dice's faults:

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

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from monitor.core.jobs import find_job_by_prompt
from monitor.simulator.faults import early_fault, html_variant
from monitor.simulator.network import SimNetwork, Truth, answer_for
from monitor.simulator.openai import SIM_KEY
from monitor.simulator.profiles import Plan

STATES = ("QUEUED", "RUNNING", "COMPLETED", "STOPPED")  # on chain 0..3
ADDRESS = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")  # a base58 Solana public key
NO_NODE = "11111111111111111111111111111111"


@dataclass
class SimJob:
    address: str
    plan: Plan
    truth: Truth
    submitted: float  # perf_counter
    submitted_wall: float
    answer: str
    serve: bool
    market: str
    stopped_at: float | None = None

    @property
    def run_s(self) -> float:
        n = max(len(self.answer.split()), 1)
        return max(n / max(self.plan.tokens_per_s, 1e-6), 0.05)

    @property
    def start(self) -> float:
        return self.submitted + self.plan.ttft_s

    def phase(self, now: float) -> str:
        """QUEUED, RUNNING, COMPLETED or STOPPED at perf_counter time `now`."""
        fault = self.plan.fault
        if self.stopped_at is not None and now >= self.stopped_at:
            return "STOPPED"
        if fault == "stall" or now < self.start:
            return "QUEUED"
        if self.serve:
            return "RUNNING"
        if fault == "eof" and now >= self.start + self.run_s / 2:
            return "STOPPED"
        return "RUNNING" if now < self.start + self.run_s else "COMPLETED"

    def wall(self, perf: float) -> int:
        return int(self.submitted_wall + (perf - self.submitted))

    def lifecycle(self, sim: SimNetwork, now: float) -> dict[str, Any]:
        """The on-chain job account's fields as the APIs report them."""
        state = self.phase(now)
        doc: dict[str, Any] = {"state": STATES.index(state), "node": NO_NODE,
                               "timeStart": 0, "timeEnd": 0}
        if self.plan.fault == "malformed" and not html_variant(sim, self.plan) \
                and state != "QUEUED":
            doc["state"] = "PROVISIONING_UNKNOWN"
        if state != "QUEUED":
            doc["node"] = _address("node", self.address)
            doc["timeStart"] = self.wall(self.start)
        if state in ("COMPLETED", "STOPPED"):
            end = self.stopped_at if self.stopped_at is not None else self.start + (
                self.run_s / 2 if self.plan.fault == "eof" else self.run_s)
            doc["timeEnd"] = self.wall(min(end, now))
            if self.truth.ended is None:
                self.truth.ended = end
        return doc

    def result(self) -> dict[str, Any]:
        """A finished job's FlowState (nosana-kit), as nodes report it."""
        start_ms = int((self.submitted_wall + self.plan.ttft_s) * 1000)
        end_ms = start_ms + int(self.run_s * 1000)
        if self.plan.fault == "truncate":
            return {"status": "success", "startTime": start_ms, "endTime": end_ms}
        code = 137 if self.plan.fault == "reset" else 0
        op = {"operationId": "probe", "providerId": "container",
              "status": "failed" if code else "success", "startTime": start_ms,
              "endTime": end_ms, "exitCode": code,
              "logs": [{"type": "stdout", "log": "" if code else self.answer},
                       {"type": "stderr", "log": "Killed\n" if code else "pulling manifest\n"}]}
        return {"status": "failed" if code else "success", "startTime": start_ms,
                "endTime": end_ms, "opStates": [op]}


@dataclass
class SimDeployment:
    id: str
    body: dict[str, Any]
    created: str
    job: SimJob
    stopping: bool = False

    def status(self, now: float) -> str:
        phase = self.job.phase(now)
        if phase in ("COMPLETED", "STOPPED"):
            return "STOPPED"  # a SIMPLE deployment stops when its job is done
        return "STOPPING" if self.stopping else "RUNNING"


@dataclass
class NosanaState:
    jobs: dict[str, SimJob] = field(default_factory=dict)
    deployments: dict[str, SimDeployment] = field(default_factory=dict)
    ipfs: dict[str, Any] = field(default_factory=dict)  # cid -> pinned JSON


JOBS_KEY: web.AppKey[NosanaState] = web.AppKey("nosana", NosanaState)


def pin(app: web.Application, document: Any) -> str:
    """Pin a JSON document on the reference IPFS gateway; its (made-up, stable) CID."""
    data = json.dumps(document, sort_keys=True).encode()
    cid = "Qm" + hashlib.sha256(data).hexdigest()[:44]
    app[JOBS_KEY].ipfs[cid] = document
    return cid


def _address(kind: str, seed: str) -> str:
    """A stable base58-looking 44-character address."""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    digest = hashlib.sha256(f"{kind}:{seed}".encode()).digest()
    return "".join(alphabet[b % 58] for b in digest + digest[:12])[:44]


def error_body(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _prompt(definition: Any) -> str | None:
    """The prompt a probe's definition carries in its first op's env; None if malformed."""
    try:
        args = definition["ops"][0]["args"]
    except (KeyError, IndexError, TypeError):
        return None
    env = args.get("env") if isinstance(args, dict) else None
    return env.get("PROMPT", "") if isinstance(env, dict) else ""


def _serves(definition: Any) -> bool:
    return any(isinstance(op, dict) and isinstance(op.get("args"), dict)
               and "expose" in op["args"] for op in definition.get("ops", []))


def _user_part(prompt: str) -> str:
    """The user message inside a flattened `system\\n\\nuser` prompt, when it is a known job's."""
    parts = prompt.split("\n\n")
    for i in range(len(parts)):
        candidate = "\n\n".join(parts[i:])
        if find_job_by_prompt(candidate) is not None:
            return candidate
    return prompt


async def _submitted(request: web.Request) -> dict[str, Any] | web.Response:
    """A submit's JSON object, or the 400 for it; both APIs want a market *address*."""
    try:
        body = await request.json()
    except ValueError:
        return error_body(400, "Invalid body")
    if not isinstance(body, dict):
        return error_body(400, "Invalid body")
    market = body.get("market")
    if not isinstance(market, str) or not ADDRESS.fullmatch(market):
        return error_body(400, "market must be a market address (base58), not a slug")
    return body


def _new_job(request: web.Request, definition: Any, market: str, received: float
             ) -> tuple[SimJob, web.StreamResponse | None]:
    sim = request.app[SIM_KEY]
    plan = sim.plan(1)
    truth = sim.record(plan, received)
    early = early_fault(sim, plan, truth, error_body)
    prompt = _prompt(definition) or ""
    pieces, _ = answer_for(_user_part(prompt), 64, wrong=plan.fault == "wrong")
    job = SimJob(_address("job", secrets.token_hex(16)), plan, truth, time.perf_counter(),
                 time.time(), "".join(pieces), isinstance(definition, dict)
                 and _serves(definition), market)
    if early is not None:
        truth.ended = time.perf_counter()
    return job, early


# -- the credits jobs API ------------------------------------------------------------------

async def list_job(request: web.Request) -> web.StreamResponse:
    received = time.perf_counter()
    body = await _submitted(request)
    if isinstance(body, web.Response):
        return body
    if not isinstance(body.get("ipfsHash"), str) or not body["ipfsHash"]:
        return error_body(400, "ipfsHash is required (pin the job definition first; inline "
                               "definitions go through /api/deployments/create)")
    timeout = body.get("timeout", 3600)
    if not isinstance(timeout, int | float | str) or not str(timeout).replace(".", "", 1) \
            .isdigit() or float(timeout) <= 0:
        return error_body(400, "timeout must be a positive number of seconds")
    state = request.app[JOBS_KEY]
    job, early = _new_job(request, state.ipfs.get(body["ipfsHash"]), body["market"], received)
    if early is not None:
        return early
    state.jobs[job.address] = job
    return web.json_response({"jobAddress": job.address, "costUSD": 0.01, "creditsUsed": 0.01,
                              "reservationId": secrets.token_hex(8), "project": "sim",
                              "market": job.market, "timeout": int(float(timeout))},
                             headers={"x-request-id": job.truth.request_id})


def _job(request: web.Request) -> SimJob | None:
    return request.app[JOBS_KEY].jobs.get(request.match_info["address"])


async def get_job(request: web.Request) -> web.Response:
    job = _job(request)
    if job is None:
        return error_body(404, "Job not found")
    if job.plan.fault == "stream_error":
        return error_body(503, "Service Unavailable")
    sim = request.app[SIM_KEY]
    doc = {"address": job.address, "market": job.market, "ipfsResult": None,
           **job.lifecycle(sim, time.perf_counter())}
    if doc["state"] == 2:  # COMPLETED: the node pinned its result
        doc["ipfsResult"] = pin(request.app, job.result())
    if job.serve and doc["state"] == 1:
        doc["endpoint"] = f"{request.url.origin()}/svc/{job.address}/"
    return web.json_response(doc)


async def stop_job(request: web.Request) -> web.Response:
    job = _job(request)
    if job is None:
        return error_body(404, "Job not found")
    _stop(job)
    return web.json_response({"tx": secrets.token_hex(32), "job": job.address})


def _stop(job: SimJob) -> None:
    if job.stopped_at is None and job.phase(time.perf_counter()) in ("QUEUED", "RUNNING"):
        job.stopped_at = time.perf_counter()


async def ipfs(request: web.Request) -> web.Response:
    document = request.app[JOBS_KEY].ipfs.get(request.match_info["cid"])
    if document is None:
        return web.Response(status=404, text="not found")
    return web.json_response(document)


# -- deployments -----------------------------------------------------------------------------

async def create_deployment(request: web.Request) -> web.StreamResponse:
    received = time.perf_counter()
    body = await _submitted(request)
    if isinstance(body, web.Response):
        return body
    definition = body.get("job_definition")
    if not isinstance(definition, dict) or _prompt(definition) is None:
        return error_body(400, "Invalid body")  # ErrorMessages.generic.INVALID_BODY
    if body.get("strategy") not in ("SIMPLE", "SIMPLE-EXTEND") or not isinstance(
            body.get("name"), str) or not _positive(body.get("replicas")) \
            or not _positive(body.get("timeout")):
        return error_body(400, "Invalid body")
    job, early = _new_job(request, definition, body["market"], received)
    if early is not None:
        return early
    state = request.app[JOBS_KEY]
    deployment = SimDeployment(_address("deployment", job.address), body,
                               _iso(job.submitted_wall), job)
    state.jobs[job.address] = job
    state.deployments[deployment.id] = deployment
    if not body.get("autostart"):
        job.stopped_at = job.submitted  # a DRAFT never lists a job in this reference
    return web.json_response(_deployment_doc(request, deployment),
                             headers={"x-request-id": job.truth.request_id})


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 1


def _deployment_doc(request: web.Request, d: SimDeployment) -> dict[str, Any]:
    ops = d.body["job_definition"].get("ops", [])
    endpoints = [{"opId": op.get("id", "op"), "port": op["args"]["expose"],
                  "url": f"{request.url.origin()}/svc/{d.id}"}
                 for op in ops if isinstance(op, dict) and "expose" in op.get("args", {})]
    status = d.status(time.perf_counter()) if d.body.get("autostart") else "DRAFT"
    return {"id": d.id, "name": d.body["name"], "vault": _address("vault", d.id),
            "market": d.body["market"], "owner": _address("owner", "sim"), "status": status,
            "replicas": d.body["replicas"], "timeout": d.body["timeout"],
            "endpoints": endpoints, "confidential": False, "active_revision": 1,
            "active_jobs": int(status == "RUNNING"), "created_at": d.created,
            "updated_at": d.created, "strategy": d.body["strategy"]}


def _deployment(request: web.Request) -> SimDeployment | None:
    return request.app[JOBS_KEY].deployments.get(request.match_info["deployment"])


async def get_deployment(request: web.Request) -> web.Response:
    d = _deployment(request)
    if d is None:
        return error_body(404, "Deployment not found")
    return web.json_response(_deployment_doc(request, d))


async def deployment_jobs(request: web.Request) -> web.Response:
    d = _deployment(request)
    if d is None:
        return error_body(404, "Deployment not found")
    if d.job.plan.fault == "stream_error":
        return error_body(503, "Service Unavailable")
    jobs = []
    if d.body.get("autostart"):
        phase = d.job.phase(time.perf_counter())
        jobs.append({"tx": secrets.token_hex(32), "deployment": d.id, "job": d.job.address,
                     "market": d.job.market,
                     "node": None if phase == "QUEUED" else _address("node", d.job.address),
                     "revision": 1, "state": phase, "time_start": 0, "created_at": d.created,
                     "updated_at": d.created})
    return web.json_response({"jobs": jobs, "pagination": {
        "cursor_next": None, "cursor_prev": None, "total_items": len(jobs)}})


async def deployment_job(request: web.Request) -> web.Response:
    d = _deployment(request)
    if d is None or d.job.address != request.match_info["job"]:
        return error_body(404, "Job not found")
    job = d.job
    if job.plan.fault == "stream_error":
        return error_body(503, "Service Unavailable")
    sim = request.app[SIM_KEY]
    doc = job.lifecycle(sim, time.perf_counter())
    return web.json_response({
        "confidential": False, "revision": 1, "market": job.market, **doc, "jobStatus": None,
        "jobDefinition": d.body["job_definition"],
        "jobResult": job.result() if doc["state"] == 2 else None,
        "listedAt": int(job.submitted_wall)})


async def stop_deployment(request: web.Request) -> web.Response:
    d = _deployment(request)
    if d is None:
        return error_body(404, "Deployment not found")
    if d.status(time.perf_counter()) in ("STOPPING", "STOPPED"):
        return error_body(400, "Deployment is already stopped")
    d.stopping = True
    _stop(d.job)
    return web.json_response(_deployment_doc(request, d))


async def service(request: web.Request) -> web.Response:
    """A service job's endpoint: a gateway 502 unless running, 503 while it initializes."""
    key = request.match_info["id"]
    state = request.app[JOBS_KEY]
    job = state.deployments[key].job if key in state.deployments else state.jobs.get(key)
    if job is None or job.phase(time.perf_counter()) != "RUNNING":
        return web.Response(status=502, text="Bad Gateway")
    sim = request.app[SIM_KEY]
    if time.perf_counter() - job.start < sim.profile.cold_start_s:
        return web.Response(status=503, text="Service Initializing")
    return web.Response(text="Ollama is running")


def add_routes(app: web.Application) -> None:
    app[JOBS_KEY] = NosanaState()
    app.router.add_post("/api/jobs/list", list_job)
    app.router.add_get("/api/jobs/{address}", get_job)
    app.router.add_post("/api/jobs/{address}/stop", stop_job)
    app.router.add_get("/ipfs/{cid}", ipfs)
    app.router.add_post("/api/deployments/create", create_deployment)
    app.router.add_get("/api/deployments/{deployment}", get_deployment)
    app.router.add_get("/api/deployments/{deployment}/jobs", deployment_jobs)
    app.router.add_get("/api/deployments/{deployment}/jobs/{job}", deployment_job)
    app.router.add_post("/api/deployments/{deployment}/stop", stop_deployment)
    app.router.add_get("/svc/{id}/", service)
    app.router.add_get("/svc/{id}", service)
