"""Job-based networks (kind `jobapi`), modelled on Nosana: submit a job, poll it, fetch its result.

Nosana has two ways in (base `https://dashboard.k8s.prd.nos.ci/api`; docs/networks.md says
what is verified, with sources), chosen by whether a pinned job definition is configured:

Deployments (default; the only route that takes a job definition inline,
nosana-ci/nosana-deployment-manager routes, reached through the SDK's /api prefix):

    POST {base}/deployments/create   {name, market, replicas: 1, timeout (min), strategy:
                                      SIMPLE, autostart: true, job_definition} -> {id, ...}
    GET  {base}/deployments/{id}/jobs          until the deployment lists its job
    GET  {base}/deployments/{id}               (while no job: a deployment that fails)
    GET  {base}/deployments/{id}/jobs/{job}    -> {state, node, timeStart, timeEnd, jobResult}
    POST {base}/deployments/{id}/stop          (when the probe gives up, and after service jobs)

Credits jobs API (`ipfs=<CID>` of a definition pinned beforehand; nosana-sdk
src/services/api/jobs.ts):

    POST {base}/jobs/list     {ipfsHash, market, timeout (s)} -> {jobAddress, ...}
    GET  {base}/jobs/{job}    -> {state, node, timeStart, timeEnd, ipfsResult}
    GET  {ipfs_gateway}{ipfsResult}   the result, from IPFS (no key sent there)
    POST {base}/jobs/{job}/stop

`market` is the market's *address*; a slug such as `nvidia-4090` is resolved by Nosana's CLI,
not by the API. Settings come from the job's params or the base URL's query string
(`?market=...&poll=2`): `market`, `poll` (seconds between polls, default 5), `timeout` (the
job's lease in seconds; deployments get it in whole minutes), `ipfs`, `ipfs_gateway`,
`serve=1` (a service job: once RUNNING, its endpoint must answer 2xx; Nosana's "RUNNING but
503 Service Initializing" is caught here), `image`.

Measured: ttfb (submit answered), queue_s (submitted -> RUNNING seen), run_s (RUNNING ->
COMPLETED seen), ready_s (serve: RUNNING -> endpoint 2xx), result_fetch_s, duration_s
(submit sent -> result in hand). A poll is observed at poll granularity; the server's own
timeStart/timeEnd are kept in details. Up to MAX_POLL_ERRORS consecutive failed polls are
tolerated (a control plane blips); a job the network stops, fails or forgets is `job_failed`;
a deployment the buyer's account cannot pay for (INSUFFICIENT_FUNDS) is `quota_exhausted`.

This probe uses the target's aiohttp session rather than httpx: the same connection pool,
request tracing (connect time) and one error-to-outcome map (`probes.base.classify`) as
every other kind, at the cost of nothing for a few requests a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from monitor.core import kinds
from monitor.core.jobs import Job, Rendered
from monitor.core.kindsettings import JobApiSettings
from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from probes import shape
from probes.base import ProbeKind, auth_headers, classify, finish, retry_after, status_outcome
from probes.oneshot import read_body
from probes.session import RequestClock, TargetSession
from probes.shape import parse_json

# The network's job states -> what they mean to the probe. Nosana's job states first (on chain
# 0..3, by name in the deployment manager's job list: src/types/job.ts `JobState`,
# listeners/accounts/helpers/convertJobState.ts), then its deployment statuses (nosana-sdk
# src/services/deployments/types.ts `DeploymentStatus`), read while no job is listed yet.
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
UNFUNDED = "unfunded"  # the buyer's account cannot pay for the job: quota_exhausted
STATE_MAP: dict[str | int, str] = {
    # Nosana job state
    "QUEUED": QUEUED, 0: QUEUED,
    "RUNNING": RUNNING, 1: RUNNING,
    "COMPLETED": DONE, "DONE": DONE, 2: DONE,
    "STOPPED": FAILED, 3: FAILED,  # stopped before completing: by timeout, a user or node loss
    # Nosana deployment status (its RUNNING is the job's; STOPPED before a job is a failure)
    "DRAFT": QUEUED, "STARTING": QUEUED,
    "STOPPING": FAILED, "ERROR": FAILED, "ARCHIVED": FAILED,
    "INSUFFICIENT_FUNDS": UNFUNDED,
    # generic job APIs
    "PENDING": QUEUED, "SUCCEEDED": DONE, "FAILED": FAILED, "CANCELLED": FAILED,
}
NO_NODE = "11111111111111111111111111111111"  # the system program: a job with no node yet
MAX_POLL_ERRORS = 3
STOP_TIMEOUT_S = 3.0
MAX_DOCUMENT_BYTES = 1 << 20
# What a request to the job API can raise: transport failures, and a URL yarl cannot parse
# (a service job's endpoint comes from the network).
REQUEST_ERRORS = (aiohttp.ClientError, OSError, asyncio.IncompleteReadError, ValueError)


def map_state(value: Any) -> str | None:
    """Our meaning of a network job state (name or on-chain number); None when unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return STATE_MAP.get(value.strip().upper())
    if isinstance(value, int):
        return STATE_MAP.get(value)
    return None


def settings(target: Target, job: Job) -> JobApiSettings:
    """The run's settings (monitor.core.kindsettings): the job's params over the base URL's
    query string over the defaults."""
    return kinds.settings_of(JobApiSettings, job, target.base_url)


def job_definition(job: Job, rendered: Rendered, model: str, st: JobApiSettings) -> dict[str, Any]:
    """A Nosana job definition (v0.1; nosana-sdk src/types/job.ts `JobDefinition`): one
    container op that runs the prompt once (batch) or serves the model on an exposed port
    (serve). The prompt travels in the op's env."""
    if st.serve:
        args: dict[str, Any] = {"image": st.image, "gpu": True, "expose": 11434,
                                "env": {"MODEL": model}}
    else:
        args = {
            "image": st.image, "gpu": True,
            "entrypoint": ["/bin/sh", "-c"],
            "cmd": ['ollama serve >/dev/null 2>&1 & sleep 5 && ollama pull "$MODEL" >/dev/null'
                    ' && ollama run "$MODEL" "$PROMPT"'],
            "env": {"MODEL": model, "PROMPT": rendered.prompt},
        }
    return {"version": "0.1", "type": "container",
            "meta": {"trigger": "depin-monitor", "job": f"{job.name}"},
            "ops": [{"type": "container/run", "id": "probe", "args": args}]}


def submit_body(job: Job, rendered: Rendered, model: str, st: JobApiSettings) -> dict[str, Any]:
    """The exact JSON the submit sends (tests check it): a deployment with the definition
    inline (timeout in minutes), or a credits job naming a pinned one (timeout in seconds)."""
    if st.deployments:
        return {"name": f"depin-monitor {job.name}", "market": st.market, "replicas": 1,
                "timeout": max(1, -(-st.lease(job.deadline_s) // 60)), "strategy": "SIMPLE",
                "autostart": True, "job_definition": job_definition(job, rendered, model, st)}
    return {"ipfsHash": st.ipfs, "market": st.market, "timeout": st.lease(job.deadline_s)}


class _Failed(Exception):
    """Ends a run early with an outcome (control flow, never escapes this module)."""

    def __init__(self, outcome: Outcome, error: str, status: int | None = None,
                 headers: Any = None) -> None:
        super().__init__(error)
        self.outcome, self.error, self.status, self.headers = outcome, error, status, headers


@dataclass(slots=True)
class _Run:
    clock: RequestClock = field(default_factory=RequestClock)
    first_byte: float | None = None
    submitted: float | None = None
    running: float | None = None
    done: float | None = None
    ready: float | None = None
    result_s: float | None = None
    deployment: str | None = None
    job_id: str | None = None
    node: str | None = None
    state: str | None = None  # the network's last state name, as sent
    meaning: str | None = None  # what that state means to us (QUEUED, RUNNING, ...)
    states: list[str] = field(default_factory=list)
    polls: int = 0
    poll_errors: int = 0
    nbytes: int = 0
    server: dict[str, Any] = field(default_factory=dict)
    output: str = ""

    def job_url(self, st: JobApiSettings) -> str:
        if self.deployment is not None:
            return f"{st.base}/deployments/{self.deployment}/jobs/{self.job_id}"
        return f"{st.base}/jobs/{self.job_id}"


async def run(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    rendered = job.render()
    st = settings(target, job)
    loop = asyncio.get_running_loop()
    started_at = time.time()
    deadline = loop.time() + job.deadline_s
    r = _Run()
    status: int | None = None
    headers: Any = {}
    outcome, error = Outcome.OK, ""
    try:
        async with asyncio.timeout_at(deadline):
            await _submit(session, target, job, rendered, st, r)
            status = 200
            result = await _poll(session, target, st, r, loop, deadline)
            if st.serve:
                await _await_endpoint(session, target, st, r, result, loop, deadline)
            else:
                await _collect(session, target, st, r, result)
    except TimeoutError:
        outcome = Outcome.TIMEOUT
        where = f"still {r.state}" if r.state else "no job id"
        if st.serve and r.running is not None and r.ready is None:
            where = f"RUNNING, but its endpoint never answered 2xx ({r.server.get('endpoint')})"
        error = f"no completion within {job.deadline_s:g}s ({where})"
    except _Failed as exc:
        outcome, error = exc.outcome, exc.error
        status, headers = exc.status or status, exc.headers or headers
    except REQUEST_ERRORS as exc:
        outcome, error = classify(exc, r.clock)
    end = time.perf_counter()
    live = r.meaning in (None, QUEUED, RUNNING) and (r.job_id or r.deployment)
    if live and (outcome is not Outcome.OK or st.serve):
        await _stop(session, target, st, r)  # a paid job is never left running
    output = None if st.serve else r.output  # a service job is judged by its endpoint
    return _result(target, job, rendered, started_at, r, status, headers, outcome, error, end,
                   output)


async def _request(session: TargetSession, target: Target, method: str, url: str,
                   body: dict[str, Any] | None = None, clock: RequestClock | None = None,
                   *, authorized: bool = True) -> tuple[int, Any, bytes]:
    headers = auth_headers(target) if authorized else {"User-Agent": "depin-monitor/0.1"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    async with session.client.request(method, url, data=data, headers=headers,
                                      trace_request_ctx=clock) as resp:
        return resp.status, resp.headers, await read_body(resp.content, MAX_DOCUMENT_BYTES)


def _decode(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = parse_json(body)
    except ValueError:
        raise _Failed(Outcome.MALFORMED, f"{what}: 2xx body is not JSON") from None
    if not isinstance(value, dict):
        raise _Failed(Outcome.MALFORMED, f"{what}: response is not a JSON object")
    return value


def _check_status(status: int, headers: Any, body: bytes, what: str) -> None:
    if status >= 300:
        outcome, error = status_outcome(status, body)
        raise _Failed(outcome, f"{what}: {error}", status, headers)


async def _submit(session: TargetSession, target: Target, job: Job, rendered: Rendered,
                  st: JobApiSettings, r: _Run) -> None:
    body = submit_body(job, rendered, target.model, st)
    url = f"{st.base}/deployments/create" if st.deployments else f"{st.base}/jobs/list"
    status, headers, raw = await _request(session, target, "POST", url, body, r.clock)
    r.first_byte = r.submitted = time.perf_counter()
    r.nbytes += len(raw)
    _check_status(status, headers, raw, "submit")
    value = _decode(raw, "submit")
    if st.deployments:
        deployment = shape.text_or_none(value.get("id"))
        if not deployment:
            raise _Failed(Outcome.MALFORMED, "submit: the deployment has no id", status)
        r.deployment = r.server["deployment"] = deployment
        endpoints = value.get("endpoints")
        if isinstance(endpoints, list) and endpoints and isinstance(endpoints[0], dict):
            r.server["endpoint"] = shape.text_or_none(endpoints[0].get("url"))
        return
    job_id = shape.text_or_none(value.get("jobAddress")) or shape.text_or_none(value.get("job"))
    if not job_id:
        raise _Failed(Outcome.MALFORMED, "submit: response has no jobAddress", status)
    r.job_id = job_id


def _observe(value: dict[str, Any], r: _Run) -> str | None:
    """Record a job document's state, node and server times; our meaning of its state."""
    node = shape.text_or_none(value.get("node"))
    if node and node != NO_NODE:
        r.node = node
    for key in ("timeStart", "timeEnd", "listedAt"):
        if _finite(value.get(key)) and value[key] != 0:
            r.server[key] = value[key]
    if shape.text_or_none(value.get("endpoint")):
        r.server["endpoint"] = shape.text_or_none(value["endpoint"])
    raw = value.get("state", value.get("status"))
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _Failed(Outcome.MALFORMED, f"job state is {shape.json_type(raw)}", 200)
    if isinstance(raw, int) and 0 <= raw < 4:  # on chain: named as the APIs name them
        r.state = ("QUEUED", "RUNNING", "COMPLETED", "STOPPED")[raw]
    else:
        r.state = str(raw)[:shape.MAX_TEXT_CHARS]
    if not r.states or r.states[-1] != r.state:
        r.states.append(r.state)
    meaning = map_state(raw)
    if meaning is None:
        raise _Failed(Outcome.MALFORMED, f"unknown job state {raw!r}", 200)
    r.meaning = meaning
    return meaning


async def _get(session: TargetSession, target: Target, url: str, r: _Run
               ) -> dict[str, Any] | None:
    """One poll request; None when it failed in a way a blipping control plane may."""
    try:
        status, headers, raw = await _request(session, target, "GET", url)
    except REQUEST_ERRORS as exc:
        outcome, reason = classify(exc, None)
        _poll_error(r, outcome, f"poll: {reason}")
        return None
    r.nbytes += len(raw)
    if status == 404:
        lost = r.job_id or r.deployment
        raise _Failed(Outcome.JOB_FAILED, f"poll: the network lost job {lost} (404)",
                      status, headers)
    if status == 429 or status >= 500:
        outcome, reason = status_outcome(status, raw)
        if outcome in (Outcome.RATE_LIMITED, Outcome.HTTP_ERROR):  # a control-plane blip
            _poll_error(r, outcome, f"poll: {reason}", status, headers)
            return None
    _check_status(status, headers, raw, "poll")
    r.poll_errors = 0
    return _decode(raw, "poll")


async def _find_job(session: TargetSession, target: Target, st: JobApiSettings, r: _Run
                    ) -> dict[str, Any] | None:
    """A deployment's job, once listed; until then a deployment that fails is a failed run."""
    listing = await _get(session, target, f"{st.base}/deployments/{r.deployment}/jobs", r)
    jobs = listing.get("jobs") if listing is not None else None
    if isinstance(jobs, list) and jobs and isinstance(jobs[0], dict) and shape.text_or_none(
            jobs[0].get("job")):
        r.job_id = shape.text_or_none(jobs[0]["job"])
        return jobs[0]
    if listing is None:
        return None
    deployment = await _get(session, target, f"{st.base}/deployments/{r.deployment}", r)
    status = deployment.get("status") if deployment is not None else None
    if status is not None and map_state(status) == UNFUNDED:
        raise _Failed(Outcome.QUOTA_EXHAUSTED, f"the network reports the deployment {status}: "
                      "the account cannot pay for it", 200)
    if status is not None and map_state(status) == FAILED:
        raise _Failed(Outcome.JOB_FAILED, f"the network reports the deployment {status} "
                      "before it listed a job", 200)
    return None


async def _poll(session: TargetSession, target: Target, st: JobApiSettings, r: _Run,
                loop: asyncio.AbstractEventLoop, deadline: float) -> dict[str, Any]:
    """Poll until the job is done (or, for a service job, running); the last job document."""
    while True:
        await asyncio.sleep(min(st.poll_s, max(deadline - loop.time(), 0.0)))
        r.polls += 1
        if r.job_id is None:
            listed = await _find_job(session, target, st, r)
            if listed is None or map_state(listed.get("state")) not in (DONE, FAILED):
                if listed is not None:
                    _moved(_observe(listed, r), r)
                continue
        value = await _get(session, target, r.job_url(st), r)
        if value is None:
            continue
        meaning = _observe(value, r)
        if meaning is None:
            raise _Failed(Outcome.MALFORMED, "poll: job document without a state", 200)
        _moved(meaning, r)
        if meaning == FAILED:
            raise _Failed(Outcome.JOB_FAILED, f"the network reports the job {r.state}"
                          + (f" on node {r.node}" if r.node else ""), 200)
        if meaning == UNFUNDED:
            raise _Failed(Outcome.QUOTA_EXHAUSTED, f"the network reports the job {r.state}: "
                          "the account cannot pay for it", 200)
        if meaning == DONE or (meaning == RUNNING and st.serve):
            return value


def _moved(meaning: str | None, r: _Run) -> None:
    """Stamp the first RUNNING and DONE seen."""
    now = time.perf_counter()
    if meaning == RUNNING and r.running is None:
        r.running = now
    if meaning == DONE:
        if r.running is None:
            r.server["running_unobserved"] = True  # done between two polls: no queue_s
        r.done = r.done or now


def _poll_error(r: _Run, outcome: Outcome, error: str, status: int | None = None,
                headers: Any = None) -> None:
    r.poll_errors += 1
    r.server["poll_errors_total"] = r.server.get("poll_errors_total", 0) + 1
    if r.poll_errors >= MAX_POLL_ERRORS:
        raise _Failed(outcome, f"{error} ({r.poll_errors} polls in a row)", status, headers)


async def _collect(session: TargetSession, target: Target, st: JobApiSettings, r: _Run,
                   doc: dict[str, Any]) -> None:
    """The finished job's result: inline (`jobResult`), else from IPFS (`ipfsResult`)."""
    result = doc.get("jobResult", doc.get("result"))
    cid = shape.text_or_none(doc.get("ipfsResult"))
    if result is None and cid:
        t = time.perf_counter()
        status, headers, raw = await _request(session, target, "GET", st.ipfs_gateway + cid,
                                              authorized=False)
        r.result_s = time.perf_counter() - t
        r.nbytes += len(raw)
        _check_status(status, headers, raw, "result")
        result = _decode(raw, "result")
    if result is None:
        raise _Failed(Outcome.MALFORMED, "the finished job has neither jobResult nor "
                      "ipfsResult", 200)
    if not isinstance(result, dict):
        raise _Failed(Outcome.MALFORMED, "result is not a JSON object", 200)
    ops = result.get("opStates")
    if not isinstance(ops, list) or not ops:
        raise _Failed(Outcome.MALFORMED, "result has no opStates", 200)
    failed = _failed_status(result.get("status"))
    texts: list[str] = []
    for op in ops:
        if not isinstance(op, dict):
            raise _Failed(Outcome.MALFORMED, "an opState is not an object", 200)
        code = op.get("exitCode")
        if _failed_status(op.get("status")) or (
                isinstance(code, int) and not isinstance(code, bool) and code != 0):
            failed = True
            r.server["exit_code"] = code
        logs = op.get("logs")
        if not isinstance(logs, list | None):
            raise _Failed(Outcome.MALFORMED, f"opState logs is {shape.json_type(logs)}, "
                          "not a list", 200)
        for log in logs or ():
            if isinstance(log, dict) and log.get("type", "stdout") == "stdout":
                text = log.get("log", "")
                if not isinstance(text, str):
                    raise _Failed(Outcome.MALFORMED, f"a stdout log is "
                                  f"{shape.json_type(text)}, not a string", 200)
                texts.append(text)
    if failed:
        raise _Failed(Outcome.JOB_FAILED, "the job's result reports failure"
                      + (f" (exit code {r.server.get('exit_code')})"
                         if r.server.get("exit_code") is not None else ""), 200)
    r.output = "".join(texts)


def _failed_status(value: object) -> bool:
    return isinstance(value, str) and value.lower() in ("failed", "error")


def _finite(value: object) -> bool:
    """A JSON number usable as a time: not a boolean, not too large for a float."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and abs(value) < shape.MAX_COUNT * 1e3)


async def _await_endpoint(session: TargetSession, target: Target, st: JobApiSettings, r: _Run,
                          doc: dict[str, Any], loop: asyncio.AbstractEventLoop,
                          deadline: float) -> None:
    """Service jobs: RUNNING is not serving until the job's endpoint answers 2xx."""
    endpoint = (shape.text_or_none(r.server.get("endpoint"))
                or shape.text_or_none(doc.get("endpoint")) or shape.text_or_none(doc.get("url")))
    if not endpoint:
        raise _Failed(Outcome.MALFORMED, "serve: the running job has no endpoint", 200)
    r.server["endpoint"] = endpoint
    last = ""
    while True:
        try:
            status, _headers, raw = await _request(session, target, "GET", endpoint,
                                                   authorized=False)
        except REQUEST_ERRORS as exc:
            last = classify(exc, None)[1]
        else:
            if 200 <= status < 300:
                r.ready = time.perf_counter()
                return
            last = status_outcome(status, raw)[1]
        r.server["endpoint_last"] = last[:120]
        await asyncio.sleep(min(st.poll_s, max(deadline - loop.time(), 0.0)))


async def _stop(session: TargetSession, target: Target, st: JobApiSettings, r: _Run) -> None:
    """Best effort: do not leave a paid job running after the probe gave up on it."""
    url = (f"{st.base}/deployments/{r.deployment}/stop" if r.deployment is not None
           else f"{st.base}/jobs/{r.job_id}/stop")
    with contextlib.suppress(*REQUEST_ERRORS, TimeoutError):
        async with asyncio.timeout(STOP_TIMEOUT_S):
            status, _h, _raw = await _request(session, target, "POST", url)
            r.server["stop_status"] = status


def _result(target: Target, job: Job, rendered: Rendered, started_at: float, r: _Run,
            status: int | None, headers: Any, outcome: Outcome, error: str,
            end: float, output: str | None) -> ProbeResult:
    t0 = r.clock.t0
    details: dict[str, Any] = {"job_id": r.job_id, "states": r.states, "polls": r.polls,
                               **r.server}
    if r.running is not None and r.done is not None:
        details["run_s"] = r.done - r.running
    if r.ready is not None and r.running is not None:
        details["ready_s"] = r.ready - r.running
    if r.result_s is not None:
        details["result_fetch_s"] = r.result_s
    start, stop = r.server.get("timeStart"), r.server.get("timeEnd")
    if start is not None and stop is not None and stop >= start:
        details["server_run_s"] = stop - start
    return finish(
        target, job, rendered.prompt_hash, started_at, outcome, error=error,
        output=output,
        http_status=status, **r.clock.fields(),
        ttfb_s=None if r.first_byte is None else r.first_byte - t0,
        duration_s=end - t0,
        queue_s=None if r.running is None or r.submitted is None else r.running - r.submitted,
        bytes=r.nbytes, node=r.node,
        retry_after_s=retry_after(headers) if status == 429 and headers else None,
        details={k: v for k, v in details.items() if v is not None},
    )


KIND = ProbeKind.of(kinds.KINDS[kinds.JOBAPI], run)
