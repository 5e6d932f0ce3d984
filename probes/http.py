"""Plain HTTP health check (kind `http`): GET the URL, judge status and body, time it.

For gateways and status pages. The URL is probed as given. Passing needs a 2xx status (or
the job's `expect_status`, an int or a list of ints), a match in the body when the job's params
carry `body_regex`, and the job's check of the body text (`health-v1`: the body does not report
itself down); else `wrong_output`. Timings: connect, ttfb (headers), duration (body read).
Outcomes: ok, connect_error, timeout, disconnect, rate_limited, auth_error, quota_exhausted,
http_error, wrong_output.
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.core import kinds
from monitor.core.jobs import Job
from monitor.core.kindsettings import HttpSettings
from monitor.core.result import Outcome, ProbeResult
from monitor.core.secrets import cut
from monitor.core.target import Target
from probes.base import ProbeKind, auth_headers, finish, status_outcome
from probes.oneshot import request_once
from probes.session import TargetSession

MAX_BODY_BYTES = 1 << 20  # a health page larger than this is judged on its first MiB


async def run(target: Target, job: Job, session: TargetSession) -> ProbeResult:
    reply = await request_once(session, "GET", target.base_url, headers=auth_headers(target),
                               deadline_s=job.deadline_s, limit=MAX_BODY_BYTES)
    outcome, error, text = reply.outcome, reply.error, None
    if outcome is None:
        outcome, error, text = judge(reply.status or 0, reply.body, job, target.secrets())
    return finish(target, job, job.prompt_hash, reply.started_at, outcome, error=error,
                  output=text, **reply.fields())


def judge(status: int, body: bytes, job: Job, secrets: Iterable[str | None] = ()
          ) -> tuple[Outcome, str, str | None]:
    """(outcome, error, the body text for the job's check) of a whole answer; the body it
    quotes is scrubbed of `secrets` before it is cut."""
    settings = kinds.settings_of(HttpSettings, job)
    allowed = settings.expect_status  # None: any 2xx
    passed = status in allowed if allowed is not None else 200 <= status < 300
    if not passed:
        want = "2xx" if allowed is None else "/".join(str(s) for s in sorted(allowed))
        return *status_outcome(status, body, expected=want), None
    text = body.decode("utf-8", "replace")
    pattern = settings.body_regex
    if pattern and not pattern.search(text):
        return (Outcome.WRONG_OUTPUT, f"body does not match /{pattern.pattern}/: "
                f"{cut(text, 60, secrets)!r}",
                None)
    return Outcome.OK, "", text


KIND = ProbeKind.of(kinds.KINDS[kinds.HTTP], run)
