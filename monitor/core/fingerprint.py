"""The fingerprint's vocabulary: candidate prompts, settings, a network's border-input set and
its reference, one run's observations and its verdict.

Method: B3IT (Chauvin et al., "Token-Efficient Change Detection in LLM APIs", ICML 2026,
arXiv 2602.11083; github.com/timothee-chauvin/token-efficient-change-detection-llm-apis,
b3it_demo/src/b3it_demo/detection.py): find *border inputs*, very short prompts whose first
output token at temperature 0 is not always the same, then re-sample them daily, one output
token each, and compare today's first-token distributions with the network's own recent
ones. docs/fingerprint.md explains the method, the test and its false-alarm rate.

An observation is one request's first-token distribution as a mapping token -> probability:
`{token: 1.0}` from the token alone, or the top-k probabilities when the API returns
`top_logprobs` (what they leave out is one "other" bucket).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

Observation = Mapping[str, float]


@dataclass(frozen=True, slots=True)
class CandidateSet:
    """Short prompts to try as border inputs, versioned like the equality prompt sets."""

    name: str
    prompts: tuple[str, ...]

    @property
    def digest(self) -> str:
        return hashlib.sha256("\x00".join(self.prompts).encode()).hexdigest()[:16]


def _syllables() -> tuple[str, ...]:
    # Three-letter consonant-vowel-consonant strings: most are one token in common
    # tokenizers, like B3IT's single-token prompts, and a model's first answer to them is
    # often a near-tie between a few guesses.
    return tuple(a + v + b for a in "bdfgklmnprstvz" for v in "aeiou" for b in "dgklmnprst")


CANDIDATES_V1 = CandidateSet("short-v1", _syllables())
CANDIDATE_SETS: dict[str, CandidateSet] = {CANDIDATES_V1.name: CANDIDATES_V1}
DEFAULT_CANDIDATES = CANDIDATES_V1.name


class Method(enum.StrEnum):
    TOKENS = "tokens"  # the first token only: many samples a prompt
    LOGPROBS = "logprobs"  # top_logprobs: one request a prompt tells its distribution


class Verdict(enum.StrEnum):
    SAME = "same"
    CHANGED = "changed"  # today differs from the network's own trailing baseline
    DIFFERS = "differs from reference"  # same as yesterday, but not as the reference
    NOT_ENOUGH = "not enough samples"
    DISCOVERED = "discovered"  # a run that (re-)discovered the set: no test yet


@dataclass(frozen=True, slots=True)
class FingerprintSettings:
    """How the fingerprint discovers, samples and tests. Defaults follow B3IT's production
    monitor (b3it_demo/config.toml): 3 tries a candidate, ~100 reference samples of each kept
    input (here 30 over 20 inputs), 20 inputs x 10 samples a day, one output token each."""

    candidates: str = DEFAULT_CANDIDATES
    candidates_tried: int = 300  # the first N candidates of the set, at discovery
    tries: int = 3  # tries a candidate at discovery (B3IT: queries_per_token = 3)
    border_inputs: int = 20  # inputs kept (B3IT: top_k_bis = 20)
    min_border_inputs: int = 5  # fewer kept or still varying: no set / worn out
    reference_samples: int = 30  # samples of each kept input for its reference
    samples_per_input: int = 10  # a run's samples of each input (B3IT: 10)
    top_logprobs: int = 5  # 0: never ask for logprobs
    logprob_samples: int = 2  # a run's requests per input when logprobs come back
    baseline_runs: int = 7  # the trailing baseline: this many latest runs
    alpha: float = 0.001  # level of one test: P(changed | same model) <= alpha
    permutations: int = 1999
    min_samples: float = 0.5  # fewer than this share of a run's plan: no verdict
    interval_s: float = 24 * 3600.0
    concurrency: int = 4
    max_requests: int = 300  # per network and model, per run: a hard cap
    max_spend_usd: float = 0.05  # per network and model, per run
    discovery_max_requests: int = 2000  # per network and model, per discovery
    discovery_max_spend_usd: float = 0.5
    deadline_s: float = 30.0
    seed: int = 0  # of the permutations

    @property
    def run_requests(self) -> int:
        """A run's planned requests without logprobs (with them: fewer)."""
        return self.border_inputs * self.samples_per_input

    @property
    def discovery_requests(self) -> int:
        return self.candidates_tried * self.tries + self.border_inputs * self.reference_samples

    def candidate_prompts(self) -> tuple[str, ...]:
        return CANDIDATE_SETS[self.candidates].prompts[: self.candidates_tried]


def request_cost_usd(price: Mapping[str, float] | None, prompt: str = "",
                     input_tokens: int | None = None, output_tokens: int | None = None
                     ) -> float | None:
    """One request's cost at `price` (USD per million tokens); the worst case for counts the
    network did not report (a chat template's ~16 tokens around a short prompt, 1 out)."""
    if price is None:
        return None
    tokens_in = input_tokens if input_tokens is not None else len(prompt) // 2 + 16
    tokens_out = output_tokens if output_tokens is not None else 1
    return (tokens_in * price["input"] + tokens_out * price["output"]) / 1e6


@dataclass(frozen=True, slots=True)
class Target:
    """One fingerprinted (network, tier) and its model id: the bounded `model` label.
    `reference`: a network of the config serving the same model at the same tier, sampled on
    the same border inputs in each run ("differs from reference" is then tested against its
    samples of that run; without one, against the set's stored reference)."""

    network: str
    tier: str
    model: str
    reference: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.network, self.model)


@dataclass(frozen=True, slots=True)
class BorderSet:
    """A network's border inputs and their reference observations, with a version (1, 2,
    ... per network and model): re-discovery makes a new version."""

    network: str
    model: str
    version: int
    method: Method
    prompts: tuple[str, ...]
    reference: Mapping[str, Sequence[Observation]]  # prompt -> its reference observations
    created_at: float
    candidates: str
    tried: int  # candidates tried
    requests: int  # the discovery's requests (failures included)
    spend_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Sampled:
    """One run's observations of a set's prompts, and what they cost."""

    observations: Mapping[str, Sequence[Observation]]
    requests: int = 0
    failed: int = 0
    output_tokens: int = 0
    spend_usd: float | None = None
    error: str = ""  # the first failure's reason (redacted)
    capped: str = ""
    logprobs: bool = False  # every answer carried top_logprobs

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.observations.values())


@dataclass(frozen=True, slots=True)
class FingerprintResult:
    """One run's verdict on a network and model, as stored (`fingerprint_verdicts`)."""

    network: str
    tier: str
    model: str
    started_at: float
    verdict: Verdict
    set_version: int
    method: Method
    distance: float | None  # mean TV distance of today's distributions from the baseline's
    p_value: float | None
    reference_distance: float | None  # ... from the reference's (see reference_network)
    reference_p_value: float | None
    samples: int
    requests: int
    failed: int
    output_tokens: int
    spend_usd: float | None
    alpha: float
    baseline_runs: int  # runs the baseline pooled (0: the reference alone)
    changed_since: float | None = None  # a change: when the run before it started
    duration_s: float = 0.0
    error: str = ""
    observations: Mapping[str, Sequence[Observation]] = field(default_factory=dict)
    # The reference the run was compared with: a reference network sampled in the same run,
    # or None for the set's stored reference (from its discovery).
    reference_network: str | None = None


@dataclass(frozen=True, slots=True)
class FingerprintPlan:
    """The config's `fingerprint:` section: how, and which (network, tier)s."""

    settings: FingerprintSettings
    targets: tuple[Target, ...]
