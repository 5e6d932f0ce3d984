"""The probe kinds a config may name, as data: for each, the job requests it speaks, what its
base URL is, and the settings it reads from a job's params (and, for job-based kinds, from the
base URL's query string).

The config loader checks a network against these specs; each probe module in probes/ reads
its settings with the same definitions and registers its run function under the same name
(probes/__init__.py: a test checks that the two agree). So `monitor.config` knows every kind
without importing any probe.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.core import params
from monitor.core.jobs import CHAT, COMPLETION, EMBEDDING, HEALTH, IMAGE
from monitor.core.params import Param

OPENAI, OLLAMA, LIVEPEER, JOBAPI, HTTP, THETA = (
    "openai", "ollama", "livepeer", "jobapi", "http", "theta")


@dataclass(frozen=True, slots=True)
class KindSpec:
    name: str
    requests: frozenset[str]  # job request kinds it speaks (monitor.core.jobs.CHAT, ...)
    url_hint: str  # what --url means for this kind, for help and errors
    params: tuple[Param, ...] = ()  # what it reads from a job's params
    query_params: bool = False  # ... and from the base URL's query string

    def param(self, name: str) -> Param | None:
        """The setting `name` (or an alias of it) of this kind, if it reads one."""
        return next((p for p in self.params if name in p.names), None)


# http: the status a health page must answer with, and a pattern its body must match.
HTTP_PARAMS = (params.Param("expect_status", params.statuses),
               params.Param("body_regex", params.regex))

# jobapi: the market, how often to poll, the job's lease, where its definition is pinned.
JOBAPI_PARAMS = (
    params.Param("market", params.text),
    params.Param("poll", params.seconds(example="5"), aliases=("poll_interval_s",)),
    params.Param("timeout", params.seconds(example="600")),  # the job's lease
    params.Param("ipfs", params.text),
    params.Param("ipfs_gateway", params.url),
    params.Param("serve", params.flag),
    params.Param("image", params.text),
)

# livepeer: what a text-to-image job may set.
LIVEPEER_PARAMS = (
    params.Param("width", params.count(example="512")),
    params.Param("height", params.count(example="512")),
    params.Param("num_inference_steps", params.count(example="4")),
    params.Param("guidance_scale", params.scale(example="2.0")),
    params.Param("safety_check", params.flag),
)

# theta: how long a submit may be held for its answer (the API holds it at most 60 s), and
# how often to poll after that.
THETA_MAX_WAIT_S = 60.0
THETA_PARAMS = (
    params.Param("wait", params.seconds(example="30", zero=True, most=THETA_MAX_WAIT_S,
                                        why=", the longest the API holds a submit")),
    params.Param("poll", params.seconds(example="1")),
)

KINDS: dict[str, KindSpec] = {spec.name: spec for spec in (
    KindSpec(OPENAI, frozenset({CHAT, COMPLETION, EMBEDDING}),
             "the OpenAI-compatible base URL including /v1, e.g. https://api.example.com/v1"),
    KindSpec(OLLAMA, frozenset({CHAT}),
             "the Ollama service root, e.g. http://127.0.0.1:11434"),
    KindSpec(LIVEPEER, frozenset({CHAT, IMAGE}),
             "the Livepeer AI gateway root, e.g. https://dream-gateway.livepeer.cloud",
             LIVEPEER_PARAMS),
    KindSpec(JOBAPI, frozenset({CHAT}),
             "the job API base, e.g. https://dashboard.k8s.prd.nos.ci/api?market=<address>",
             JOBAPI_PARAMS, query_params=True),
    KindSpec(HTTP, frozenset({HEALTH}),
             "the full URL to GET, e.g. https://status.example.com/health", HTTP_PARAMS),
    KindSpec(THETA, frozenset({CHAT}),
             "the on-demand API root, e.g. https://ondemand.thetaedgecloud.com",
             THETA_PARAMS, query_params=True),
)}
