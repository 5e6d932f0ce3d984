"""Theta EdgeCloud's on-demand API (kind `theta`): submit an inference request, poll until done.

    POST {base}/infer_request/{model}?wait=W   {"input": {"messages", "max_tokens",
                                                "temperature", "stream": false}}
    GET  {base}/infer_request/{request_id}
      -> {"status", "body": {"infer_requests": [{id, state, output, error, ...}]}}

`model` is the service alias (`llama-3-1-8b`); `state` is pending, processing, success or
error. Paths, `wait`, the envelope and the states are thetatoken/on-demand-api-mcp's
(src/api/client.ts, src/types/index.ts); the key goes as `Authorization: Bearer` (the MCP's fix
of 2026-01-04: the API does not take `x-theta-api-key`). The LLM input fields besides
`messages` and the answer in `output.message` come from two third-party clients (unverified):
the answer is read from `output.message`, else `output.text`, else the output's JSON, so the
job's check still sees it.

Settings from the job's params or the base URL's query: `wait` (seconds the submit may hold
for the result, 0-60, default 30), `poll` (seconds between polls, default 1).

Measured: ttfb (submit answered), queue_s (submit sent -> processing seen), duration_s
(submit sent -> success seen). Not streamed: no TTFT, no decode rate. A request the network
reports as `error` is `job_failed`; up to MAX_POLL_ERRORS failed polls in a row are tolerated.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

from monitor.core import kinds
from monitor.core.jobs import Job
from monitor.core.kindsettings import ThetaSettings
from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from probes import shape
from probes.base import ProbeKind, auth_headers, classify, finish, retry_after, status_outcome
from probes.oneshot import read_body
from probes.session import RequestClock, TargetSession

WAITING = ("pending", "processing")
MAX_POLL_ERRORS = 3
MAX_DOCUMENT_BYTES = 1 << 20
# What a request can raise: transport failures, and a URL yarl cannot parse (the request id
# comes from the network).
REQUEST_ERRORS = (aiohttp.ClientError, OSError, asyncio.IncompleteReadError, ValueError)


class _Failed(Exception):
    def __init__(self, outcome: Outcome, error: str) -> None:
        super().__init__(error)
        self.outcome, self.error = outcome, error


def request_body(job: Job, messages: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The exact JSON the submit sends (tests check it)."""
    return {"input": {"messages": [{"role": r, "content": c} for r, c in messages],
                      "max_tokens": job.max_tokens, "temperature": job.temperature,
                      "stream": False}}


def answer_of(output: Any) -> str | None:
    """The generated text of a successful request, or None when it carries no output."""
    if not isinstance(output, dict) or not output:
        return None
    for key in ("message", "text"):
        text = output.get(key)
        if isinstance(text, str):
            return text
    return json.dumps(output)


def infer_request(body: bytes) -> dict[str, Any]:
    """The request document inside an answer's `{"body": {"infer_requests": [...]}}`."""
    try:
        value = shape.parse_json(body)
    except ValueError:
        raise _Failed(Outcome.MALFORMED, "2xx body is not JSON") from None
    inner = value.get("body") if isinstance(value, dict) else None
    requests = inner.get("infer_requests") if isinstance(inner, dict) else None
    if not isinstance(requests, list) or not requests or not isinstance(requests[0], dict):
        raise _Failed(Outcome.MALFORMED, "no body.infer_requests[0] in the answer")
    doc = requests[0]
    state = doc.get("state")
    if not isinstance(state, str) or state not in (*WAITING, "success", "error"):
        raise _Failed(Outcome.MALFORMED, f"unknown request state "
                      f"{shape.text_or_none(state) or shape.json_type(state)!r}")
    if state in WAITING and not shape.text_or_none(doc.get("id")):
        raise _Failed(Outcome.MALFORMED, f"a {state} request without an id to poll")
    return doc


@dataclass(slots=True)
class _Run:
    base: str
    headers: dict[str, str]
    poll_s: float
    clock: RequestClock = field(default_factory=RequestClock)
    status: int | None = None
    resp_headers: Any = None
    first_byte: float | None = None
    processing: float | None = None
    done: float | None = None
    doc: dict[str, Any] = field(default_factory=dict)
    states: list[str] = field(default_factory=list)
    polls: int = 0
    nbytes: int = 0

    def see(self, doc: dict[str, Any]) -> None:
        now = time.perf_counter()
        self.doc = doc
        if not self.states or self.states[-1] != doc["state"]:
            self.states.append(doc["state"])
        if doc["state"] == "processing" and self.processing is None:
            self.processing = now
        if doc["state"] not in WAITING:
            self.done = now


async def run(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    rendered = job.render()
    st = kinds.settings_of(ThetaSettings, job, target.base_url)
    wait = st.wait(job.deadline_s)
    r = _Run(base=st.base, headers={**auth_headers(target), "Content-Type": "application/json"},
             poll_s=st.poll_s)
    started_at = time.time()
    outcome, error = Outcome.OK, ""
    try:
        async with asyncio.timeout(job.deadline_s):
            await _submit(session, target, job, rendered.messages, wait, r)
            await _poll(session, r)
        if r.doc["state"] == "error":
            raise _Failed(Outcome.JOB_FAILED, "the network reports the request failed: "
                          f"{r.doc.get('error') or 'no reason given'}")
    except TimeoutError:
        where = f"still {r.doc['state']}" if r.doc else "no answer to the submit"
        outcome, error = Outcome.TIMEOUT, f"no completion within {job.deadline_s:g}s ({where})"
    except _Failed as exc:
        outcome, error = exc.outcome, exc.error
    except REQUEST_ERRORS as exc:
        outcome, error = classify(exc, r.clock)
    end = time.perf_counter()
    output = answer_of(r.doc.get("output")) if outcome is Outcome.OK else None
    if outcome is Outcome.OK and output is None:
        outcome, error = Outcome.MALFORMED, "the request succeeded without an output"
    t0 = r.clock.t0
    details = {"request_id": shape.text_or_none(r.doc.get("id")), "states": r.states,
               "polls": r.polls, "wait_s": wait}
    return finish(
        target, job, rendered.prompt_hash, started_at, outcome, error=error, output=output,
        http_status=r.status, connect_s=r.clock.connect_s,
        ttfb_s=None if r.first_byte is None else r.first_byte - t0,
        duration_s=(r.done if r.done is not None and outcome is Outcome.OK else end) - t0,
        queue_s=None if r.processing is None else r.processing - t0, bytes=r.nbytes,
        retry_after_s=retry_after(r.resp_headers) if r.status == 429 else None,
        details={k: v for k, v in details.items() if v is not None},
    )


async def _submit(session: TargetSession, target: Target, job: Job,
                  messages: Sequence[tuple[str, str]], wait: float, r: _Run) -> None:
    url = f"{r.base}/infer_request/{quote(target.model, safe='')}?wait={wait:g}"
    payload = json.dumps(request_body(job, messages)).encode()
    async with session.client.post(url, data=payload, headers=r.headers,
                                   trace_request_ctx=r.clock) as resp:
        r.status, r.resp_headers = resp.status, resp.headers
        raw = await read_body(resp.content, MAX_DOCUMENT_BYTES)
    r.first_byte = time.perf_counter()
    r.nbytes += len(raw)
    if r.status >= 300:
        raise _Failed(*status_outcome(r.status, raw))
    r.see(infer_request(raw))


async def _poll(session: TargetSession, r: _Run) -> None:
    """Poll until the request leaves pending/processing; a few failed polls are tolerated."""
    errors = 0
    while r.doc["state"] in WAITING:
        await asyncio.sleep(r.poll_s)
        r.polls += 1
        url = f"{r.base}/infer_request/{quote(str(r.doc['id']), safe='')}"
        try:
            async with session.client.get(url, headers=r.headers) as resp:
                status, raw = resp.status, await read_body(resp.content, MAX_DOCUMENT_BYTES)
        except REQUEST_ERRORS as exc:
            failed, reason = classify(exc, None)
        else:
            r.nbytes += len(raw)
            if status == 404:
                raise _Failed(Outcome.JOB_FAILED, f"poll: the network lost request "
                              f"{r.doc.get('id')} (404)")
            if status < 300:
                r.see(infer_request(raw))
                errors = 0
                continue
            failed, reason = status_outcome(status, raw)
        errors += 1
        if errors >= MAX_POLL_ERRORS:
            raise _Failed(failed, f"poll: {reason} ({errors} polls in a row)")


KIND = ProbeKind.of(kinds.KINDS[kinds.THETA], run)
