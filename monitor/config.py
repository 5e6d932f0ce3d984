"""The YAML config: validated up front, every mistake reported at once, one line each.

Pydantic models (unknown keys forbidden) check the file's shape; what the rest of the code gets
is a frozen `Config` of plain dataclasses. Every error names the file, the key path
(`networks[2].interval`), what is wrong and how to fix it, and never echoes a secret.
API keys are read from the environment only (`api_key_env`); a literal key in the file is an
error. Reference: docs/operations.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.core import checks, values
from monitor.core.answerfile import load_answers
from monitor.core.capacity import (
    CapacityLimits,
    CapacitySchedule,
    CapacitySettings,
    StepCriteria,
    cost_bound,
)
from monitor.core.comparison import Comparison, asked
from monitor.core.contract import SUITES as CONTRACT_SUITES
from monitor.core.contract import ContractPlan, ContractSettings, Param
from monitor.core.equality import (
    PROMPT_SETS,
    EqualityPlan,
    EqualitySettings,
    request_cost_usd,
)
from monitor.core.errors import ConfigError
from monitor.core.fingerprint import CANDIDATE_SETS, FingerprintPlan, FingerprintSettings
from monitor.core.fingerprint import Target as FingerprintTarget
from monitor.core.fingerprint import request_cost_usd as fingerprint_cost_usd
from monitor.core.jobs import CHAT, COMPLETION, EMBEDDING, HEALTH, IMAGE, JOBS_BY_NAME, Job
from monitor.core.kinds import KINDS, bind
from monitor.core.logs import scrub_logs
from monitor.core.params import query_problems
from monitor.core.quality import (
    SUITES,
    QualityPlan,
    QualitySettings,
    worst_case_cost_usd,
)
from monitor.core.quality_suite import DIFFICULTIES, FAMILIES
from monitor.core.samplefile import load_samples
from monitor.core.shard import Shard
from monitor.core.slaprofile import (
    BUILTIN_PROFILES,
    ENTERPRISE,
    CapacityObjective,
    CreditTier,
    MaintenanceWindow,
    SLAProfile,
)
from monitor.core.target import Target
from monitor.core.times import clip, format_duration, parse_duration, parse_time
from monitor.core.tlsfiles import TLSFileError, check_files
from monitor.core.transport import (
    DEFAULT_CERT_EXPIRY_WARNING_S,
    DEFAULT_TRANSPORT,
    IP_FAMILIES,
    TransportSettings,
)

DEFAULT_INTERVAL_S = 60.0
DEFAULT_CONCURRENCY = 32  # global bound on runs in flight
DEFAULT_TARGET_CONCURRENCY = 4  # per (network, tier)
DEFAULT_CAPACITY = CapacitySettings()
# While the store cannot write: results held in memory (~0.6-1 KB each), then the oldest are
# dropped; on shutdown a failing store is retried this long (monitor.storage.store).
DEFAULT_BUFFER_RESULTS = 50_000
DEFAULT_STORE_SHUTDOWN_S = 5.0
MAX_MAINTENANCE_S = 366 * 86400.0  # a maintenance window's longest
_ENV_NAME = values.ENV_NAME
MAX_CONFIG_BYTES = 4 << 20
MAX_CONFIG_NODES = 200_000  # YAML values once aliases are expanded
# Keys and headers that would put a credential in the file instead of the environment.
_SECRET_KEYS = {"api_key", "apikey", "key", "token", "api_token", "password", "secret",
                "authorization", "bearer"}
_SECRET_HEADERS = {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-auth-token"}


Duration = Annotated[float, BeforeValidator(parse_duration)]
Time = Annotated[float, BeforeValidator(parse_time)]


# -- the file's shape ------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True,
                              allow_inf_nan=False)


def _within_cap(needs: str, need: int, cap: int, fix: str, cap_name: str = "max_requests"
                ) -> None:
    """A verdict family's planned requests fit its request cap; else the reason, one line
    (`needs`: what a run asks and why, "a run needs 250 requests per network (...)")."""
    if need > cap:
        raise ValueError(f"{needs} but {cap_name} is {cap}; {fix}")


def _reachable(permutations: int, alpha: float, suggest_times: int) -> None:
    """A permutation test can give a p-value below alpha: the smallest is 1/(permutations+1)."""
    if 1 / (permutations + 1) >= alpha:
        raise ValueError(f"permutations: {permutations} cannot give a p-value below alpha "
                         f"{alpha:g} (the smallest is 1/(permutations+1)); use at least "
                         f"{int(1 / alpha) * suggest_times}")


class CapacityObjectiveModel(_Strict):
    """The SLA item "sustains `streams` concurrent streams at >= decode_tps_min tokens/s each
    with availability >= availability", judged from capacity ladders (docs/capacity.md)."""

    streams: int = Field(ge=1, le=10_000)
    decode_tps_min: float | None = Field(None, gt=0)
    availability: float | None = Field(None, gt=0, le=1)
    ttft_p95_s: float | None = Field(None, gt=0)
    ladders: float = Field(0.9, gt=0, le=1)


class CreditModel(_Strict):
    """A credit tier: a month below `below` availability earns `credit` of its spend."""

    below: float = Field(gt=0, le=1)
    credit: float = Field(gt=0, le=1)


class ProfileModel(_Strict):
    """An SLA profile: fractions (0.999 = 99.9 %), seconds, tokens/s; null disables an SLI."""

    availability: float | None = Field(0.999, gt=0, le=1)
    ttft_p95_s: float | None = Field(2.0, gt=0)
    e2e_p99_s: float | None = Field(30.0, gt=0)
    disconnect_rate: float | None = Field(0.001, ge=0, le=1)
    decode_tps_min: float | None = Field(20.0, gt=0)
    wrong_output_rate: float | None = Field(0.01, ge=0, le=1)
    window_days: int = Field(30, ge=1, le=366)
    capacity: CapacityObjectiveModel | None = None
    quality_not_worse: bool = False  # the tier ladder wants "not worse" (docs/quality.md)
    credits: list[CreditModel] = []

    @field_validator("credits")
    @classmethod
    def _credits(cls, credits: list[CreditModel]) -> list[CreditModel]:
        ordered = sorted(credits, key=lambda t: -t.below)
        if len({t.below for t in credits}) != len(credits):
            raise ValueError("two tiers have the same `below`; give each threshold once")
        for higher, lower in itertools.pairwise(ordered):
            if lower.credit < higher.credit:
                raise ValueError(f"below {lower.below:g} earns {lower.credit:g}, less than "
                                 f"below {higher.below:g} ({higher.credit:g}); a worse month "
                                 "must earn at least the same credit")
        return ordered

    def build(self, name: str) -> SLAProfile:
        fields = self.model_dump(exclude={"capacity", "credits"})
        item = CapacityObjective(**self.capacity.model_dump()) if self.capacity else None
        credits = tuple(CreditTier(below=t.below, credit=t.credit) for t in self.credits)
        return SLAProfile(name=name, capacity=item, credits=credits, **fields)


class AlertingModel(_Strict):
    """Where the generated alerts point on-call engineers."""

    runbook_url: str | None = None

    @field_validator("runbook_url")
    @classmethod
    def _runbook_url(cls, url: str | None) -> str | None:
        return None if url is None else values.runbook_url(url)


class MaintenanceModel(_Strict):
    start: Time
    end: Time
    networks: list[str] = []
    reason: str = ""

    @field_validator("networks")
    @classmethod
    def _known(cls, networks: list[str], info: ValidationInfo) -> list[str]:
        names = (info.context or {}).get("networks")
        unknown = [n for n in networks if names is not None and n not in names]
        if unknown:
            raise ValueError(f"{', '.join(map(repr, unknown))} not a network of this config; "
                             f"use names from: {', '.join(sorted(names or ()))}")
        return networks

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceModel:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_MAINTENANCE_S:
            raise ValueError(f"a window of {(self.end - self.start) / 86400:,.0f} days; a "
                             f"maintenance window is at most {MAX_MAINTENANCE_S / 86400:.0f} "
                             "days long: split a longer outage into windows, or leave it in "
                             "the SLA")
        return self


class CheckModel(_Strict):
    """Exactly one of: regex, contains, exact, json_fields, min_length."""

    regex: str | None = None
    contains: str | None = None
    exact: str | None = None
    json_fields: dict[str, Any] | None = None
    min_length: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one(self) -> CheckModel:
        given = [k for k, v in self.__dict__.items() if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of regex, contains, exact, json_fields, "
                             f"min_length (got {', '.join(given) or 'none'})")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from None
        return self

    def build(self) -> checks.Check:
        if self.regex is not None:
            return checks.Regex(self.regex)
        if self.contains is not None:
            return checks.Contains(self.contains)
        if self.exact is not None:
            return checks.Exact(self.exact)
        if self.json_fields is not None:
            return checks.JsonFields(tuple(self.json_fields.items()))
        return checks.MinLength(self.min_length or 0)


_REQUESTS = (CHAT, COMPLETION, EMBEDDING, IMAGE, HEALTH)


class JobModel(_Strict):
    """A custom job: the fields of monitor.core.jobs.Job."""

    name: str = Field(min_length=1)
    version: int = Field(1, ge=1)
    request: str = CHAT
    description: str = ""
    system: str = ""
    user: str = ""
    max_tokens: int = Field(64, ge=0)
    deadline_s: Duration = 30.0
    stall_s: Duration = 10.0
    check: CheckModel
    reference_answer: str = ""
    temperature: float = Field(0.0, ge=0)
    seed: int = 1234
    params: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _new_name(cls, name: str) -> str:
        if name in JOBS_BY_NAME:
            raise ValueError(f"{name!r} is a standard job and cannot be redefined; a changed "
                             "job is a new name (e.g. my-chat-v1 or chat-short-v2)")
        return name

    @field_validator("request")
    @classmethod
    def _request(cls, request: str) -> str:
        if request not in _REQUESTS:
            raise ValueError(f"{request!r} is not a request kind; use one of "
                             f"{', '.join(_REQUESTS)}")
        return request

    def build(self) -> Job:
        return Job(name=self.name, version=self.version, request=self.request,
                   description=self.description, system=self.system, user=self.user,
                   max_tokens=self.max_tokens, deadline_s=self.deadline_s,
                   stall_s=self.stall_s, check=self.check.build(),
                   reference_answer=self.reference_answer, temperature=self.temperature,
                   seed=self.seed, params=dict(self.params))


class PriceModel(_Strict):
    """USD per million tokens."""

    input: float = Field(ge=0, le=values.MAX_USD)
    output: float = Field(ge=0, le=values.MAX_USD)


def _known(name: str, choices: Iterable[str], what: str) -> str:
    """`name` if it is one of `choices` (listed in their order in the error)."""
    choices = list(choices)
    if name not in choices:
        raise ValueError(f"unknown {what} {name!r}; use one of {', '.join(choices)}")
    return name


def _check_url(url: str, expected: str, with_credentials: str) -> None:
    """ValueError unless `url` is http(s) with a host, a valid port, no space or control
    character and no user:pass@ (monitor.core.values, which the CLI's options use too)."""
    values.url_parts(url, expected=expected, with_credentials=with_credentials)


class TLSModel(_Strict):
    """How to trust the network and who we are to it. File paths are relative to the config."""

    ca_file: str | None = Field(None, min_length=1)
    cert_file: str | None = Field(None, min_length=1)
    key_file: str | None = Field(None, min_length=1)
    key_password_env: str | None = Field(None, pattern=_ENV_NAME)
    server_name: str | None = Field(None, pattern=values.SERVER_NAME, max_length=253)
    insecure: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> TLSModel:
        if self.key_file and not self.cert_file:
            raise ValueError("key_file without cert_file; give the client certificate too")
        if self.key_password_env and not self.cert_file:
            raise ValueError("key_password_env without a client certificate; give cert_file "
                             "and key_file, or remove it")
        if self.insecure and self.ca_file:
            raise ValueError("insecure: true turns certificate verification off, so ca_file "
                             "would be ignored; keep ca_file (verified) and remove insecure")
        return self


class CapacityModel(_Strict):
    """A network's capacity ladders (docs/capacity.md): opt-in, they cost real requests."""

    interval: Duration = DEFAULT_CAPACITY.interval_s
    job: str = DEFAULT_CAPACITY.job
    ladder: list[int] = Field(list(DEFAULT_CAPACITY.ladder), min_length=1)
    step_duration: Duration = DEFAULT_CAPACITY.step_s
    requests_per_stream: int = Field(DEFAULT_CAPACITY.requests_per_stream, ge=1, le=1000)
    max_concurrency: int = Field(DEFAULT_CAPACITY.limits.max_concurrency, ge=1, le=10_000)
    max_requests: int = Field(DEFAULT_CAPACITY.limits.max_requests, ge=1)
    max_spend: float | None = Field(None, gt=0, le=values.MAX_USD)  # USD per ladder, worst case
    tiers: list[str] | None = None

    @field_validator("interval", "step_duration")
    @classmethod
    def _positive(cls, seconds: float) -> float:
        if seconds <= 0:
            raise ValueError("must be a positive duration, e.g. 30s or 1h")
        return seconds

    @field_validator("ladder")
    @classmethod
    def _rising(cls, ladder: list[int]) -> list[int]:
        if any(streams < 1 for streams in ladder):
            raise ValueError("every step is a number of concurrent streams, at least 1")
        if any(b <= a for a, b in itertools.pairwise(ladder)):
            raise ValueError(f"{ladder} must rise step by step, e.g. [1, 4, 16, 64]")
        return ladder

    @model_validator(mode="after")
    def _within_limits(self) -> CapacityModel:
        top = self.ladder[-1]
        if top > self.max_concurrency:
            raise ValueError(f"ladder step {top} is above max_concurrency "
                             f"{self.max_concurrency}; raise max_concurrency or drop the step")
        if sum(self.ladder) > self.max_requests:
            raise ValueError(f"the ladder needs at least {sum(self.ladder)} requests (one a "
                             f"stream a step), max_requests is {self.max_requests}; raise it "
                             "or shorten the ladder")
        return self

    def settings(self) -> CapacitySettings:
        return CapacitySettings(
            ladder=tuple(self.ladder), step_s=self.step_duration,
            requests_per_stream=self.requests_per_stream,
            limits=CapacityLimits(self.max_concurrency, self.max_requests, self.max_spend),
            job=self.job, interval_s=self.interval, tiers=tuple(self.tiers or ()))


class NetworkModel(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    kind: str = "openai"
    base_url: str
    api_key_env: str | None = Field(None, pattern=_ENV_NAME)
    models: dict[str, str] | None = None
    model: str | None = None
    jobs: list[str] | None = None
    interval: Duration = DEFAULT_INTERVAL_S
    concurrency: int = Field(DEFAULT_TARGET_CONCURRENCY, ge=1, le=1000)
    sla: str | None = None
    price_per_mtok: PriceModel | None = None
    monthly_spend_usd: float | None = Field(None, ge=0, le=values.MAX_USD)
    headers: dict[str, str] = {}
    check_output: bool = True
    enabled: bool = True
    tls: TLSModel | None = None
    proxy: str | None = None
    ip_preference: str | None = None
    ip_fallback: bool = True
    catalog_url: str | None = None  # where it lists its models, if not where its kind does
    capacity: CapacityModel | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, kind: str) -> str:
        return _known(kind, sorted(KINDS), "kind")

    @field_validator("base_url")
    @classmethod
    def _url(cls, url: str) -> str:
        _check_url(url, "an http(s) URL with a host; write e.g. https://api.example.com/v1",
                   "the URL carries credentials (user:pass@); remove them and put the key in "
                   "an environment variable named by api_key_env")
        return url.rstrip("/")

    @field_validator("catalog_url")
    @classmethod
    def _catalog_url(cls, url: str | None) -> str | None:
        if url is not None:
            _check_url(url, "an http(s) URL with a host; write e.g. https://api.chutes.ai/chutes/",
                       "the URL carries credentials (user:pass@); a listing that needs a key "
                       "is read with the network's api_key_env")
        return url

    @field_validator("models")
    @classmethod
    def _models(cls, models: dict[str, str] | None) -> dict[str, str] | None:
        if models is not None:
            if not models:
                raise ValueError("empty; give at least one tier, e.g. {small: model-id}")
            for tier, model in models.items():
                if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", tier):
                    raise ValueError(f"tier name {tier!r} must be a short label like small")
                if not model:
                    raise ValueError(f"tier {tier!r} has an empty model id")
        return models

    @field_validator("jobs")
    @classmethod
    def _jobs(cls, jobs: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if jobs is None:
            return None
        if not jobs:
            raise ValueError("empty; list at least one job, e.g. [chat-short-v1]")
        known = {**JOBS_BY_NAME, **((info.context or {}).get("jobs") or {})}
        kind = info.data.get("kind")
        problems = []
        for name in jobs:
            job = known.get(name)
            if name not in known:
                close = difflib.get_close_matches(name, list(known), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                problems.append(f"unknown job {name!r}; {hint}known jobs: "
                                f"{', '.join(known)}")
            elif kind is not None and job is not None:
                speaks = KINDS[kind].requests
                if job.request not in speaks:
                    article = "an" if job.request[0] in "aeiou" else "a"
                    problems.append(f"job {name!r} is {article} {job.request} job, which kind "
                                    f"{kind!r} "
                                    f"does not speak; use a {'/'.join(sorted(speaks))} job")
        if problems:
            raise ValueError("; ".join(problems))
        return jobs

    @field_validator("sla")
    @classmethod
    def _sla(cls, sla: str | None, info: ValidationInfo) -> str | None:
        profiles = (info.context or {}).get("profiles") or BUILTIN_PROFILES
        if sla is not None and sla not in profiles:
            raise ValueError(f"unknown SLA profile {sla!r}; define it under sla_profiles or "
                             f"use one of {', '.join(profiles)}")
        return sla

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            values.header(name, value)
            if name.lower() in _SECRET_HEADERS or value.lower().startswith(("bearer ", "basic ")):
                raise ValueError(f"header {name!r} would put a credential in the file; keys "
                                 "come from the environment: set api_key_env: VAR_NAME")
        return headers

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, proxy: str | None) -> str | None:
        return None if proxy is None else values.proxy_url(proxy)

    @field_validator("ip_preference")
    @classmethod
    def _ip(cls, family: str | None) -> str | None:
        if family is not None and family not in IP_FAMILIES:
            raise ValueError(f"{clip(family)!r} is not an IP family; use ipv4 or ipv6")
        return family

    @model_validator(mode="after")
    def _fallback(self) -> NetworkModel:
        if not self.ip_fallback and self.ip_preference is None:
            raise ValueError("ip_fallback: false needs ip_preference (ipv4 or ipv6)")
        return self

    @model_validator(mode="after")
    def _one_model_spec(self) -> NetworkModel:
        if self.models is None and self.model is None:
            raise ValueError("no model: give `models: {small: model-id, ...}` or `model: id`")
        if self.models is not None and self.model is not None:
            raise ValueError("give either `models` (per tier) or `model`, not both")
        return self


class StoreModel(_Strict):
    """How the store rides out a failing disk (docs/operations.md, storage faults)."""

    buffer_results: int = Field(DEFAULT_BUFFER_RESULTS, ge=1, le=10_000_000)
    shutdown_timeout: Duration = Field(DEFAULT_STORE_SHUTDOWN_S, ge=0, le=3600)


_EQ = EqualitySettings()  # the defaults


class CompareModel(_Strict):
    """One model equality test: a network (one tier, or every tier it shares with the
    reference) against a reference network of this config or a stored sample set."""

    saved_by: ClassVar[str] = "a sample set made by `depin-monitor equality --save`"

    network: str
    tier: str | None = None
    reference: str | None = None
    reference_file: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_reference(self) -> Self:
        if (self.reference is None) == (self.reference_file is None):
            raise ValueError("give exactly one of reference (a network of this config) or "
                             f"reference_file ({self.saved_by})")
        return self


class EqualityModel(_Strict):
    """Model equality testing (docs/equality.md). Per network and model, per run: at most
    max_requests requests and max_spend_usd."""

    prompt_set: str = _EQ.prompt_set
    prompts: int = Field(_EQ.prompts, ge=1)
    samples_per_prompt: int = Field(_EQ.samples_per_prompt, ge=2, le=1000)
    chars: int = Field(_EQ.chars, ge=1, le=100_000)
    max_tokens: int = Field(_EQ.max_tokens, ge=1, le=100_000)
    temperature: float = Field(_EQ.temperature, gt=0, le=2)
    alpha: float = Field(_EQ.alpha, gt=0, lt=1)
    consecutive: int = Field(_EQ.consecutive, ge=1, le=100)
    permutations: int = Field(_EQ.permutations, ge=1, le=100_000)
    min_samples: float = Field(_EQ.min_samples, gt=0, le=1)
    interval: Duration = _EQ.interval_s
    concurrency: int = Field(_EQ.concurrency, ge=1, le=256)
    max_requests: int = Field(_EQ.max_requests, ge=1)
    max_spend_usd: float = Field(_EQ.max_spend_usd, gt=0, le=values.MAX_USD)
    deadline: Duration = _EQ.deadline_s
    compare: list[CompareModel] = Field(min_length=1)

    @field_validator("prompt_set")
    @classmethod
    def _known_set(cls, name: str) -> str:
        return _known(name, PROMPT_SETS, "prompt set")

    @model_validator(mode="after")
    def _coherent(self) -> EqualityModel:
        size = len(PROMPT_SETS[self.prompt_set].prompts)
        if self.prompts > size:
            raise ValueError(f"prompts: {self.prompts} but prompt set {self.prompt_set!r} has "
                             f"{size}; lower prompts to {size} or less")
        need = self.prompts * self.samples_per_prompt
        _within_cap(f"a run needs {need} requests per network (prompts x samples_per_prompt)",
                    need, self.max_requests, "raise max_requests or sample less")
        _reachable(self.permutations, self.alpha, 10)
        return self

    def settings(self) -> EqualitySettings:
        return EqualitySettings(
            prompt_set=self.prompt_set, prompts=self.prompts,
            samples_per_prompt=self.samples_per_prompt, chars=self.chars,
            max_tokens=self.max_tokens, temperature=self.temperature, alpha=self.alpha,
            consecutive=self.consecutive, permutations=self.permutations,
            min_samples=self.min_samples, interval_s=self.interval,
            concurrency=self.concurrency, max_requests=self.max_requests,
            max_spend_usd=self.max_spend_usd, deadline_s=self.deadline)


_QA = QualitySettings()  # the defaults


class QualityCompareModel(CompareModel):
    """One quality audit: a network (one tier, or every tier it shares with the reference)
    against a reference network of this config or a stored answer file."""

    saved_by: ClassVar[str] = "an answer file made by `depin-monitor quality --save`"


class QualityModel(_Strict):
    """Output quality audits (docs/quality.md). Per network and model, per audit: at most
    max_requests requests and max_spend_usd."""

    suite: str = _QA.suite
    items: int = Field(_QA.items, ge=1, le=10_000)
    families: list[str] = list(_QA.families)
    difficulties: list[int] = list(_QA.difficulties)
    max_tokens: int = Field(_QA.max_tokens, ge=1, le=100_000)
    alpha: float = Field(_QA.alpha, gt=0, lt=1)
    consecutive: int = Field(_QA.consecutive, ge=1, le=100)
    min_items: float = Field(_QA.min_items, gt=0, le=1)
    interval: Duration = _QA.interval_s
    concurrency: int = Field(_QA.concurrency, ge=1, le=256)
    max_requests: int = Field(_QA.max_requests, ge=1)
    max_spend_usd: float = Field(_QA.max_spend_usd, gt=0)
    deadline: Duration = _QA.deadline_s
    seed: int | None = Field(None, ge=0, lt=2**63)
    compare: list[QualityCompareModel] = Field(min_length=1)

    @field_validator("suite")
    @classmethod
    def _known_suite(cls, suite: str) -> str:
        return _known(suite, SUITES, "suite")

    @field_validator("families")
    @classmethod
    def _known_families(cls, families: list[str]) -> list[str]:
        unknown = [f for f in families if f not in FAMILIES]
        if unknown or not families:
            raise ValueError(f"unknown family {unknown[0]!r}; use some of "
                             f"{', '.join(FAMILIES)}" if unknown else
                             f"no family; use some of {', '.join(FAMILIES)}")
        return list(dict.fromkeys(families))

    @field_validator("difficulties")
    @classmethod
    def _known_difficulties(cls, levels: list[int]) -> list[int]:
        if not levels or any(d not in DIFFICULTIES for d in levels):
            raise ValueError(f"{levels}: use some of {', '.join(map(str, DIFFICULTIES))}")
        return sorted(set(levels))

    @model_validator(mode="after")
    def _coherent(self) -> QualityModel:
        _within_cap(f"an audit asks {self.items} items of each network", self.items,
                    self.max_requests, "raise max_requests or ask fewer items")
        return self

    def settings(self) -> QualitySettings:
        return QualitySettings(
            suite=self.suite, items=self.items, families=tuple(self.families),
            difficulties=tuple(self.difficulties), max_tokens=self.max_tokens,
            alpha=self.alpha, consecutive=self.consecutive, min_items=self.min_items,
            interval_s=self.interval, concurrency=self.concurrency,
            max_requests=self.max_requests, max_spend_usd=self.max_spend_usd,
            deadline_s=self.deadline, seed=self.seed)
_CT = ContractSettings()  # the defaults


class ContractModel(_Strict):
    """The contract checks (docs/contract.md): the tool-call suite and the parameter matrix,
    per network and model. Per run: at most max_requests requests and max_spend_usd."""

    suite: str = _CT.suite
    params: list[str] = [p.value for p in _CT.params]
    max_tokens: int = Field(_CT.max_tokens, ge=16, le=100_000)
    seed_repeats: int = Field(_CT.seed_repeats, ge=2, le=20)
    interval: Duration = _CT.interval_s
    concurrency: int = Field(_CT.concurrency, ge=1, le=64)
    max_requests: int = Field(_CT.max_requests, ge=1)
    max_spend_usd: float = Field(_CT.max_spend_usd, gt=0)
    deadline: Duration = _CT.deadline_s
    alpha: float = Field(_CT.alpha, gt=0, lt=1)
    networks: list[str] = Field(min_length=1)
    reference: str | None = None

    @field_validator("suite")
    @classmethod
    def _known_suite(cls, name: str) -> str:
        return _known(name, CONTRACT_SUITES, "suite")

    @field_validator("params")
    @classmethod
    def _known_params(cls, names: list[str]) -> list[str]:
        known = [p.value for p in Param]
        for n in names:
            if n not in known:
                raise ValueError(f"unknown parameter {n!r}; use any of {', '.join(known)}")
        return names

    @model_validator(mode="after")
    def _coherent(self) -> ContractModel:
        need = self.settings().planned_requests()
        _within_cap(f"a run needs {need} requests per network and model (the suite streamed "
                    "and not, and the matrix)", need, self.max_requests,
                    f"raise max_requests to {need}")
        return self

    def settings(self) -> ContractSettings:
        return ContractSettings(
            suite=self.suite, params=tuple(Param(p) for p in self.params),
            max_tokens=self.max_tokens, seed_repeats=self.seed_repeats,
            interval_s=self.interval, concurrency=self.concurrency,
            max_requests=self.max_requests, max_spend_usd=self.max_spend_usd,
            deadline_s=self.deadline, alpha=self.alpha)
_FP = FingerprintSettings()  # the defaults


class FingerprintTargetModel(_Strict):
    """One fingerprinted network: one tier, or every tier it has; `reference`: a network of
    this config serving the same model, sampled on the same inputs in each run."""

    network: str
    tier: str | None = None
    reference: str | None = None


class FingerprintModel(_Strict):
    """The fingerprint (docs/fingerprint.md): caps per network and model, per run and per
    discovery."""

    candidates: str = _FP.candidates
    candidates_tried: int = Field(_FP.candidates_tried, ge=1)
    tries: int = Field(_FP.tries, ge=2, le=100)
    border_inputs: int = Field(_FP.border_inputs, ge=1, le=1000)
    min_border_inputs: int = Field(_FP.min_border_inputs, ge=1, le=1000)
    reference_samples: int = Field(_FP.reference_samples, ge=2, le=10_000)
    samples_per_input: int = Field(_FP.samples_per_input, ge=1, le=1000)
    top_logprobs: int = Field(_FP.top_logprobs, ge=0, le=20)
    logprob_samples: int = Field(_FP.logprob_samples, ge=1, le=1000)
    baseline_runs: int = Field(_FP.baseline_runs, ge=1, le=365)
    alpha: float = Field(_FP.alpha, gt=0, lt=1)
    permutations: int = Field(_FP.permutations, ge=1, le=100_000)
    min_samples: float = Field(_FP.min_samples, gt=0, le=1)
    interval: Duration = _FP.interval_s
    concurrency: int = Field(_FP.concurrency, ge=1, le=256)
    max_requests: int = Field(_FP.max_requests, ge=1)
    max_spend_usd: float = Field(_FP.max_spend_usd, gt=0)
    discovery_max_requests: int = Field(_FP.discovery_max_requests, ge=1)
    discovery_max_spend_usd: float = Field(_FP.discovery_max_spend_usd, gt=0)
    deadline: Duration = _FP.deadline_s
    networks: list[FingerprintTargetModel] = Field(min_length=1)

    @field_validator("candidates")
    @classmethod
    def _known_set(cls, name: str) -> str:
        return _known(name, CANDIDATE_SETS, "candidate set")

    @model_validator(mode="after")
    def _coherent(self) -> FingerprintModel:
        s = self.settings()
        size = len(CANDIDATE_SETS[self.candidates].prompts)
        if self.candidates_tried > size:
            raise ValueError(f"candidates_tried: {self.candidates_tried} but candidate set "
                             f"{self.candidates!r} has {size}; lower it to {size} or less")
        if any(e.reference is not None for e in self.networks):
            _within_cap(f"a run with a reference network needs {2 * s.run_requests} requests "
                        "per network (border_inputs x samples_per_input, on the network and "
                        "on its reference)", 2 * s.run_requests, s.max_requests,
                        "raise max_requests or sample less")
        else:
            _within_cap(f"a run needs {s.run_requests} requests per network (border_inputs x "
                        "samples_per_input)", s.run_requests, s.max_requests,
                        "raise max_requests or sample less")
        _within_cap(f"a discovery needs up to {s.discovery_requests} requests "
                    "(candidates_tried x tries + border_inputs x reference_samples)",
                    s.discovery_requests, s.discovery_max_requests,
                    "raise it or try fewer candidates", "discovery_max_requests")
        _reachable(self.permutations, self.alpha, 2)
        return self

    def settings(self) -> FingerprintSettings:
        return FingerprintSettings(
            candidates=self.candidates, candidates_tried=self.candidates_tried,
            tries=self.tries, border_inputs=self.border_inputs,
            min_border_inputs=self.min_border_inputs,
            reference_samples=self.reference_samples,
            samples_per_input=self.samples_per_input, top_logprobs=self.top_logprobs,
            logprob_samples=self.logprob_samples, baseline_runs=self.baseline_runs,
            alpha=self.alpha, permutations=self.permutations, min_samples=self.min_samples,
            interval_s=self.interval, concurrency=self.concurrency,
            max_requests=self.max_requests, max_spend_usd=self.max_spend_usd,
            discovery_max_requests=self.discovery_max_requests,
            discovery_max_spend_usd=self.discovery_max_spend_usd, deadline_s=self.deadline)


class ConfigModel(_Strict):
    location: str = Field("local", pattern=values.LABEL, max_length=100)
    quorum: int = Field(1, ge=1, le=100)
    sla_profiles: dict[str, ProfileModel] = {}
    maintenance: list[MaintenanceModel] = []
    jobs: list[JobModel] = []
    networks: list[NetworkModel] = Field(min_length=1)
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=10_000)
    listen: str | None = None
    store: StoreModel = StoreModel(buffer_results=DEFAULT_BUFFER_RESULTS,
                                   shutdown_timeout=DEFAULT_STORE_SHUTDOWN_S)
    alerting: AlertingModel = AlertingModel()
    cert_expiry_warning: Duration = DEFAULT_CERT_EXPIRY_WARNING_S
    equality: EqualityModel | None = None
    quality: QualityModel | None = None
    contract: ContractModel | None = None
    fingerprint: FingerprintModel | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, listen: str | None) -> str | None:
        return None if listen is None else values.listen_address(listen)


# -- what the rest of the code uses ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Network:
    """One network of the config. No secret in here: only the variable's name."""

    name: str
    kind: str
    base_url: str
    models: tuple[tuple[str, str], ...]  # (tier, model id)
    jobs: tuple[str, ...]
    interval_s: float
    concurrency: int = DEFAULT_TARGET_CONCURRENCY
    api_key_env: str | None = None
    sla: str | None = None
    price_per_mtok: Mapping[str, float] | None = None  # {"input": usd, "output": usd}
    monthly_spend_usd: float | None = None  # what the buyer spends a month (SLA credits)
    headers: tuple[tuple[str, str], ...] = ()
    check_output: bool = True
    enabled: bool = True
    transport: TransportSettings = DEFAULT_TRANSPORT
    catalog_url: str | None = None  # overrides where the kind lists models (monitor.catalog)
    capacity: CapacitySettings | None = None  # capacity ladders (opt-in)

    @property
    def interval(self) -> str:
        return format_duration(self.interval_s)

    def targets(self) -> list[Target]:
        return [Target(network=self.name, name=tier, kind=self.kind, base_url=self.base_url,
                       model=model, api_key_env=self.api_key_env, headers=self.headers,
                       concurrency=self.concurrency, check_output=self.check_output,
                       transport=self.transport)
                for tier, model in self.models]

    def missing_envs(self) -> list[str]:
        """Variables this network reads a secret from (API key, TLS key password) not set."""
        names = [self.api_key_env, *self.transport.secret_envs()]
        return [n for n in names if n and not os.environ.get(n)]


@dataclass(frozen=True, slots=True)
class StoreSettings:
    buffer_results: int = DEFAULT_BUFFER_RESULTS
    shutdown_timeout_s: float = DEFAULT_STORE_SHUTDOWN_S


@dataclass(frozen=True)
class Config:
    """A loaded config. `networks` holds the enabled networks; `disabled` names the others."""

    path: str
    location: str
    networks: tuple[Network, ...]
    profiles: Mapping[str, SLAProfile]
    jobs: Mapping[str, Job] = field(default_factory=dict)  # custom jobs by name
    maintenance: tuple[MaintenanceWindow, ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    listen: str | None = None
    disabled: tuple[str, ...] = ()
    store: StoreSettings = StoreSettings()
    runbook_url: str | None = None  # where the operator hosts docs/runbooks.md
    cert_expiry_warning_s: float = DEFAULT_CERT_EXPIRY_WARNING_S
    equality: EqualityPlan | None = None
    quality: QualityPlan | None = None
    contract: ContractPlan | None = None
    fingerprint: FingerprintPlan | None = None
    quorum: int = 1  # locations that must see a network fail before it pages
    # With --shard: every network of the whole config, for lookups by name (a comparison's
    # reference tier may be another shard's); `networks` holds what this agent probes.
    catalog: tuple[Network, ...] = ()

    def network(self, name: str) -> Network:
        """The config's network of that name, all its tiers (also another shard's)."""
        for net in self.catalog or self.networks:
            if net.name == name:
                return net
        raise KeyError(name)

    def job(self, name: str) -> Job:
        return self.jobs[name] if name in self.jobs else JOBS_BY_NAME[name]

    def targets(self) -> list[Target]:
        """One Target per (network, model tier)."""
        return [t for net in self.networks for t in net.targets()]

    def schedules(self) -> list[tuple[Target, Job, float]]:
        """Every (target, job, interval seconds) the monitor runs, each job carrying its
        settings as the network's kind reads them (monitor.core.kinds.bind)."""
        out = []
        for net in self.networks:
            jobs = [self.bound_job(name, net) for name in net.jobs]
            out += [(target, job, net.interval_s) for target in net.targets() for job in jobs]
        return out

    def bound_job(self, name: str, network: Network) -> Job:
        """The job `name` as `network` runs it: with the settings its kind reads from the
        job's params and the network's base URL, typed (monitor.core.kinds.bind)."""
        return bind(self.job(name), network.kind, network.base_url)

    def profile(self, network: Network) -> SLAProfile:
        """The network's SLA profile (enterprise when it names none)."""
        return self.profiles[network.sla] if network.sla else ENTERPRISE

    def network_profiles(self) -> dict[str, SLAProfile]:
        """network -> the SLA profile it names, for the networks that name one (those judged
        by the exporter, the rules, the report and the status page)."""
        return {n.name: self.profiles[n.sla] for n in self.networks if n.sla}

    def capacity_schedules(self) -> list[CapacitySchedule]:
        """Every model tier a capacity ladder climbs, with its job, settings and criteria."""
        out = []
        for net in self.networks:
            if net.capacity is None:
                continue
            criteria = StepCriteria.for_profile(self.profile(net))
            for target in net.targets():
                if not net.capacity.tiers or target.name in net.capacity.tiers:
                    out.append(CapacitySchedule(target, self.bound_job(net.capacity.job, net),
                                                net.capacity, criteria, net.price_per_mtok))
        return out

    def price(self, network: str) -> Mapping[str, float] | None:
        return self.network(network).price_per_mtok

    def secrets(self) -> tuple[str, ...]:
        """The values of every secret variable the networks name (API keys, TLS key
        passwords) that is set: what `monitor.core.secrets.scrub` removes."""
        names = [v for n in self.networks for v in (n.api_key_env, *n.transport.secret_envs())]
        return tuple(dict.fromkeys(os.environ[v] for v in names if v and os.environ.get(v)))

    def missing_keys(self) -> list[tuple[str, str]]:
        """(network, variable) for every secret variable (api_key_env, tls.key_password_env)
        a network names that is not set."""
        return [(n.name, var) for n in self.networks for var in n.missing_envs()]

    def without(self, names: Iterable[str]) -> Config:
        """The same config minus some networks (e.g. those whose key is missing)."""
        drop = set(names)
        equality = self.equality
        if equality is not None:
            kept = tuple(c for c in equality.comparisons
                         if c.network not in drop and c.reference not in drop)
            equality = dataclasses.replace(equality, comparisons=kept) if kept else None
        quality = self.quality
        if quality is not None:
            audited = tuple(c for c in quality.comparisons
                            if c.network not in drop and c.reference not in drop)
            quality = dataclasses.replace(quality, comparisons=audited) if audited else None
        return dataclasses.replace(
            self, networks=tuple(n for n in self.networks if n.name not in drop),
            disabled=(*self.disabled, *sorted(drop)), equality=equality, quality=quality,
            fingerprint=_fingerprint_without(self.fingerprint, drop),
            contract=_contract_without(self.contract, drop))

    def sharded(self, shard: Shard) -> Config:
        """The same config with only the model tiers this shard probes (monitor.core.shard),
        networks left with no tier dropped, and the model equality comparisons of those tiers
        (their reference may be another shard's tier: it is sampled for the test, not
        scheduled)."""
        networks = []
        for net in self.networks:
            models = tuple((tier, m) for tier, m in net.models if shard.owns(net.name, tier))
            if models:
                networks.append(dataclasses.replace(net, models=models))
        equality = self.equality
        if equality is not None:
            mine = tuple(c for c in equality.comparisons if shard.owns(c.network, c.tier))
            equality = dataclasses.replace(equality, comparisons=mine) if mine else None
        quality = self.quality
        if quality is not None:
            audited = tuple(c for c in quality.comparisons if shard.owns(c.network, c.tier))
            quality = dataclasses.replace(quality, comparisons=audited) if audited else None
        contract = self.contract
        if contract is not None:
            owned = tuple(t for t in contract.targets if shard.owns(*t))
            contract = dataclasses.replace(contract, targets=owned) if owned else None
        fingerprint = self.fingerprint
        if fingerprint is not None:
            owned_fp = tuple(t for t in fingerprint.targets if shard.owns(t.network, t.tier))
            fingerprint = dataclasses.replace(fingerprint, targets=owned_fp) if owned_fp else None
        return dataclasses.replace(self, networks=tuple(networks), equality=equality,
                                   quality=quality, fingerprint=fingerprint,
                                   contract=contract,
                                   catalog=self.catalog or self.networks)


def _contract_without(plan: ContractPlan | None, drop: set[str]) -> ContractPlan | None:
    """The contract plan minus the dropped networks (None when none is left to check)."""
    if plan is None:
        return None
    kept = tuple(t for t in plan.targets if t[0] not in drop)
    reference = plan.reference if plan.reference and plan.reference[0] not in drop else None
    return dataclasses.replace(plan, targets=kept, reference=reference) if kept else None


def _fingerprint_without(plan: FingerprintPlan | None, drop: set[str]
                         ) -> FingerprintPlan | None:
    if plan is None:
        return None
    # A dropped reference network leaves its targets compared with their sets' reference
    # (each run stores which reference it used).
    kept = tuple(t if t.reference not in drop else dataclasses.replace(t, reference=None)
                 for t in plan.targets if t.network not in drop)
    return dataclasses.replace(plan, targets=kept) if kept else None


# -- loading -------------------------------------------------------------------------------

class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (YAML keeps the last silently)
    and a document whose aliases expand past MAX_CONFIG_NODES (a "billion laughs" file is
    tiny and expands to 10^9 values, which validation would then walk)."""

    def construct_document(self, node: yaml.Node) -> Any:
        if _expanded_size(node) > MAX_CONFIG_NODES:
            raise yaml.constructor.ConstructorError(
                None, None, f"its aliases (*name) expand to more than {MAX_CONFIG_NODES:,} "
                "values; write the values out", node.start_mark)
        return super().construct_document(node)


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode,
                       deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str | int | float | bool | None):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value, not a list or a mapping",
                key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice in one mapping", key_node.start_mark)
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=deep))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes the document has with every alias written out (iterative, memoised by
    node: an alias is the same node object as its anchor)."""
    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        if children_done or not children:
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            if size[id(node)] > MAX_CONFIG_NODES:
                return size[id(node)]
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    return size[id(root)]


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, validate and build the config; ConfigError lists every mistake, one per line.
    From then on the process scrubs its log lines of the config's secrets (`scrub_logs`)."""
    name = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError([f"{name}: no such file; give a config path, e.g. -c "
                           "examples/demo.yaml"]) from None
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{name}: larger than {MAX_CONFIG_BYTES >> 20} MiB; is it the "
                           "right file? (a config of 10,000 networks is about 2 MiB)"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{name}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                           f"{exc.start}); save it as UTF-8"]) from None
    config = parse_config(text, name)
    scrub_logs(config.secrets())
    return config


def parse_config(text: str, name: str = "<config>") -> Config:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise ConfigError([f"{where}: invalid YAML: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{name}: invalid YAML: {' '.join(str(exc).split())}"]) from None
    except RecursionError:
        raise ConfigError([f"{name}: invalid YAML: nested too deeply"]) from None
    except ValueError as exc:  # e.g. an integer of 5,000 digits
        raise ConfigError([f"{name}: invalid YAML: {clip(str(exc), 120)}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{name}: expected a mapping with at least `networks:`; see "
                           "examples/demo.yaml"])
    problems = _secret_keys(data, name)
    context = _context(data)
    try:
        model = ConfigModel.model_validate(data, context=context)
    except ValidationError as exc:
        problems += [_describe(err, name) for err in exc.errors()
                     if not _is_reported_secret(err)]
        raise ConfigError(_first(_unique(problems))) from None
    problems += (_cross_checks(model, name) + _param_checks(model, name)
                 + _transport_checks(model, name) + _equality_checks(model, name)
                 + _quality_checks(model, name) + _contract_checks(model, name)
                 + _fingerprint_checks(model, name))
    if problems:
        raise ConfigError(_first(_unique(problems)))
    return _build(model, name)


def _context(data: dict[str, Any]) -> dict[str, Any]:
    """Profile and custom job names, so that networks can be checked against them in one pass."""
    profiles: dict[str, Any] = dict(BUILTIN_PROFILES)
    if isinstance(data.get("sla_profiles"), dict):
        profiles.update({str(k): None for k in data["sla_profiles"]})
    jobs: dict[str, Any] = {}
    for raw in _list(data.get("jobs")):
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            try:
                jobs[raw["name"]] = JobModel.model_validate(raw).build()
            except ValidationError:
                jobs[raw["name"]] = None  # its own errors are reported under jobs[i]
    networks = {str(n.get("name")) for n in _list(data.get("networks")) if isinstance(n, dict)}
    return {"profiles": profiles, "jobs": jobs, "networks": networks}


def _list(value: object) -> list[Any]:
    """A list from the file, or nothing (its wrong type is reported by validation)."""
    return value if isinstance(value, list) else []


def _secret_keys(data: dict[str, Any], name: str) -> list[str]:
    """A literal credential at the top level or in a network: one error each, never the value."""
    places: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    if isinstance(data.get("networks"), list):
        places += [(("networks", i), n) for i, n in enumerate(data["networks"])]
    problems = []
    for loc, mapping in places:
        if not isinstance(mapping, dict):
            continue
        for key in mapping:
            if isinstance(key, str) and key.lower() in _SECRET_KEYS:
                var = _env_name(mapping) if loc else "MY_NETWORK_API_KEY"
                problems.append(f"{name}: {_path((*loc, key))}: literal credentials are not "
                                "allowed in the config; remove it, export the key as an "
                                f"environment variable and set api_key_env: {var}")
    return problems


def _env_name(network: dict[str, Any]) -> str:
    raw = str(network.get("name") or "NETWORK")
    return re.sub(r"[^A-Za-z0-9]", "_", raw).upper() + "_API_KEY"


def _is_reported_secret(err: Any) -> bool:
    last = err["loc"][-1] if err["loc"] else None
    return (err["type"] == "extra_forbidden" and isinstance(last, str)
            and last.lower() in _SECRET_KEYS)


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _describe(err: Any, name: str) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = list(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (f"{name}: {_path(loc)}: unknown key; {hint}allowed keys here: "
                f"{', '.join(allowed)}")
    if kind == "missing":
        return f"{name}: {_path(loc)}: required key is missing; add it"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if kind in ("int_parsing", "float_parsing", "bool_parsing", "int_type", "float_type",
                "string_type", "bool_type", "dict_type", "list_type", "model_type",
                "int_from_float"):
        msg = f"{msg} (got {clip(err.get('input'))!r})"
    return f"{name}: {_path(loc)}: {msg}"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model a key path points into (to list the keys allowed there)."""
    current: Any = ConfigModel
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part not in current.model_fields:
                return None
            current = _unwrap(current.model_fields[part].annotation)
        else:
            origin = typing.get_origin(current)
            args = typing.get_args(current)
            if origin is list and args:
                current = _unwrap(args[0])
            elif origin is dict and len(args) == 2:
                current = _unwrap(args[1])
            else:
                return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _cross_checks(model: ConfigModel, name: str) -> list[str]:
    problems = []
    seen: dict[str, int] = {}
    for i, net in enumerate(model.networks):
        if net.name in seen:
            problems.append(f"{name}: networks[{i}].name: {net.name!r} is already the name of "
                            f"networks[{seen[net.name]}]; names must be unique")
        seen.setdefault(net.name, i)
    problems += _capacity_checks(model, name)
    custom = [j.name for j in model.jobs]
    for i, job_name in enumerate(custom):
        if job_name in custom[:i]:
            problems.append(f"{name}: jobs[{i}].name: {job_name!r} is defined twice")
    return problems


def _capacity_checks(model: ConfigModel, name: str) -> list[str]:
    """A capacity ladder's job must be a streamed text job the network speaks, its tiers the
    network's, and a spend limit needs a price and must afford the ladder's first wave."""
    problems = []
    custom = {j.name: j.build() for j in model.jobs}
    for i, net in enumerate(model.networks):
        cap = net.capacity
        if cap is None:
            continue
        where = f"{name}: networks[{i}].capacity"
        job = custom.get(cap.job) or JOBS_BY_NAME.get(cap.job)
        speaks = KINDS[net.kind].requests
        if job is None:
            problems.append(f"{where}.job: unknown job {cap.job!r}; use a chat job such as "
                            f"{DEFAULT_CAPACITY.job}")
        elif job.request not in (CHAT, COMPLETION) or job.request not in speaks:
            article = "an" if job.request[0] in "aeiou" else "a"
            problems.append(f"{where}.job: {cap.job!r} is {article} {job.request} job; a ladder "
                            f"streams text: use a chat or completion job kind {net.kind!r} "
                            f"speaks, e.g. {DEFAULT_CAPACITY.job}")
        tiers = set(net.models or {"default": ""})
        for tier in cap.tiers or ():
            if tier not in tiers:
                problems.append(f"{where}.tiers: {tier!r} is not a tier of this network; "
                                f"it has {', '.join(sorted(tiers))}")
        if cap.max_spend is not None:
            if net.price_per_mtok is None:
                problems.append(f"{where}.max_spend: needs the network's price_per_mtok to "
                                "know what a request costs; add it, or remove max_spend")
            elif job is not None:
                price = {"input": net.price_per_mtok.input, "output": net.price_per_mtok.output}
                wave = sum(cap.ladder) * (cost_bound(job, price) or 0.0)
                if wave > cap.max_spend:
                    problems.append(
                        f"{where}.max_spend: one request a stream a step may cost "
                        f"${wave:.4f} (worst case), more than max_spend ${cap.max_spend:g}; "
                        "raise max_spend or shorten the ladder")
    return problems


def _param_checks(model: ConfigModel, name: str) -> list[str]:
    """A custom job's params must be settings the kinds running it read, with values they can
    use; so must the base URL's query of a kind that reads settings there (monitor.core.params)."""
    problems = []
    runners: dict[str, list[NetworkModel]] = {}
    for net in model.networks:
        used = [*(net.jobs or _default_jobs(net.kind))]
        if net.capacity:
            used.append(net.capacity.job)
        for job_name in dict.fromkeys(used):
            runners.setdefault(job_name, []).append(net)
    for i, job in enumerate(model.jobs):
        nets = runners.get(job.name, [])
        # a job no network runs yet: any kind that speaks its request may
        kinds = list(dict.fromkeys(n.kind for n in nets)) or sorted(
            k for k, kind in KINDS.items() if job.request in kind.requests)
        for key, value in job.params.items():
            where = f"{name}: jobs[{i}].params.{key}"
            readers = [KINDS[k].param(key) for k in kinds]
            known = [param for param in readers if param is not None]
            if not known:
                problems.append(f"{where}: {_unread_param(key, kinds, nets)}")
                continue
            for param in dict.fromkeys(known):
                try:
                    param.read(value)
                except ValueError as exc:
                    problems.append(f"{where}: {exc}")
    for i, net in enumerate(model.networks):
        kind = KINDS[net.kind]
        if kind.query_params:
            problems += [f"{name}: networks[{i}].base_url: query {problem}"
                         for problem in query_problems(kind.params, net.base_url)]
    return problems


def _unread_param(key: str, kinds: list[str], nets: list[NetworkModel]) -> str:
    """Why `key` is not a setting: which kinds run the job and what they do read."""
    readable = sorted({n for k in kinds for p in KINDS[k].params for n in p.names})
    close = difflib.get_close_matches(key, readable, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    runs = (f"kind {'/'.join(kinds)} (network {', '.join(n.name for n in nets)})" if nets
            else f"no kind that could run this job ({'/'.join(kinds)})")
    if not readable:
        return f"{runs} reads no params; remove it"
    return f"{runs} does not read it; {hint}settings read: {', '.join(readable)}"


# -- the verdict families' sections: networks, references and caps, checked alike ------------

_SELF_REFERENCE = ("a network cannot be its own reference; name another network serving the "
                   "same model (e.g. a centralized baseline)")


def _enabled(model: ConfigModel) -> dict[str, NetworkModel]:
    return {n.name: n for n in model.networks if n.enabled}


def _tiers(net: NetworkModel) -> dict[str, str]:
    """A network's model tiers and their model ids (one tier, `default`, for one model)."""
    return dict(net.models.items()) if net.models else {"default": net.model or ""}


def _not_enabled(at: str, network: str, networks: Mapping[str, NetworkModel]) -> str:
    return (f"{at}: {network!r} is not an enabled network of this config; use one of "
            f"{', '.join(networks) or '(none)'}")


def _not_openai(at: str, net: NetworkModel, speaks: str) -> str | None:
    """Why `net` cannot be asked by a family whose requests speak the OpenAI chat API
    (`speaks`: "the fingerprint speaks"), or None."""
    if net.kind == "openai":
        return None
    return (f"{at}: network {net.name!r} is of kind {net.kind!r}; {speaks} the OpenAI chat "
            "API only (kind openai)")


def _price(net: NetworkModel) -> dict[str, float] | None:
    """A network's price_per_mtok as the cost bounds take it (None: unpriced)."""
    return net.price_per_mtok.model_dump() if net.price_per_mtok else None


def _prices(model: ConfigModel) -> dict[str, dict[str, float] | None]:
    return {n.name: _price(n) for n in model.networks}


def _over_cap(at: str, what: str, cost: float | None, cap: float, instead: str, *,
              whose: str = "its", how: str = "") -> list[str]:
    """The spend cap `at` names ("FILE: quality.max_spend_usd") holds `what` at its
    worst-case `cost` (None: unpriced), or the one line saying by how much it does not."""
    if cost is None or cost <= cap:
        return []
    field_name = at.rpartition(".")[2]
    return [f"{at}: {what} can cost up to ${cost:.4g} at {whose} price_per_mtok{how}, above "
            f"the cap of ${cap:g}; raise {field_name} or {instead}"]


def _pairings(section: EqualityModel | QualityModel | None, key: str, model: ConfigModel,
              name: str) -> tuple[list[Comparison], list[str]]:
    """A section's `compare:` entries, one comparison per tier, and the mistakes in them."""
    if section is None:
        return [], []
    networks = _enabled(model)
    out: list[Comparison] = []
    problems = []
    for i, c in enumerate(section.compare):
        at = f"{name}: {key}.compare[{i}]"
        net = networks.get(c.network)
        if net is None:
            problems.append(_not_enabled(f"{at}.network", c.network, networks))
            continue
        ref = networks.get(c.reference) if c.reference is not None else None
        if c.reference is not None and ref is None:
            problems.append(_not_enabled(f"{at}.reference", c.reference, networks))
            continue
        if c.reference == c.network:
            problems.append(f"{at}.reference: {_SELF_REFERENCE}")
            continue
        wrong_kind = [p for n in (net, ref) if n is not None
                      and (p := _not_openai(at, n, f"{key} requests speak")) is not None]
        if wrong_kind:
            problems.append(wrong_kind[0])
            continue
        tiers = _tiers(net)
        ref_tiers = _tiers(ref) if ref is not None else None
        wanted = [c.tier] if c.tier is not None else [
            t for t in tiers if ref_tiers is None or t in ref_tiers]
        for tier in wanted:
            if tier not in tiers:
                problems.append(f"{at}.tier: {c.network} has no tier {tier!r}; its tiers: "
                                f"{', '.join(tiers)}")
            elif ref_tiers is not None and tier not in ref_tiers:
                problems.append(f"{at}.tier: the reference {c.reference} has no tier "
                                f"{tier!r}; its tiers: {', '.join(ref_tiers)}")
            elif c.reference is not None:
                out.append(Comparison(c.network, tier, tiers[tier], c.reference, tier))
            else:
                assert c.reference_file is not None
                path = str(_base_dir(name) / Path(c.reference_file).expanduser())
                out.append(Comparison(c.network, tier, tiers[tier], Path(path).name, None,
                                      path))
        if not wanted:
            problems.append(f"{at}: {c.network} and {c.reference} share no model tier; "
                            "name one with tier:")
    return out, problems


def _equality_checks(model: ConfigModel, name: str) -> list[str]:
    """Comparisons that name real networks and tiers, stored sample sets that match the
    settings, and a spend cap that a run can stay under at the networks' prices."""
    comparisons, problems = _pairings(model.equality, "equality", model, name)
    section = model.equality
    if section is None:
        return problems
    settings = section.settings()
    prices = _prices(model)
    for i, c in enumerate(section.compare):
        if c.reference_file is None:
            continue
        problems += [f"{name}: equality.compare[{i}].reference_file: {p}"
                     for p in _sample_file_problems(_base_dir(name) / c.reference_file,
                                                    settings)]
    for network, _ in sorted(asked(comparisons)):
        one = request_cost_usd(settings, prices.get(network))
        problems += _over_cap(
            f"{name}: equality.max_spend_usd",
            f"a run of {settings.planned_samples} samples from {network}",
            None if one is None else one * settings.planned_samples, settings.max_spend_usd,
            "sample less")
    return problems


def _sample_file_problems(path: Path, settings: EqualitySettings) -> list[str]:
    try:
        stored = load_samples(path)
    except ValueError as exc:
        return [f"{path}: {exc}"]
    problems = []
    prompt_set = PROMPT_SETS[settings.prompt_set]
    if (stored.prompt_set, stored.prompt_set_digest) != (prompt_set.name, prompt_set.digest):
        problems.append(f"{path}: sampled on prompt set {stored.prompt_set} "
                        f"({stored.prompt_set_digest}), not {prompt_set.name} "
                        f"({prompt_set.digest}); sample it again with `depin-monitor equality "
                        "--save`")
    if (stored.temperature, stored.max_tokens) != (settings.temperature, settings.max_tokens):
        problems.append(f"{path}: sampled at temperature {stored.temperature:g} and max_tokens "
                        f"{stored.max_tokens}, not {settings.temperature:g} and "
                        f"{settings.max_tokens}; sample it again or match the settings")
    return problems


def _transport(network: NetworkModel, base: Path) -> TransportSettings:
    """A network's transport settings, its file paths made relative to the config's folder."""
    connection = TransportSettings(proxy=network.proxy, ip_preference=network.ip_preference,
                                   ip_fallback=network.ip_fallback)
    tls = network.tls
    if tls is None:
        return connection

    def path(value: str | None) -> str | None:
        return None if value is None else str(base / Path(value).expanduser())

    return dataclasses.replace(
        connection, ca_file=path(tls.ca_file), cert_file=path(tls.cert_file),
        key_file=path(tls.key_file), key_password_env=tls.key_password_env,
        server_name=tls.server_name, insecure=tls.insecure)


def _transport_checks(model: ConfigModel, name: str) -> list[str]:
    """Load each network's CA bundle and client certificate now, so that a wrong path, a
    broken PEM or a key that is not the certificate's is one line from `check`, not a
    connect_error on every run. A key whose password variable is not set is not loaded here
    (`check` warns, `run` refuses, as for API keys)."""
    problems = []
    for i, network in enumerate(model.networks):
        if network.tls is None:
            continue
        settings = _transport(network, _base_dir(name))
        if settings.key_password_env and settings.key_password() is None:
            continue
        try:
            check_files(settings)
        except TLSFileError as exc:
            problems.append(f"{name}: networks[{i}].tls.{exc.field}: {exc}")
    return problems


def _base_dir(name: str) -> Path:
    """Relative file paths in a config are relative to its folder (the working directory for
    a config that is not a file)."""
    path = Path(name)
    return path.parent if path.is_file() else Path()


def _default_jobs(kind: str) -> tuple[str, ...]:
    speaks = KINDS[kind].requests
    if CHAT in speaks:
        return ("chat-short-v1",)
    return (next(j.name for j in JOBS_BY_NAME.values() if j.request in speaks),)


def _build(model: ConfigModel, name: str) -> Config:
    profiles = dict(BUILTIN_PROFILES)
    for pname, p in model.sla_profiles.items():
        profiles[pname] = p.build(pname)
    networks = []
    for n in model.networks:
        models = tuple(n.models.items()) if n.models else (("default", n.model or ""),)
        price = ({"input": n.price_per_mtok.input, "output": n.price_per_mtok.output}
                 if n.price_per_mtok else None)
        networks.append(Network(
            name=n.name, kind=n.kind, base_url=n.base_url, models=models,
            jobs=tuple(n.jobs) if n.jobs else _default_jobs(n.kind), interval_s=n.interval,
            concurrency=n.concurrency, api_key_env=n.api_key_env, sla=n.sla,
            price_per_mtok=types.MappingProxyType(price) if price else None,
            monthly_spend_usd=n.monthly_spend_usd,
            headers=tuple(n.headers.items()), check_output=n.check_output, enabled=n.enabled,
            transport=_transport(n, _base_dir(name)), catalog_url=n.catalog_url,
            capacity=n.capacity.settings() if n.capacity else None))
    maintenance = tuple(MaintenanceWindow(start=w.start, end=w.end, networks=tuple(w.networks),
                                          reason=w.reason) for w in model.maintenance)
    return Config(
        path=name, location=model.location,
        networks=tuple(n for n in networks if n.enabled),
        profiles=types.MappingProxyType(profiles),
        jobs=types.MappingProxyType({j.name: j.build() for j in model.jobs}),
        maintenance=maintenance, concurrency=model.concurrency, listen=model.listen,
        disabled=tuple(n.name for n in networks if not n.enabled),
        runbook_url=model.alerting.runbook_url,
        cert_expiry_warning_s=model.cert_expiry_warning,
        equality=_equality_plan(model, name), quality=_quality_plan(model, name),
        quorum=model.quorum, contract=_contract_plan(model),
        fingerprint=_fingerprint_plan(model, name),
        store=StoreSettings(buffer_results=model.store.buffer_results,
                            shutdown_timeout_s=model.store.shutdown_timeout))



def _equality_plan(model: ConfigModel, name: str) -> EqualityPlan | None:
    if model.equality is None:
        return None
    comparisons, _ = _pairings(model.equality, "equality", model, name)
    return EqualityPlan(model.equality.settings(), tuple(comparisons))


def _quality_plan(model: ConfigModel, name: str) -> QualityPlan | None:
    if model.quality is None:
        return None
    comparisons, _ = _pairings(model.quality, "quality", model, name)
    return QualityPlan(model.quality.settings(), tuple(comparisons))


def _quality_checks(model: ConfigModel, name: str) -> list[str]:
    """Comparisons that name real networks and tiers, answer files that match the suite, and
    a spend cap that an audit can stay under at the networks' prices."""
    comparisons, problems = _pairings(model.quality, "quality", model, name)
    section = model.quality
    if section is None:
        return problems
    settings = section.settings()
    for i, c in enumerate(section.compare):
        if c.reference_file is not None:
            problems += [f"{name}: quality.compare[{i}].reference_file: {p}"
                         for p in answer_file_problems(_base_dir(name) / c.reference_file,
                                                       settings)]
    prices = _prices(model)
    for network in sorted({n for n, _ in asked(comparisons)}):
        problems += _over_cap(
            f"{name}: quality.max_spend_usd",
            f"an audit of {settings.items} items from {network}",
            worst_case_cost_usd(settings, prices.get(network)), settings.max_spend_usd,
            "ask fewer items",
            how=f" (every prompt at its longest, max_tokens {settings.max_tokens} out)")
    return problems


def answer_file_problems(path: Path, settings: QualitySettings) -> list[str]:
    """Why a stored answer file cannot serve as the reference at these settings."""
    try:
        stored = load_answers(path)
    except ValueError as exc:
        return [f"{path}: {exc}"]
    problems = []
    if stored.suite != settings.suite:
        problems.append(f"{path}: answered on suite {stored.suite}, not {settings.suite}; "
                        "answer it again with `depin-monitor quality --save`")
    if stored.max_tokens != settings.max_tokens:
        problems.append(f"{path}: answered at max_tokens {stored.max_tokens}, not "
                        f"{settings.max_tokens}; answer it again or match the settings")
    if len(stored.answers) < settings.items:
        problems.append(f"{path}: {len(stored.answers)} answers, fewer than items "
                        f"({settings.items}); answer it again with the same items setting")
    return problems
def _contract_plan(model: ConfigModel) -> ContractPlan | None:
    section = model.contract
    if section is None:
        return None
    nets = _enabled(model)
    targets = tuple((n, t) for n in dict.fromkeys(section.networks) if n in nets
                    for t in _tiers(nets[n]))
    reference = None
    if section.reference is not None and section.reference in nets:
        reference = (section.reference, next(iter(_tiers(nets[section.reference]))))
    return ContractPlan(section.settings(), targets, reference)


def _contract_checks(model: ConfigModel, name: str) -> list[str]:
    """Networks that exist and speak the OpenAI chat API, and a spend cap that a run can stay
    under at each network's price, worst case."""
    section = model.contract
    if section is None:
        return []
    nets = _enabled(model)
    problems = []
    named = [("networks", n) for n in section.networks]
    if section.reference is not None:
        named.append(("reference", section.reference))
    settings = section.settings()
    for field_name, network in named:
        at = f"{name}: contract.{field_name}"
        net = nets.get(network)
        if net is None:
            problems.append(_not_enabled(at, network, nets))
            continue
        wrong_kind = _not_openai(at, net, "the contract checks speak")
        if wrong_kind:
            problems.append(wrong_kind)
            continue
        problems += _over_cap(
            f"{name}: contract.max_spend_usd",
            f"a run of {settings.planned_requests()} requests to {network}",
            settings.worst_case_usd(_price(net)), settings.max_spend_usd,
            "lower max_tokens")
    return problems


def _fingerprint_targets(model: ConfigModel, name: str
                         ) -> tuple[list[FingerprintTarget], list[str]]:
    """The fingerprint section's (network, tier)s, and the mistakes in it."""
    section = model.fingerprint
    if section is None:
        return [], []
    networks = _enabled(model)
    out: list[FingerprintTarget] = []
    problems = []
    speaks = "the fingerprint speaks"
    for i, entry in enumerate(section.networks):
        at = f"{name}: fingerprint.networks[{i}]"
        net = networks.get(entry.network)
        if net is None:
            problems.append(_not_enabled(f"{at}.network", entry.network, networks))
            continue
        wrong_kind = _not_openai(at, net, speaks)
        if wrong_kind:
            problems.append(wrong_kind)
            continue
        tiers = _tiers(net)
        if entry.tier is not None and entry.tier not in tiers:
            problems.append(f"{at}.tier: {net.name} has no tier {entry.tier!r}; its tiers: "
                            f"{', '.join(tiers)}")
            continue
        wanted = [entry.tier] if entry.tier is not None else list(tiers)
        if entry.reference is not None:
            ref = networks.get(entry.reference)
            if ref is None:
                problems.append(_not_enabled(f"{at}.reference", entry.reference, networks))
                continue
            if ref.name == net.name:
                problems.append(f"{at}.reference: {_SELF_REFERENCE}")
                continue
            wrong_kind = _not_openai(f"{at}.reference", ref, speaks)
            if wrong_kind:
                problems.append(wrong_kind)
                continue
            ref_tiers = _tiers(ref)
            missing = [t for t in wanted if t not in ref_tiers]
            if missing:
                problems.append(f"{at}.reference: {ref.name} has no tier {missing[0]!r}; its "
                                f"tiers: {', '.join(ref_tiers)}; name one with tier:")
                continue
        for tier in wanted:
            out.append(FingerprintTarget(net.name, tier, tiers[tier], entry.reference))
    return out, problems


def _fingerprint_checks(model: ConfigModel, name: str) -> list[str]:
    """Targets that name real networks and tiers, and spend caps a run and a discovery can
    stay under at the networks' prices (every request at its worst case)."""
    targets, problems = _fingerprint_targets(model, name)
    section = model.fingerprint
    if section is None:
        return problems
    s = section.settings()
    prices = _prices(model)
    longest = max(s.candidate_prompts(), key=len)

    def one(network: str) -> float | None:
        return fingerprint_cost_usd(prices.get(network), longest)

    for network, reference in sorted({(t.network, t.reference or "") for t in targets}):
        mine, theirs = one(network), one(reference) if reference else None
        # a run's cap holds the network's requests and its reference's (at the reference's
        # price); a discovery samples the network alone
        run = (mine or 0.0) * s.run_requests + (theirs or 0.0) * s.run_requests
        to = f"{network} and its reference {reference}" if reference else network
        runs = s.run_requests * (2 if reference else 1)
        problems += _over_cap(
            f"{name}: fingerprint.max_spend_usd",
            f"a run of {runs} requests to {to}",
            run if mine is not None or theirs is not None else None, s.max_spend_usd,
            "sample less", whose="their" if reference else "its")
        problems += _over_cap(
            f"{name}: fingerprint.discovery_max_spend_usd",
            f"a discovery of {s.discovery_requests} requests to {network}",
            None if mine is None else mine * s.discovery_requests, s.discovery_max_spend_usd,
            "sample less")
    return problems


def _fingerprint_plan(model: ConfigModel, name: str) -> FingerprintPlan | None:
    if model.fingerprint is None:
        return None
    targets, _ = _fingerprint_targets(model, name)
    return FingerprintPlan(model.fingerprint.settings(), tuple(targets))


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _first(problems: list[str], limit: int = 50) -> list[str]:
    """At most `limit` lines: a generated file with thousands of mistakes says how many."""
    if len(problems) <= limit:
        return problems
    return [*problems[:limit], f"... and {len(problems) - limit:,} more mistakes like these"]
