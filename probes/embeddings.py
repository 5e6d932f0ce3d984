"""OpenAI-compatible `/embeddings`, used by kind `openai` for embedding jobs (one round trip).

Answer: `{"data": [{"embedding": [floats], "index": 0}], "usage": {"prompt_tokens"}, "model"}`.
The vector is the output the job's check judges; the prompt tokens come from `usage`.
"""

from __future__ import annotations

import json
from typing import Any

from monitor.core.jobs import Job
from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from probes import shape
from probes.account import error_outcome
from probes.base import auth_headers, error_message, finish, status_outcome
from probes.oneshot import Reply, request_once
from probes.session import TargetSession
from probes.shape import ProtocolError, parse_json


def request_body(job: Job, model: str, text: str) -> dict[str, Any]:
    return {"model": model, "input": [text], "encoding_format": "float"}


async def run(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    rendered = job.render()
    headers = auth_headers(target)
    headers["Content-Type"] = "application/json"
    payload = json.dumps(request_body(job, target.model, rendered.prompt)).encode()
    reply = await request_once(session, "POST", target.base_url.rstrip("/") + "/embeddings",
                               headers=headers, data=payload, deadline_s=job.deadline_s)
    outcome, error, vector, tokens = reply.outcome, reply.error, None, None
    if outcome is None:
        outcome, error, vector, tokens = _judge(reply)
    return finish(target, job, rendered.prompt_hash, reply.started_at, outcome, error=error,
                  output=vector, input_tokens=tokens,
                  details={"dimensions": len(vector)} if vector else {}, **reply.fields())


def _judge(reply: Reply) -> tuple[Outcome, str, list[Any] | None, int | None]:
    """(outcome, error, the vector to check, prompt tokens) of a whole embeddings answer."""
    if reply.status is None or reply.status >= 300:
        return *status_outcome(reply.status or 0, reply.body), None, None
    if reply.oversized:
        return Outcome.MALFORMED, "response exceeded the size cap", None, None
    try:
        value = parse_json(reply.body)
    except ValueError:
        return Outcome.MALFORMED, "2xx body is not JSON", None, None
    if isinstance(value, dict) and value.get("error"):
        return (error_outcome(value["error"]),
                f"error in 200 response: {error_message(reply.body)}", None, None)
    try:
        value = shape.obj(value, ("response",))
        data = shape.opt_list(value, "data")
        if not data:
            raise ProtocolError("not an embeddings response: no data[0]")
        vector = shape.opt_list(shape.obj(data[0], ("data", 0)), "embedding", ("data", 0))
        if vector is None:
            raise ProtocolError("not an embeddings response: no data[0].embedding")
        usage = shape.opt_obj(value, "usage") or {}
        tokens = shape.opt_count(usage, "prompt_tokens", ("usage",))
    except ProtocolError as exc:
        return Outcome.MALFORMED, str(exc), None, None
    return Outcome.OK, "", vector, tokens
