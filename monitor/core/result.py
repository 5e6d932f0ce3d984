"""The probe contract's output: the closed set of outcomes and the frozen ProbeResult.

Outcome taxonomy (one place, like httpx's exception tree):

    ok              completed, protocol valid, output check passed
    wrong_output    completed, but the answer failed the job's check
    timeout         no completion within the job's total deadline
    stalled         the stream started, then an inter-token gap exceeded the stall limit
    connect_error   DNS, TCP or TLS failure before the request was sent
    disconnect      connection dropped after the request was sent, before a terminal event
    rate_limited    HTTP 429 (Retry-After kept in retry_after_s)
    http_error      any other non-2xx, or an error object inside a 200 stream
    malformed       2xx but not the protocol (not SSE/JSON, undecodable chunk, missing fields)
    job_failed      job-based networks: the network reported failure or lost the node
    auth_error      HTTP 401/403: the buyer's key or permissions           } the buyer's side,
    quota_exhausted HTTP 402 or a documented out-of-credits/quota answer   } not the network's
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from monitor.core.secrets import cut, scrub, scrub_value


class Outcome(enum.StrEnum):
    OK = "ok"
    WRONG_OUTPUT = "wrong_output"
    TIMEOUT = "timeout"
    STALLED = "stalled"
    CONNECT_ERROR = "connect_error"
    DISCONNECT = "disconnect"
    RATE_LIMITED = "rate_limited"
    HTTP_ERROR = "http_error"
    MALFORMED = "malformed"
    JOB_FAILED = "job_failed"
    AUTH_ERROR = "auth_error"
    QUOTA_EXHAUSTED = "quota_exhausted"


OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)
FAILURE_OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome if o is not Outcome.OK)

# Which runs count toward what: the one definition the SLA maths, the queries, the metrics, the
# rules and the report all use. Outcome is a StrEnum, so stored outcome strings match too.
COMPLETED_OUTCOMES: frozenset[Outcome] = frozenset({Outcome.OK, Outcome.WRONG_OUTPUT})
"""Reached the terminal event: their duration is an end-to-end latency and their decode rate a
whole stream's (a failure's duration is time-to-failure). E2E, decode rate and the wrong-output
rate are judged on these runs; TTFT on every run that has one."""

NOT_THE_NETWORKS_FAULT: frozenset[Outcome] = frozenset({Outcome.AUTH_ERROR,
                                                       Outcome.QUOTA_EXHAUSTED})
"""The buyer's or the monitor's problem, not the network's (a bad key, an account out of
credits): stored and exported like every outcome, raising the "probe misconfigured" alert, but
left out of the network's availability, error budget and disconnect rate, the way OpenRouter
leaves out 429s. Reports show them beside the availability."""


def completed(outcome: str) -> bool:
    """The run reached the terminal event (see COMPLETED_OUTCOMES)."""
    return outcome in COMPLETED_OUTCOMES


def counts_toward_availability(outcome: str) -> bool:
    """The run says something about the network's availability (see NOT_THE_NETWORKS_FAULT)."""
    return outcome not in NOT_THE_NETWORKS_FAULT


# The phases of a run, in order (docs/metrics.md defines each; `ProbeResult.phases()`).
PHASES: tuple[str, ...] = ("resolve", "connect", "tls", "processing", "first_token", "transfer")

ERROR_MAX_CHARS = 300
PROBE_ERROR = "probe_error"
"""The `details` key of a run whose probe raised instead of returning an outcome (a bug in the
probe): its exception's type. The run is stored and exported as `malformed` all the same, and
counted in `depin_monitor_probe_errors_total`."""


# Where a run's output token count came from (`ProbeResult.token_source`): the server's own
# count (OpenAI's `usage`, Ollama's `eval_count`), or the probe's count of content deltas, one
# token each, when the server reported none.
TOKENS_REPORTED = "usage"
TOKENS_COUNTED = "counted"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One run of one job against one target. Seconds everywhere; None means 'not observed'."""

    network: str
    target: str
    job: str
    model: str
    outcome: Outcome
    started_at: float  # unix seconds, wall clock, taken once at the start
    kind: str = "openai"
    job_version: int = 1
    prompt_hash: str = ""
    location: str = ""
    scheduled_at: float | None = None  # unix seconds the scheduler meant to start it
    http_status: int | None = None
    error: str = ""
    connect_s: float | None = None  # new connection set up (DNS+TCP+TLS); None when pooled
    ttfb_s: float | None = None  # request sent -> first response byte
    ttft_s: float | None = None  # request sent -> first generated token (not the role chunk)
    duration_s: float | None = None  # request sent -> terminal event, or -> the failure
    output_tokens: int | None = None
    input_tokens: int | None = None
    token_source: str | None = None  # TOKENS_REPORTED or TOKENS_COUNTED
    tokens_per_s: float | None = None  # decode: tokens after the first chunk / (t_last - t_first)
    max_gap_s: float | None = None  # largest gap between consecutive tokens
    bytes: int = 0
    queue_s: float | None = None  # job networks: submitted -> running
    retry_after_s: float | None = None
    served_model: str | None = None
    system_fingerprint: str | None = None
    node: str | None = None  # node-identifying response header, when the network sends one
    lagged: bool = False  # the prober's event loop lagged while this run was measured
    details: dict[str, Any] = field(default_factory=dict)  # kind-specific extras (JSON-able)
    # How the connection was made (None: not observed, e.g. a pooled connection's lookup)
    dns_s: float | None = None  # DNS lookup of a new connection (not cached, not an IP)
    tcp_s: float | None = None  # TCP connect (to the proxy and through CONNECT, via one)
    tls_s: float | None = None  # TLS handshake of a new connection
    ip_version: int | None = None  # 4 or 6: the connection the run used
    tls_version: str | None = None  # "TLSv1.3" (pooled connections report theirs too)
    tls_cipher: str | None = None
    tls_cert_expiry: float | None = None  # unix seconds: the chain's earliest notAfter

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def lateness_s(self) -> float | None:
        if self.scheduled_at is None:
            return None
        return self.started_at - self.scheduled_at

    def phases(self) -> dict[str, float]:
        """Seconds spent in each observed phase (blackbox_exporter's `phase`, plus the
        stream's first token): resolve, connect, tls (new connections), processing (sent ->
        first byte), first_token (first byte -> first token), transfer (first token, or
        first byte, -> the end; completed runs only)."""
        out: dict[str, float] = {}
        for phase, value in (("resolve", self.dns_s), ("connect", self.tcp_s),
                             ("tls", self.tls_s), ("processing", self.ttfb_s)):
            if value is not None:
                out[phase] = max(value, 0.0)
        if self.ttfb_s is not None and self.ttft_s is not None:
            out["first_token"] = max(self.ttft_s - self.ttfb_s, 0.0)
        if self.outcome in COMPLETED_OUTCOMES and self.duration_s is not None \
                and self.ttfb_s is not None:
            since = self.ttft_s if self.ttft_s is not None else self.ttfb_s
            out["transfer"] = max(self.duration_s - since, 0.0)
        return out

    def scrubbed(self, secrets: Iterable[str | None]) -> ProbeResult:
        """This result with every text a network may have written in it (error, served
        model, fingerprint, node, TLS names, details) scrubbed of `secrets`
        (`monitor.core.secrets`); what every sink is handed."""
        secrets = tuple(secrets)
        changed: dict[str, Any] = {}
        for name in _NETWORK_TEXTS:
            value = getattr(self, name)
            if value and (clean := scrub(value, secrets)) != value:
                changed[name] = clean
        if self.error:
            error = cut(self.error, ERROR_MAX_CHARS, secrets, one_line=True)
            if error != self.error:
                changed["error"] = error
        if self.details:
            details = scrub_value(self.details, secrets)
            if details != self.details:
                changed["details"] = details
        return dataclasses.replace(self, **changed) if changed else self

    def replace(self, **changes: Any) -> ProbeResult:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        row["outcome"] = self.outcome.value
        return row


# The str fields of a ProbeResult a network can write (besides `error` and `details`).
_NETWORK_TEXTS = ("served_model", "system_fingerprint", "node", "tls_version", "tls_cipher")
