"""Fault profiles: how a simulated network behaves (latency distributions and fault rates).

Every request draws a `Plan` from the profile with a seeded RNG, so a run is reproducible.
Probabilities are per request; at most one fault is injected per request.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from typing import Any

from monitor.simulator.contract import knobs
from monitor.simulator.quality import SKILLS
from monitor.simulator.sampling import VARIANTS as SERVES

# Faults, in the order they are drawn. Mid-stream faults strike after a random token.
FAULTS = (
    "http_5xx",  # 500/502/503/504/529 with the error bodies real gateways send
    "rate_limit",  # 429 with Retry-After
    "malformed",  # 200 with an HTML gateway page, or an undecodable chunk mid-stream
    "stream_error",  # an {"error": ...} event inside a 200 stream, then the end
    "eof",  # the connection closes (FIN) mid-stream
    "reset",  # the connection is reset (RST) mid-stream
    "truncate",  # the body ends cleanly but without a terminal event
    "stall",  # a long pause between two tokens, then the stream resumes
    "wrong",  # a complete, well-formed stream with a wrong answer
)


QUOTA_ANSWERS = ("402", "429")  # how /v1 says "out of credits" (monitor.simulator.account)


def chunk_range(spec: str) -> tuple[int, int]:
    """`tokens_per_chunk` as (fewest, most): "4" -> (4, 4), "1-8" -> (1, 8)."""
    low, sep, high = spec.partition("-")
    try:
        bounds = (int(low), int(high) if sep else int(low))
    except ValueError:
        bounds = (0, 0)
    if not 1 <= bounds[0] <= bounds[1]:
        raise ValueError(f"tokens_per_chunk {spec!r}: expected N or A-B with 1 <= A <= B, "
                         "e.g. 4 or 1-8")
    return bounds


@dataclass(frozen=True, slots=True)
class FaultProfile:
    name: str
    description: str = ""
    ttft_s: float = 0.05  # median time to first token (lognormal)
    ttft_sigma: float = 0.1  # lognormal shape: 0 is constant
    tokens_per_s: float = 80.0  # median decode rate (per request, lognormal)
    decode_sigma: float = 0.05
    p_http_5xx: float = 0.0
    p_rate_limit: float = 0.0
    retry_after_s: int = 5
    p_malformed: float = 0.0
    p_stream_error: float = 0.0
    p_eof: float = 0.0
    p_reset: float = 0.0
    p_truncate: float = 0.0
    p_stall: float = 0.0
    stall_s: float = 30.0  # how long a stall pauses the stream
    p_wrong: float = 0.0
    churn_every_s: float = 0.0  # node churn: every N seconds the node goes away ...
    churn_down_s: float = 0.0  # ... for this long (connections refused, streams reset)
    # Node identity: requests are served by one of `nodes` machines, named in the
    # `node_header` response header (0: the network names none, like most real gateways);
    # every `node_lifetime_s` one of them leaves and a new one joins (0: they stay), and so
    # does one at every churn.
    nodes: int = 0
    node_lifetime_s: float = 0.0
    node_header: str = "X-Served-By"
    # Capacity (monitor/simulator/capacity.py): `nodes` x `slots_per_node` streams at once
    # (0 slots: no limit); beyond them requests queue (TTFT grows), and beyond
    # `nodes` x `queue_per_node` waiting the gateway answers `busy_status` (503 or 429).
    slots_per_node: int = 0
    queue_per_node: int = 0
    busy_status: int = 503
    cold_start_s: float = 0.0  # 503 "Service Initializing" for this long after start
    send_usage: bool = True  # honour stream_options.include_usage
    send_done: bool = True  # send `data: [DONE]` (some servers only send finish_reason)
    malformed_mode: str = "any"  # "html" (a gateway page), "chunk" (undecodable event), "any"
    reject_stream_options: bool = False  # 400 on stream_options, like older vLLM/gateways
    # Tokens per streamed chunk: "1", a fixed "4", or a seeded range "1-8" per chunk (vLLM's
    # stream interval, speculative decoding and batching gateways send several at once).
    tokens_per_chunk: str = "1"
    # The buyer's account (monitor.simulator.account): a request without this Bearer key is
    # refused with 401; after `credits` billable requests (-1: unlimited) every further one is
    # refused as out of credits, on /v1 with a 402 or, as OpenAI does, a 429 insufficient_quota.
    api_key: str = ""
    credits: int = -1
    quota_answer: str = "402"
    # False: every response closes its connection (`Connection: close`), so every client opens
    # a fresh one per request (benchmarks compare probers under one connection policy).
    keep_alive: bool = True
    # What the network really serves when asked to sample (temperature > 0) one of the model
    # equality prompts: the claimed model ("faithful"), a "quantized" copy of it, or a
    # "substituted" other model (monitor.simulator.sampling).
    serves: str = "faithful"
    # How its large models answer the quality suite (monitor.simulator.quality): with the
    # large model's skill ("faithful") or quietly worse ("degraded"); `skill_drop` takes that
    # many points more off every family and difficulty, for any model (0.05: 5 points).
    skill: str = "faithful"
    skill_drop: float = 0.0
    # How it breaks the API contract (tool calls, parameters): comma-separated knobs of
    # monitor.simulator.contract.BREAKS, e.g. "invented_name,stop_ignored"; "" keeps it.
    contract: str = ""
    # A swap of the model behind the name (the fingerprint's case): from `swap_at_s` seconds
    # after start the network serves `swap_to` (a variant as `serves`; "": never swaps).
    swap_to: str = ""
    swap_at_s: float = 0.0
    # Honour `logprobs`/`top_logprobs` on the fingerprint's prompts (many gateways drop them).
    logprobs: bool = True

    def __post_init__(self) -> None:
        knobs(self.contract)
        chunk_range(self.tokens_per_chunk)  # fail at construction, naming the field
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value) or abs(value) > 1e9:
                raise ValueError(f"{f.name} {value}: give a finite number")
            if f.name.startswith("p_") and not 0 <= value <= 1:
                raise ValueError(f"{f.name} {value:g}: a probability is from 0 to 1")
            if value < 0 and f.name != "credits":
                raise ValueError(f"{f.name} {value:g}: cannot be negative")
        if min(self.nodes, self.slots_per_node, self.queue_per_node) < 0:
            raise ValueError("nodes, slots_per_node and queue_per_node cannot be negative")
        if self.busy_status not in (429, 503):
            raise ValueError(f"busy_status {self.busy_status}: use 503 (no instances "
                             "available) or 429 (Chutes' infra_overload)")
        if self.serves not in SERVES:
            raise ValueError(f"serves {self.serves!r}: expected one of {', '.join(SERVES)}")
        if self.skill not in SKILLS:
            raise ValueError(f"skill {self.skill!r}: expected one of {', '.join(SKILLS)}")
        if not 0.0 <= self.skill_drop <= 1.0:
            raise ValueError(f"skill_drop {self.skill_drop}: a share of 0 to 1 (0.05: 5 points)")
        if self.swap_to and self.swap_to not in SERVES:
            raise ValueError(f"swap_to {self.swap_to!r}: expected one of {', '.join(SERVES)}")
        if self.quota_answer not in QUOTA_ANSWERS:
            raise ValueError(f"quota_answer {self.quota_answer!r}: expected one of "
                             f"{', '.join(QUOTA_ANSWERS)}")

    def with_overrides(self, **changes: Any) -> FaultProfile:
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, FaultProfile] = {
    p.name: p
    for p in (
        FaultProfile(
            name="datacenter",
            description="a stable centralized provider: fast, tight latency, rare errors",
            ttft_s=0.08, ttft_sigma=0.15, tokens_per_s=90.0, decode_sigma=0.05,
            p_http_5xx=0.001,
        ),
        FaultProfile(
            name="depin-steady",
            description="a well-run decentralized network: slower, wider latency, some faults",
            ttft_s=0.35, ttft_sigma=0.45, tokens_per_s=40.0, decode_sigma=0.2,
            p_http_5xx=0.01, p_rate_limit=0.01, p_eof=0.005, p_wrong=0.005, p_stall=0.003,
            stall_s=12.0, nodes=4, node_lifetime_s=60.0, slots_per_node=12, queue_per_node=4,
        ),
        FaultProfile(
            name="depin-flaky",
            description="a churning decentralized network: slow, disconnects, wrong answers",
            ttft_s=0.9, ttft_sigma=0.8, tokens_per_s=15.0, decode_sigma=0.4,
            p_http_5xx=0.06, p_rate_limit=0.04, retry_after_s=10, p_malformed=0.01,
            p_stream_error=0.01, p_eof=0.04, p_reset=0.03, p_truncate=0.01, p_stall=0.03,
            stall_s=12.0, p_wrong=0.04, churn_every_s=40.0, churn_down_s=4.0, nodes=8,
            node_lifetime_s=15.0,
        ),
        FaultProfile(
            name="batching-gateway",
            description="a steady network behind a gateway that batches 1-6 tokens a chunk",
            ttft_s=0.25, ttft_sigma=0.3, tokens_per_s=60.0, decode_sigma=0.1,
            p_http_5xx=0.005, tokens_per_chunk="1-6",
        ),
        FaultProfile(
            name="cold-start",
            description="a freshly scheduled node: 503 'Service Initializing' for 20 s, then ok",
            ttft_s=0.2, ttft_sigma=0.2, tokens_per_s=30.0, cold_start_s=20.0,
        ),
        FaultProfile(
            name="down",
            description="a network that answers every request with 503 'No healthy backends'",
            p_http_5xx=1.0,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Plan:
    """What one request will experience: the truth a probe's numbers are checked against."""

    ttft_s: float
    tokens_per_s: float
    fault: str | None = None
    fault_at: int = 0  # token index before which a mid-stream fault strikes
    chunk_seed: int = 0  # seeds the chunk sizes of a variable tokens_per_chunk

    def chunk_sizes(self, spec: str, n_tokens: int) -> list[int]:
        """How `n_tokens` are split into streamed chunks (sizes sum to n_tokens)."""
        low, high = chunk_range(spec)
        rng = random.Random(self.chunk_seed)
        sizes: list[int] = []
        left = n_tokens
        while left > 0:
            size = min(left, low if low == high else rng.randint(low, high))
            sizes.append(size)
            left -= size
        return sizes


class Dice:
    """A seeded source of plans for one simulated network."""

    def __init__(self, profile: FaultProfile, seed: int = 0) -> None:
        self.profile = profile
        self.rng = random.Random(seed)

    def plan(self, n_tokens: int) -> Plan:
        p, rng = self.profile, self.rng
        ttft = _lognormal(rng, p.ttft_s, p.ttft_sigma)
        rate = _lognormal(rng, p.tokens_per_s, p.decode_sigma)
        fault = None
        for name in FAULTS:
            chance = getattr(p, "p_" + name)
            if chance and rng.random() < chance:
                fault = name
                break
        fault_at = rng.randint(1, max(n_tokens - 1, 1)) if n_tokens > 1 else 1
        # Drawn only for a variable chunk size, so fixed-size profiles replay the same plans.
        fewest, most = chunk_range(p.tokens_per_chunk)
        chunk_seed = rng.getrandbits(32) if fewest != most else 0
        return Plan(ttft_s=ttft, tokens_per_s=rate, fault=fault, fault_at=fault_at,
                    chunk_seed=chunk_seed)


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    if median <= 0:
        return 0.0
    if sigma <= 0:
        return median
    return median * math.exp(rng.gauss(0.0, sigma))


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` from the command line into a typed FaultProfile field override."""
    key, sep, value = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(FaultProfile)}
    if not sep or key not in fields or key == "name":
        known = ", ".join(n for n in fields if n not in ("name", "description"))
        raise ValueError(f"--set {text!r}: expected KEY=VALUE with KEY one of: {known}")
    current = getattr(PROFILES["datacenter"], key)
    try:
        if isinstance(current, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return key, value.lower() in ("true", "1")
        typed = type(current)(value)
    except ValueError as exc:
        if key in ("tokens_per_chunk", "quota_answer", "serves", "contract", "swap_to"):
            raise ValueError(f"--set {text!r}: {exc}") from None
        raise ValueError(f"--set {text!r}: {value!r} is not a valid {type(current).__name__}"
                         ) from None
    try:
        dataclasses.replace(PROFILES["datacenter"], **{key: typed})  # validates the field
    except ValueError as exc:
        raise ValueError(f"--set {text!r}: {exc}") from None
    return key, typed
