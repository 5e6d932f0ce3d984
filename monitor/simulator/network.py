"""One simulated network's state: its profile and dice, node up/down, and the ground-truth log.

Protocol modules (openai.py, ...) ask it for a plan, the answer to a prompt, and record what
they actually did (perf_counter stamps on the machine's monotonic clock) so that benchmarks and
tests can compare the probe's measurements with the truth: `GET /sim/truth/{request_id}`.
"""

from __future__ import annotations

import random
import re
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field

import numpy as np

from monitor.core.equality import PROMPT_SETS
from monitor.core.fingerprint import CANDIDATE_SETS
from monitor.core.jobs import find_job_by_prompt
from monitor.simulator.capacity import slots_for
from monitor.simulator.firsttoken import FirstToken, first_token_model
from monitor.simulator.profiles import Dice, FaultProfile, Plan
from monitor.simulator.sampling import model_for

TRUTH_CAPACITY = 200_000
HEALTH_LOG_SIZE = 100_000
WRONG_ANSWER = "I'm sorry, but I cannot help with that request."
_TOKEN = re.compile(r"\s?\w+|\s?[^\w\s]|\s+")
_CANDIDATES = frozenset(p for c in CANDIDATE_SETS.values() for p in c.prompts)
_FILLER = ("the network answered with a steady stream of words about nothing in particular "
           "so that a probe can time every token as it arrives ").split()


@dataclass(slots=True)
class Truth:
    """What the simulator did for one request (perf_counter seconds)."""

    request_id: str
    received: float
    planned_ttft_s: float
    planned_tokens_per_s: float
    fault: str | None  # a FAULTS name, or "busy": refused for want of capacity
    admitted: float | None = None  # when generation could start (after queueing for a slot)
    first_token: float | None = None  # when the first chunk was written
    last_token: float | None = None
    tokens: int = 0
    first_chunk_tokens: int = 0  # tokens the first chunk carried (written at first_token)
    ended: float | None = None

    @property
    def queued_s(self) -> float | None:
        """How long the request waited for a free slot."""
        return None if self.admitted is None else self.admitted - self.received

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.received

    @property
    def tokens_per_s(self) -> float | None:
        """Decode rate as docs/metrics.md defines it: tokens after the first chunk over the time
        from the first chunk to the last."""
        if self.first_token is None or self.last_token is None:
            return None
        span = self.last_token - self.first_token
        after = self.tokens - (self.first_chunk_tokens or 1)
        return after / span if span > 0 and after > 0 else None

    def wrote(self, now: float, tokens: int) -> None:
        """A chunk of `tokens` tokens was written at `now`."""
        if self.first_token is None:
            self.first_token = now
            self.first_chunk_tokens = tokens
        self.last_token = now
        self.tokens += tokens

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.update(ttft_s=self.ttft_s, tokens_per_s=self.tokens_per_s, queued_s=self.queued_s)
        return d


@dataclass
class SimNetwork:
    """A reference network: profile, seeded dice, node state and recent ground truth."""

    profile: FaultProfile
    seed: int = 0
    model: str = "sim-llama-3.1-8b-instruct"
    started: float = field(default_factory=time.perf_counter)
    up: bool = True
    truth: OrderedDict[str, Truth] = field(default_factory=OrderedDict)
    requests: int = 0
    served: list[str] = field(default_factory=list)  # model listings; empty: just `model`
    # GET /health answers: (received, written) perf_counter stamps, the latest HEALTH_LOG_SIZE
    health_log: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=HEALTH_LOG_SIZE))

    def __post_init__(self) -> None:
        self.dice = Dice(self.profile, self.seed)
        self.slots = slots_for(self.profile)  # None: no capacity limit
        # Sampling requests (model equality) draw their faults from dice of their own, so
        # that they leave the seeded fault sequence of every other request as it was.
        self.sampling_dice = Dice(self.profile, self.seed + 1_000_003)
        self.sampled: dict[int, int] = {}  # prompt number -> completions sampled so far
        self.probed: dict[str, int] = {}  # fingerprint prompt -> first tokens decoded so far
        # Its own dice, so that naming nodes leaves the seeded plans as they were.
        self._node_rng = random.Random(self.seed + 0x5EED)
        self.nodes = [self._new_node() for _ in range(self.profile.nodes)]
        self._nodes_renewed = self.started
        self.nodes_seen = len(self.nodes)

    def _new_node(self) -> str:
        return f"{self.profile.name}-node-{self._node_rng.getrandbits(32):08x}"

    def replace_node(self) -> None:
        """One node leaves (churn, or its lease ended) and a new one takes its place."""
        if self.nodes:
            self.nodes[self._node_rng.randrange(len(self.nodes))] = self._new_node()
            self.nodes_seen += 1

    def serving_node(self) -> str | None:
        """The node that serves the next request (None: the network names no node)."""
        if not self.nodes:
            return None
        lifetime = self.profile.node_lifetime_s
        if lifetime > 0:
            now = time.perf_counter()
            while now - self._nodes_renewed >= lifetime / len(self.nodes):
                self._nodes_renewed += lifetime / len(self.nodes)
                self.replace_node()
        return self.nodes[self._node_rng.randrange(len(self.nodes))]

    def sampled_answer(self, user_text: str, max_tokens: int, temperature: object
                       ) -> list[str] | None:
        """A sampled completion when asked to sample (temperature > 0) one of the model
        equality prompts: from the model this network really serves (its profile's
        `serves`). None for every other request (the jobs' known answers)."""
        if not self.is_sampling(user_text, temperature):
            return None
        assert isinstance(temperature, int | float)
        for prompts in PROMPT_SETS.values():
            index = prompts.index(user_text)
            if index is not None:
                # the n-th completion of a prompt is drawn from its own seeded generator, so
                # that a run's samples do not depend on the order concurrent requests arrive
                n = self.sampled[index] = self.sampled.get(index, 0) + 1
                rng = np.random.default_rng((self.seed, index, n))
                model = model_for(self.model, self.serving())
                return model.sample(index, 1, max_tokens, float(temperature), rng)[0]
        return None

    def serving(self) -> str:
        """The variant served now: `serves`, or `swap_to` once `swap_at_s` have passed."""
        p = self.profile
        if p.swap_to and time.perf_counter() - self.started >= p.swap_at_s:
            return p.swap_to
        return p.serves

    def first_token(self, user_text: str, temperature: object, top_k: int
                    ) -> FirstToken | None:
        """The first token (and top_k logprobs) of the model served now, for one of the
        fingerprint's candidate prompts; None for every other request."""
        if user_text not in _CANDIDATES:
            return None
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            temperature = 1.0
        # the n-th request of a prompt gets its own seeded jitter: order-independent
        n = self.probed[user_text] = self.probed.get(user_text, 0) + 1
        rng = np.random.default_rng((self.seed, n, *user_text.encode()))
        return first_token_model(self.model, self.serving()).decode(
            user_text, float(temperature), rng, top_k)

    def plan(self, n_tokens: int, *, sampling: bool = False) -> Plan:
        return (self.sampling_dice if sampling else self.dice).plan(n_tokens)

    def is_sampling(self, user_text: str, temperature: object) -> bool:
        """A request to sample (temperature > 0) one of the model equality prompts."""
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
                or temperature <= 0:
            return False
        return any(p.index(user_text) is not None for p in PROMPT_SETS.values())

    @property
    def catalog(self) -> list[str]:
        """The model ids its listings show (`/v1/models`, `/api/tags`, `/chutes/`,
        `/service/list`). Tests change `served` to play a catalog that drifts."""
        return list(self.served) or [self.model]

    @property
    def initializing(self) -> bool:
        return time.perf_counter() - self.started < self.profile.cold_start_s

    def record(self, plan: Plan, received: float) -> Truth:
        self.requests += 1
        rid = "req-" + secrets.token_hex(8)
        truth = Truth(rid, received, plan.ttft_s, plan.tokens_per_s, plan.fault)
        self.truth[rid] = truth
        if len(self.truth) > TRUTH_CAPACITY:
            self.truth.popitem(last=False)
        return truth


def answer_for(user_text: str, max_tokens: int, wrong: bool) -> tuple[list[str], str]:
    """Token pieces of the answer a correct model gives (or a wrong one), and finish_reason."""
    if wrong:
        text = WRONG_ANSWER
    else:
        job = find_job_by_prompt(user_text)
        if job is not None and job.reference_answer:
            text = job.reference_answer
        else:
            text = " ".join(_FILLER[i % len(_FILLER)] for i in range(max(max_tokens, 1)))
    pieces = _TOKEN.findall(text)
    if max_tokens and len(pieces) > max_tokens:
        return pieces[:max_tokens], "length"
    return pieces, "stop"


def approx_tokens(text: str) -> int:
    return max(1, len(_TOKEN.findall(text)))
