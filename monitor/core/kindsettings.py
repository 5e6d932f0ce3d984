"""Each probe kind's settings as one typed, frozen value: what a job's params (and, for the
job-based kinds, the base URL's query string) set, read with the definitions of
`monitor.core.params`, with the defaults filled in.

A model's `PARAMS` are the settings the config's check judges (`depin-monitor check`: one line
naming the field and the fix) and `read` builds the model from the same definitions, so a
value that passed the check is the value the probe runs with. The config binds a model to
each job a network runs (`monitor.core.kinds.bind`); a probe reads its fields
(`settings.poll_s`), never the raw params.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from monitor.core.params import (
    Param,
    count,
    flag,
    options,
    regex,
    scale,
    seconds,
    statuses,
    text,
    url,
)

MIN_POLL_S = 0.01  # a poll interval is never shorter than this, whatever was written


class KindSettings:
    """What every kind's settings share: `PARAMS`, the settings read (by their names and
    aliases), whether the base URL's query string holds settings too (`QUERY`), and `read`."""

    __slots__ = ()
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    QUERY: ClassVar[bool] = False

    @classmethod
    def read(cls, base_url: str, params: Mapping[str, Any]) -> Self:
        """The settings a job's `params` give (over the query string of `base_url`, for a kind
        whose QUERY is set). ValueError "name: why; write ..." for a value the check refuses."""
        raise NotImplementedError

    @classmethod
    def given(cls, base_url: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The settings given, read, by their canonical names: the job's params win over the
        base URL's query string; a setting not given is absent."""
        query = dict(parse_qsl(urlsplit(base_url).query)) if cls.QUERY else {}
        return options(cls.PARAMS, query, params)


def api_base(base_url: str) -> str:
    """A job API's base: the URL less its query string (which holds settings) and fragment."""
    return urlunsplit(urlsplit(base_url)._replace(query="", fragment="")).rstrip("/")


@dataclass(frozen=True, slots=True)
class HttpSettings(KindSettings):
    """Kind `http`: the statuses a health page must answer with (None: any 2xx) and a pattern
    its body must match (None: any body)."""

    expect_status: frozenset[int] | None = None
    body_regex: re.Pattern[str] | None = None

    PARAMS = (Param("expect_status", statuses), Param("body_regex", regex))

    @classmethod
    def read(cls, base_url: str, params: Mapping[str, Any]) -> Self:
        given = cls.given(base_url, params)
        return cls(expect_status=given.get("expect_status"), body_regex=given.get("body_regex"))


JOBAPI_POLL_S = 5.0
JOBAPI_IMAGE = "docker.io/ollama/ollama:0.6.2"
# nosana-sdk src/config.ts IPFSConfigPreset: where results pinned by nodes are read from
JOBAPI_IPFS_GATEWAY = "https://nosana.mypinata.cloud/ipfs/"
JOBAPI_MIN_LEASE_S = 60


@dataclass(frozen=True, slots=True)
class JobApiSettings(KindSettings):
    """Kind `jobapi`: where the job API is, the market, how often to poll, the job's lease,
    where its definition is pinned (`ipfs`: the jobs API; none: deployments), where results
    are read from, whether it is a service job, and the container image."""

    base: str
    market: str = ""
    poll_s: float = JOBAPI_POLL_S
    lease_s: int | None = None  # None: the job's deadline decides (`lease`)
    ipfs: str | None = None
    ipfs_gateway: str = JOBAPI_IPFS_GATEWAY  # ends with "/"
    serve: bool = False
    image: str = JOBAPI_IMAGE

    PARAMS = (
        Param("market", text),
        Param("poll", seconds(example="5"), aliases=("poll_interval_s",)),
        Param("timeout", seconds(example="600")),  # the job's lease
        Param("ipfs", text),
        Param("ipfs_gateway", url),
        Param("serve", flag),
        Param("image", text),
    )
    QUERY = True

    @classmethod
    def read(cls, base_url: str, params: Mapping[str, Any]) -> Self:
        given = cls.given(base_url, params)
        lease = given.get("timeout")
        return cls(
            base=api_base(base_url),
            market=given.get("market", ""),
            poll_s=max(given.get("poll", JOBAPI_POLL_S), MIN_POLL_S),
            lease_s=None if lease is None else int(lease),
            ipfs=given.get("ipfs"),
            ipfs_gateway=given.get("ipfs_gateway", JOBAPI_IPFS_GATEWAY).rstrip("/") + "/",
            serve=given.get("serve", False),
            image=given.get("image", JOBAPI_IMAGE),
        )

    @property
    def deployments(self) -> bool:
        """Inline definitions go through deployments; a pinned one through the jobs API."""
        return self.ipfs is None

    def lease(self, deadline_s: float) -> int:
        """The job's lease in seconds: `timeout` if given, else a little over the run's
        deadline, at least a minute."""
        if self.lease_s is not None:
            return self.lease_s
        return max(JOBAPI_MIN_LEASE_S, int(deadline_s) + 1)


@dataclass(frozen=True, slots=True)
class LivepeerSettings(KindSettings):
    """Kind `livepeer`: what a text-to-image job asks for."""

    width: int = 512
    height: int = 512
    num_inference_steps: int = 4
    guidance_scale: float = 2.0
    safety_check: bool = True

    PARAMS = (
        Param("width", count(example="512")),
        Param("height", count(example="512")),
        Param("num_inference_steps", count(example="4")),
        Param("guidance_scale", scale(example="2.0")),
        Param("safety_check", flag),
    )

    @classmethod
    def read(cls, base_url: str, params: Mapping[str, Any]) -> Self:
        given = cls.given(base_url, params)
        return cls(**given)  # every PARAMS name is a field of the same name


# theta: the API holds a submit for its answer at most 60 s (thetatoken/on-demand-api-mcp).
THETA_MAX_WAIT_S = 60.0
THETA_WAIT_S = 30.0
THETA_POLL_S = 1.0


@dataclass(frozen=True, slots=True)
class ThetaSettings(KindSettings):
    """Kind `theta`: where the API is, how long a submit may be held for its answer, and how
    often to poll after that."""

    base: str
    wait_s: float | None = None  # None: the job's deadline decides (`wait`)
    poll_s: float = THETA_POLL_S

    PARAMS = (
        Param("wait", seconds(example="30", zero=True, most=THETA_MAX_WAIT_S,
                              why=", the longest the API holds a submit")),
        Param("poll", seconds(example="1")),
    )
    QUERY = True

    @classmethod
    def read(cls, base_url: str, params: Mapping[str, Any]) -> Self:
        given = cls.given(base_url, params)
        return cls(base=api_base(base_url), wait_s=given.get("wait"),
                   poll_s=max(given.get("poll", THETA_POLL_S), MIN_POLL_S))

    def wait(self, deadline_s: float) -> float:
        """Seconds the submit may hold: `wait` if given, else the run's deadline up to 30 s;
        never more than the API holds one."""
        wanted = self.wait_s if self.wait_s is not None else min(THETA_WAIT_S, deadline_s)
        return min(wanted, THETA_MAX_WAIT_S)
