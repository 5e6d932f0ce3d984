"""Capacity ladders: how much concurrent load a network sustains.

A ladder runs one standard streaming job at rising concurrency (1, 4, 16, 64 streams), each
step bounded in time and requests, judges each step against the network's criteria, and stops
at the first step that breaks them (the knee), at a 429, or before a step its hard limits
(max concurrency, max requests, max spend) could not afford. The sustained concurrency is the
last step that held below the knee. docs/capacity.md explains the method and its limits.

This module is the vocabulary (settings, limits, steps, ladders); the runner is
monitor.runtime.capacity, the step maths monitor.analysis.capacity.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.core.jobs import Job
from monitor.core.result import ProbeResult
from monitor.core.slaprofile import SLAProfile
from monitor.core.target import Target

DEFAULT_LADDER: tuple[int, ...] = (1, 4, 16, 64)
DEFAULT_INTERVAL_S = 3600.0
DEFAULT_STEP_S = 30.0
DEFAULT_REQUESTS_PER_STREAM = 2
DEFAULT_MAX_REQUESTS = 200
DEFAULT_JOB = "chat-long-v1"  # 256 tokens out: a decode rate worth judging


class Stop(enum.StrEnum):
    """Why a ladder ended (the `stopped` label and column)."""

    TOP = "top"  # every step held: the network sustains at least the top step
    KNEE = "knee"  # a step broke the criteria: no higher step is tried
    RATE_LIMITED = "rate_limited"  # a 429: stop rather than hammer; Retry-After is kept
    ACCOUNT = "account"  # auth_error or quota_exhausted: our key or credits, not the network
    BUDGET = "budget"  # the next step would pass max_requests or max_spend
    CANCELLED = "cancelled"  # the monitor stopped mid-ladder


STOPS: tuple[str, ...] = tuple(s.value for s in Stop)


@dataclass(frozen=True, slots=True)
class CapacityLimits:
    """Hard limits per ladder, never exceeded: streams in flight, requests sent, and the
    worst-case spend of the requests sent (USD; None: no price, no spend limit)."""

    max_concurrency: int
    max_requests: int
    max_spend_usd: float | None = None


@dataclass(frozen=True, slots=True)
class CapacitySettings:
    """A network's capacity ladders (config `capacity:`)."""

    ladder: tuple[int, ...] = DEFAULT_LADDER
    step_s: float = DEFAULT_STEP_S  # each step sends new requests for this long ...
    requests_per_stream: int = DEFAULT_REQUESTS_PER_STREAM  # ... and at most this many a stream
    limits: CapacityLimits = CapacityLimits(max_concurrency=max(DEFAULT_LADDER),
                                            max_requests=DEFAULT_MAX_REQUESTS)
    job: str = DEFAULT_JOB
    interval_s: float = DEFAULT_INTERVAL_S
    tiers: tuple[str, ...] = ()  # model tiers to climb (empty: every tier)

    def requests_needed(self) -> int:
        """Requests a ladder that climbs to the top sends at most."""
        return sum(self.ladder) * self.requests_per_stream


@dataclass(frozen=True, slots=True)
class StepCriteria:
    """What a step must meet to hold. None leaves a criterion out."""

    ttft_p95_s: float | None = None  # nearest-rank p95 of the step's TTFTs at most this
    decode_tps_min: float | None = None  # median per-stream decode rate at least this
    availability: float | None = None  # share of the step's runs that are ok at least this

    @classmethod
    def for_profile(cls, profile: SLAProfile) -> StepCriteria:
        """The profile's capacity item where it sets one, else its own SLIs' targets."""
        item = profile.capacity
        return cls(
            ttft_p95_s=item.ttft_p95_s if item and item.ttft_p95_s else profile.ttft_p95_s,
            decode_tps_min=(item.decode_tps_min if item and item.decode_tps_min
                            else profile.decode_tps_min),
            availability=(item.availability if item and item.availability
                          else profile.availability))


@dataclass(frozen=True, slots=True)
class Step:
    """One rung of a ladder: `streams` concurrent streams for a bounded time."""

    streams: int
    started_at: float  # unix seconds
    elapsed_s: float  # first request sent -> last run ended
    runs: int
    outcomes: Mapping[str, int]
    output_tokens: int  # of ok runs
    tokens_per_s: float | None  # aggregate: output tokens of ok runs / elapsed_s
    stream_tps_p50: float | None  # median decode rate of one stream (completed runs)
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    error_rate: float | None  # runs that were not ok / runs
    disconnect_rate: float | None
    held: bool | None  # met the criteria; None: not judged (rate-limited, or no run)
    broke: tuple[str, ...] = ()  # why it did not hold, e.g. "TTFT p95 3.10 s > 2 s"
    results: tuple[ProbeResult, ...] = field(default=(), repr=False)  # empty when read back


@dataclass(frozen=True, slots=True)
class Ladder:
    """One climb against one model tier of one network."""

    id: str
    network: str
    target: str  # the model tier
    job: str
    job_version: int
    model: str
    location: str
    started_at: float  # unix seconds
    elapsed_s: float
    criteria: StepCriteria
    steps: tuple[Step, ...]
    stopped: Stop
    detail: str  # the stop in words
    requests: int
    spend_usd: float | None  # worst-case spend of the requests sent (None: no price)
    retry_after_s: float | None = None

    @property
    def sustained(self) -> int | None:
        """The highest step that held before the first that broke (0: the first step broke;
        None: no step was judged)."""
        best = None
        for step in self.steps:
            if step.held is None:
                break
            if not step.held:
                return best or 0
            best = step.streams
        return best

    @property
    def knee(self) -> int | None:
        """Streams of the first step that broke the criteria (None: none did)."""
        for step in self.steps:
            if step.held is None:
                return None
            if not step.held:
                return step.streams
        return None

    @property
    def results(self) -> tuple[ProbeResult, ...]:
        return tuple(r for step in self.steps for r in step.results)


@dataclass(frozen=True, slots=True)
class CapacitySchedule:
    """One model tier's ladders: what to climb, how, and what a step must meet."""

    target: Target
    job: Job
    settings: CapacitySettings
    criteria: StepCriteria
    price: Mapping[str, float] | None = None

    @property
    def key(self) -> str:
        return f"{self.target.network}/{self.target.name}"


# Chat templates wrap each message in a few special tokens (Llama 3: a header of 4 and an
# end-of-turn, plus the begin-of-text and the assistant's header): 16 a message is generous.
TEMPLATE_TOKENS_PER_MESSAGE = 16
NONCE_HEX = "0" * 12  # a run's nonce is 12 hex digits (monitor.core.jobs.Job.render)


def cost_bound(job: Job, price: Mapping[str, float] | None) -> float | None:
    """The most one request of `job` can cost in USD: a byte-level BPE tokenizer never makes
    more tokens than bytes, so the prompt is at most its UTF-8 bytes plus the chat template's
    tokens, and the answer at most max_tokens. None without a price."""
    if not price:
        return None
    rendered = job.render(NONCE_HEX)
    prompt_bytes = sum(len(content.encode()) + len(role) for role, content in rendered.messages)
    tokens_in = prompt_bytes + TEMPLATE_TOKENS_PER_MESSAGE * (len(rendered.messages) + 1)
    return (tokens_in * float(price.get("input", 0.0))
            + job.max_tokens * float(price.get("output", 0.0))) / 1e6


def parse_ladder(text: str) -> tuple[int, ...]:
    """`1,4,16,64` -> (1, 4, 16, 64): rising whole numbers of streams, at least 1. ValueError
    says what to write instead."""
    parts = [part.strip() for part in text.split(",")]
    if not parts or not all(part.isdigit() and part.isascii() for part in parts):
        raise ValueError(f"{text!r} is not a ladder; write rising numbers of concurrent "
                         "streams separated by commas, e.g. 1,4,16,64")
    ladder = tuple(int(part) for part in parts)
    if ladder[0] < 1 or any(b <= a for a, b in itertools.pairwise(ladder)):
        raise ValueError(f"{text!r}: the steps must rise and start at 1 stream or more, "
                         "e.g. 1,4,16,64")
    return ladder
