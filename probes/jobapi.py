"""Job-based networks (kind `jobapi`), modelled on Nosana: submit a job, poll it, fetch its result.

The REST shape (Nosana's credit API at `https://dashboard.k8s.prd.nos.ci/api`; see
docs/networks.md for what is verified and what is not):

    POST {base}/jobs/list     {market, timeout, jobDefinition[, ipfsHash]} -> {job, tx, ...}
    GET  {base}/jobs/{job}    -> {state, node, timeStart, timeEnd, jobResult?, endpoint?}
    GET  {base}/jobs/{job}/results   (only when the poll carried no result)
    POST {base}/jobs/{job}/stop      (best effort, when the probe gives up on a live job)

Settings come from the job's params or the base URL's query string (`?market=...&poll=2`):
`market`, `poll` (seconds between polls, default 5), `timeout` (the job's lease in seconds),
`ipfs` (a pinned job definition), `serve=1` (a service job: once RUNNING, its endpoint must
answer 2xx; Nosana's "RUNNING but 503 Service Initializing" is caught here), `image`.

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
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp

from monitor.core.jobs import CHAT, Job, Rendered
from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from probes import shape
from probes.base import ProbeKind, auth_headers, classify, finish, retry_after, status_outcome
from probes.oneshot import read_body
from probes.session import RequestClock, TargetSession
from probes.shape import parse_json

# The network's job states -> what they mean to the probe. Nosana's job states (on chain
# 0..3, in its APIs by name) first, then its deployment states for deployment-style APIs.
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
UNFUNDED = "unfunded"  # the buyer's account cannot pay for the job: quota_exhausted
STATE_MAP: dict[str | int, str] = {
    # Nosana job state
    "QUEUED": QUEUED, 0: QUEUED,
    "RUNNING": RUNNING, 1: RUNNING,
    "COMPLETED": DONE, "DONE": DONE, 2: DONE,
    "STOPPED": FAILED, 3: FAILED,  # stopped before completing: by timeout, a user or node loss
    # Nosana deployment status
    "DRAFT": QUEUED, "STARTING": QUEUED,
    "STOPPING": FAILED, "ERROR": FAILED, "ARCHIVED": FAILED,
    "INSUFFICIENT_FUNDS": UNFUNDED,
    # generic job APIs
    "PENDING": QUEUED, "SUCCEEDED": DONE, "FAILED": FAILED, "CANCELLED": FAILED,
}
MAX_POLL_ERRORS = 3
DEFAULT_POLL_S = 5.0
DEFAULT_IMAGE = "docker.io/ollama/ollama:0.6.2"
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


@dataclass(frozen=True, slots=True)
class Settings:
    base: str
    market: str
    poll_s: float
    lease_s: int
    ipfs: str | None
    serve: bool
    image: str


def settings(target: Target, job: Job) -> Settings:
    """The job's params override the base URL's query string, which overrides defaults."""
    parts = urlsplit(target.base_url)
    query = dict(parse_qsl(parts.query))
    opts: dict[str, Any] = {**query, **{k: v for k, v in job.params.items() if v is not None}}
    base = urlunsplit(parts._replace(query="", fragment="")).rstrip("/")
    serve = str(opts.get("serve", "")).lower() in ("1", "true", "yes")
    return Settings(
        base=base,
        market=str(opts.get("market", "")),
        poll_s=max(float(opts.get("poll", opts.get("poll_interval_s", DEFAULT_POLL_S))), 0.01),
        lease_s=int(float(opts.get("timeout", max(60, int(job.deadline_s) + 1)))),
        ipfs=str(opts["ipfs"]) if opts.get("ipfs") else None,
        serve=serve,
        image=str(opts.get("image", DEFAULT_IMAGE)),
    )


def job_definition(job: Job, rendered: Rendered, model: str, st: Settings) -> dict[str, Any]:
    """A Nosana-style job definition (v0.1): one container op that runs the prompt once
    (batch) or serves the model on an exposed port (serve). Unverified details are listed in
    docs/networks.md; the prompt travels in the op's env."""
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


def submit_body(job: Job, rendered: Rendered, model: str, st: Settings) -> dict[str, Any]:
    """The exact JSON the submit sends (tests check it)."""
    body: dict[str, Any] = {"market": st.market, "timeout": st.lease_s,
                            "jobDefinition": job_definition(job, rendered, model, st)}
    if st.ipfs:
        body["ipfsHash"] = st.ipfs
    return body


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
    if r.job_id and r.meaning in (None, QUEUED, RUNNING) and (outcome is not Outcome.OK
                                                               or st.serve):
        await _stop(session, target, st, r)  # a paid job is never left running
    output = None if st.serve else r.output  # a service job is judged by its endpoint
    return _result(target, job, rendered, started_at, r, status, headers, outcome, error, end,
                   output)


async def _request(session: TargetSession, target: Target, method: str, url: str,
                   body: dict[str, Any] | None = None, clock: RequestClock | None = None
                   ) -> tuple[int, Any, bytes]:
    headers = auth_headers(target)
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
                  st: Settings, r: _Run) -> None:
    body = submit_body(job, rendered, target.model, st)
    status, headers, raw = await _request(session, target, "POST", f"{st.base}/jobs/list",
                                          body, r.clock)
    r.first_byte = r.submitted = time.perf_counter()
    r.nbytes += len(raw)
    _check_status(status, headers, raw, "submit")
    value = _decode(raw, "submit")
    job_id = value.get("job") or value.get("id") or value.get("address")
    if not isinstance(job_id, str) or not job_id:
        raise _Failed(Outcome.MALFORMED, "submit: response has no job id (job/id/address)",
                      status)
    r.job_id = job_id
    _observe(value, r)


def _observe(value: dict[str, Any], r: _Run) -> str | None:
    """Record a job document's state, node and server times; our meaning of its state."""
    r.node = shape.text_or_none(value.get("node")) or r.node
    for key in ("timeStart", "timeEnd", "listedAt"):
        if _finite(value.get(key)):
            r.server[key] = value[key]
    if shape.text_or_none(value.get("endpoint")):
        r.server["endpoint"] = shape.text_or_none(value["endpoint"])
    raw = value.get("state", value.get("status"))
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _Failed(Outcome.MALFORMED, f"job state is {shape.json_type(raw)}", 200)
    r.state = str(raw)[:shape.MAX_TEXT_CHARS]
    if not r.states or r.states[-1] != r.state:
        r.states.append(r.state)
    meaning = map_state(raw)
    if meaning is None:
        raise _Failed(Outcome.MALFORMED, f"unknown job state {raw!r}", 200)
    r.meaning = meaning
    return meaning


async def _poll(session: TargetSession, target: Target, st: Settings, r: _Run,
                loop: asyncio.AbstractEventLoop, deadline: float) -> dict[str, Any]:
    """Poll until the job is done (or, for a service job, running); the last job document."""
    url = f"{st.base}/jobs/{r.job_id}"
    while True:
        await asyncio.sleep(min(st.poll_s, max(deadline - loop.time(), 0.0)))
        r.polls += 1
        try:
            status, headers, raw = await _request(session, target, "GET", url)
        except REQUEST_ERRORS as exc:
            outcome, reason = classify(exc, None)
            _poll_error(r, outcome, f"poll: {reason}")
            continue
        r.nbytes += len(raw)
        if status == 404:
            raise _Failed(Outcome.JOB_FAILED, f"poll: the network lost job {r.job_id} (404)",
                          status, headers)
        if status == 429 or status >= 500:
            outcome, reason = status_outcome(status, raw)
            if outcome in (Outcome.RATE_LIMITED, Outcome.HTTP_ERROR):  # a control-plane blip
                _poll_error(r, outcome, f"poll: {reason}", status, headers)
                continue
        _check_status(status, headers, raw, "poll")
        value = _decode(raw, "poll")
        r.poll_errors = 0
        meaning = _observe(value, r)
        now = time.perf_counter()
        if meaning is None:
            raise _Failed(Outcome.MALFORMED, "poll: job document without a state", status)
        if meaning == RUNNING and r.running is None:
            r.running = now
        if meaning == DONE and r.running is None:
            r.server["running_unobserved"] = True  # done between two polls: no queue_s
        if meaning == FAILED:
            raise _Failed(Outcome.JOB_FAILED, f"the network reports the job {r.state}"
                          + (f" on node {r.node}" if r.node else ""), status)
        if meaning == UNFUNDED:
            raise _Failed(Outcome.QUOTA_EXHAUSTED, f"the network reports the job {r.state}: "
                          "the account cannot pay for it", status)
        if meaning == DONE:
            r.done = now
            return value
        if meaning == RUNNING and st.serve:
            return value


def _poll_error(r: _Run, outcome: Outcome, error: str, status: int | None = None,
                headers: Any = None) -> None:
    r.poll_errors += 1
    r.server["poll_errors_total"] = r.server.get("poll_errors_total", 0) + 1
    if r.poll_errors >= MAX_POLL_ERRORS:
        raise _Failed(outcome, f"{error} ({r.poll_errors} polls in a row)", status, headers)


async def _collect(session: TargetSession, target: Target, st: Settings, r: _Run,
                   doc: dict[str, Any]) -> None:
    """The finished job's result: inline in the poll, else fetched; its output text."""
    result = doc.get("jobResult", doc.get("result"))
    if result is None:
        t = time.perf_counter()
        status, headers, raw = await _request(session, target, "GET",
                                              f"{st.base}/jobs/{r.job_id}/results")
        r.result_s = time.perf_counter() - t
        r.nbytes += len(raw)
        _check_status(status, headers, raw, "result")
        result = _decode(raw, "result")
        result = result.get("jobResult", result.get("result", result))
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


async def _await_endpoint(session: TargetSession, target: Target, st: Settings, r: _Run,
                          doc: dict[str, Any], loop: asyncio.AbstractEventLoop,
                          deadline: float) -> None:
    """Service jobs: RUNNING is not serving until the job's endpoint answers 2xx."""
    endpoint = shape.text_or_none(doc.get("endpoint")) or shape.text_or_none(doc.get("url"))
    if not endpoint:
        raise _Failed(Outcome.MALFORMED, "serve: the running job has no endpoint", 200)
    r.server["endpoint"] = endpoint
    last = ""
    while True:
        try:
            status, _headers, raw = await _request(session, target, "GET", endpoint)
        except REQUEST_ERRORS as exc:
            last = classify(exc, None)[1]
        else:
            if 200 <= status < 300:
                r.ready = time.perf_counter()
                return
            last = status_outcome(status, raw)[1]
        r.server["endpoint_last"] = last[:120]
        await asyncio.sleep(min(st.poll_s, max(deadline - loop.time(), 0.0)))


async def _stop(session: TargetSession, target: Target, st: Settings, r: _Run) -> None:
    """Best effort: do not leave a paid job running after the probe gave up on it."""
    with contextlib.suppress(*REQUEST_ERRORS, TimeoutError):
        async with asyncio.timeout(STOP_TIMEOUT_S):
            status, _h, _raw = await _request(session, target, "POST",
                                              f"{st.base}/jobs/{r.job_id}/stop")
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


KIND = ProbeKind(
    name="jobapi",
    run=run,
    requests=frozenset({CHAT}),
    url_hint="the job API base, e.g. https://dashboard.k8s.prd.nos.ci/api?market=<market>",
)
