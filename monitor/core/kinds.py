"""The probe kinds a config may name, as data: for each, the job requests it speaks, what its
base URL is, and the typed settings it reads from a job's params (and, for job-based kinds,
from the base URL's query string: monitor.core.kindsettings).

The config loader checks a network against these specs and binds each job a network runs to
the kind's settings (`bind`); each probe module in probes/ reads those settings and registers
its run function under the same name (probes/__init__.py: a test checks that the two agree).
So `monitor.config` knows every kind without importing any probe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

from monitor.core.jobs import CHAT, COMPLETION, EMBEDDING, HEALTH, IMAGE, Job
from monitor.core.kindsettings import (
    HttpSettings,
    JobApiSettings,
    KindSettings,
    LivepeerSettings,
    ThetaSettings,
)
from monitor.core.params import Param

OPENAI, OLLAMA, LIVEPEER, JOBAPI, HTTP, THETA = (
    "openai", "ollama", "livepeer", "jobapi", "http", "theta")

S = TypeVar("S", bound=KindSettings)


@dataclass(frozen=True, slots=True)
class KindSpec:
    name: str
    requests: frozenset[str]  # job request kinds it speaks (monitor.core.jobs.CHAT, ...)
    url_hint: str  # what --url means for this kind, for help and errors
    settings: type[KindSettings] | None = None  # what it reads from a job's params

    @property
    def params(self) -> tuple[Param, ...]:
        """The settings it reads from a job's params."""
        return self.settings.PARAMS if self.settings is not None else ()

    @property
    def query_params(self) -> bool:
        """Whether it reads them from the base URL's query string too."""
        return self.settings is not None and self.settings.QUERY

    def param(self, name: str) -> Param | None:
        """The setting `name` (or an alias of it) of this kind, if it reads one."""
        return next((p for p in self.params if name in p.names), None)


KINDS: dict[str, KindSpec] = {spec.name: spec for spec in (
    KindSpec(OPENAI, frozenset({CHAT, COMPLETION, EMBEDDING}),
             "the OpenAI-compatible base URL including /v1, e.g. https://api.example.com/v1"),
    KindSpec(OLLAMA, frozenset({CHAT}),
             "the Ollama service root, e.g. http://127.0.0.1:11434"),
    KindSpec(LIVEPEER, frozenset({CHAT, IMAGE}),
             "the Livepeer AI gateway root, e.g. https://dream-gateway.livepeer.cloud",
             LivepeerSettings),
    KindSpec(JOBAPI, frozenset({CHAT}),
             "the job API base, e.g. https://dashboard.k8s.prd.nos.ci/api?market=<address>",
             JobApiSettings),
    KindSpec(HTTP, frozenset({HEALTH}),
             "the full URL to GET, e.g. https://status.example.com/health", HttpSettings),
    KindSpec(THETA, frozenset({CHAT}),
             "the on-demand API root, e.g. https://ondemand.thetaedgecloud.com",
             ThetaSettings),
)}


def bind(job: Job, kind: str, base_url: str) -> Job:
    """`job` as a network of `kind` at `base_url` runs it: carrying that kind's settings, read
    once from the job's params (over the URL's query string, for a kind that reads it), for
    the probe to read typed. ValueError "name: why" for a setting the config's check refuses.
    A kind without settings gets the job with none."""
    spec = KINDS[kind]
    settings = spec.settings.read(base_url, job.params) if spec.settings is not None else None
    if settings is None and job.kind_settings is None:
        return job
    return dataclasses.replace(job, kind_settings=settings)


def settings_of(model: type[S], job: Job, base_url: str = "") -> S:
    """The settings of `model`'s kind that `job` carries (`bind`); for a job no config bound
    to this kind (a test's, a library caller's), read now from its params (and the query
    string of `base_url`, the target's) with the same definitions."""
    bound = job.kind_settings
    return bound if isinstance(bound, model) else model.read(base_url, job.params)
