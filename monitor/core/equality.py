"""Model equality testing's vocabulary: the versioned prompt set, the settings of the equality
job, how a completion becomes a fixed-length sample, and the verdict of one test.

Method: Gao, Liang and Guestrin, "Model Equality Testing: Which Model Is This API Serving?"
(ICLR 2025, arXiv 2410.20247): sample completions for a fixed set of prompts from a network
and from a reference, keep each completion's first L characters (Unicode code points, padded
with -1), and run a two-sample test (monitor.analysis.mmd). docs/equality.md explains the
method, its settings and its limits.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.core.comparison import Comparison, asked

PAD = -1  # a position past the end of a completion (the authors' package pads with -1 too)


@dataclass(frozen=True, slots=True)
class PromptSet:
    """Prompts sent verbatim (no nonce: a different prompt is a different distribution). A
    changed prompt is a new `name`; `digest` is recorded with every verdict."""

    name: str
    prompts: tuple[str, ...]

    @property
    def digest(self) -> str:
        return hashlib.sha256("\x00".join(self.prompts).encode()).hexdigest()[:16]

    def index(self, text: str) -> int | None:
        """Which prompt this is (for the simulator), or None."""
        try:
            return self.prompts.index(text)
        except ValueError:
            return None


# Open-ended continuations in several languages, like the paper's Wikipedia continuations:
# written for this project, short (cheap input), and with many plausible answers at
# temperature 1, so that the completions' distribution says something about the model.
CONTINUE_V1 = PromptSet("continue-v1", tuple(
    f"Continue the following text for a few sentences, in the same language and style:\n\n{t}"
    for t in (
        "The lighthouse at the end of the harbour had not been lit for eleven years, until",
        "Copper is one of the few metals that occur in nature in a directly usable form. Early",
        "The committee met on a Tuesday morning to decide the future of the old railway line.",
        "In the dry season the river shrinks to a chain of pools, and the herds",
        "The first bicycles had no pedals at all: riders pushed themselves along with",
        "Die Stadtbibliothek wurde im Jahr 1902 eröffnet und war damals",
        "Le marché du samedi commence bien avant l'aube, quand les premiers camions",
        "El volcán lleva dormido más de tres siglos, pero los habitantes del valle",
        "A good sourdough starter needs only flour, water and patience. On the first day",
        "The spacecraft's second burn lasted forty seconds longer than planned, which meant",
        "Honeybees communicate the direction of a food source through a movement called",
        "The village kept a single register of every birth, marriage and death since",
        "Glaciers move slowly, but they shape the land more than almost any other force.",
        "Chess clocks were introduced in tournaments in the nineteenth century because",
        "Il porto di Genova è stato per secoli uno dei più importanti del Mediterraneo, e",
        "The recipe had been handed down for four generations, each cook adding",
        "Before satellite navigation, ships crossing the ocean relied on",
        "Das Orchester probte drei Wochen lang für ein einziges Konzert, denn",
        "The desert at night is colder than most visitors expect. The temperature",
        "The museum's newest exhibit is a single wooden door, brought from",
        "Early printing presses could produce a few hundred pages a day, and",
        "La forêt de Brocéliande est souvent associée aux légendes arthuriennes, car",
        "The bridge was designed to sway slightly in strong winds, a feature that",
        "Most of the world's vanilla is grown on a single island, where farmers",
        "The archive's oldest map shows the coastline several kilometres further inland, because",
    )))

PROMPT_SETS: dict[str, PromptSet] = {CONTINUE_V1.name: CONTINUE_V1}
DEFAULT_PROMPT_SET = CONTINUE_V1.name


@dataclass(frozen=True, slots=True)
class EqualitySettings:
    """How the equality job samples and tests. Defaults follow the paper: temperature 1, up
    to 50 tokens, the first 1,000 characters, about 10 samples per prompt (its headline power
    of 77.4 % is at that budget), a permutation p-value."""

    prompt_set: str = DEFAULT_PROMPT_SET
    prompts: int = 25  # the first N prompts of the set
    samples_per_prompt: int = 10
    chars: int = 1000  # L: characters of each completion kept
    max_tokens: int = 50
    temperature: float = 1.0
    alpha: float = 0.01  # the level of one test: P(differs | same model) <= alpha
    consecutive: int = 2  # the alert wants this many "differs" in a row: P <= alpha ** k
    permutations: int = 1000
    min_samples: float = 0.5  # fewer than this fraction of the planned samples: no verdict
    interval_s: float = 6 * 3600.0
    concurrency: int = 4  # requests in flight per sampled network
    max_requests: int = 300  # per network and model, per run: a hard cap
    max_spend_usd: float = 1.0  # per network and model, per run (with price_per_mtok)
    deadline_s: float = 60.0  # per request
    seed: int = 0  # of the permutations (fixed: the same samples give the same p-value)

    @property
    def planned_samples(self) -> int:
        return self.prompts * self.samples_per_prompt

    def prompt_texts(self) -> tuple[str, ...]:
        return PROMPT_SETS[self.prompt_set].prompts[: self.prompts]


def request_cost_usd(settings: EqualitySettings, price: Mapping[str, float] | None,
                     input_tokens: int | None = None, output_tokens: int | None = None
                     ) -> float | None:
    """What one sampling request costs at `price` (USD per million tokens); the worst case
    (the longest prompt, max_tokens out) for a token count the network did not report."""
    if price is None:
        return None
    if input_tokens is None:
        input_tokens = max(len(p) for p in settings.prompt_texts()) // 3 + 8
    if output_tokens is None:
        output_tokens = settings.max_tokens
    return (input_tokens * price["input"] + output_tokens * price["output"]) / 1e6


class Verdict(enum.StrEnum):
    SAME = "same as reference"
    DIFFERS = "differs"
    NOT_ENOUGH = "not enough samples"


@dataclass(frozen=True, slots=True)
class Sample:
    """One completion for prompt number `prompt` of the prompt set."""

    prompt: int
    text: str


@dataclass(frozen=True, slots=True)
class Sampled:
    """What one network gave in one run: its completions and what getting them cost."""

    samples: tuple[Sample, ...]
    requests: int = 0  # sent (failures included)
    failed: int = 0
    spend_usd: float | None = None  # None: the network has no price in the config
    error: str = ""  # the first failure's reason (redacted)
    capped: str = ""  # why sampling stopped early: the request or spend cap


@dataclass(frozen=True, slots=True)
class EqualityResult:
    """One test's verdict, as stored (table `equality_verdicts`) and exported."""

    network: str
    tier: str
    model: str
    reference: str
    started_at: float  # unix seconds
    verdict: Verdict
    p_value: float | None  # None: not enough samples to test
    statistic: float | None
    samples: int  # the network's completions used
    reference_samples: int
    requests: int  # requests sent to the network (failures included)
    failed: int
    spend_usd: float | None
    prompt_set: str
    prompt_set_digest: str
    alpha: float
    permutations: int
    consecutive_differs: int = 0  # this and the runs before it that differed, in a row
    duration_s: float = 0.0
    error: str = ""  # why samples are missing (the first failure's reason), redacted


def encode(text: str, length: int) -> list[int]:
    """The first `length` characters as Unicode code points, padded with PAD."""
    points = [ord(c) for c in text[:length]]
    return points + [PAD] * (length - len(points))


def verdict_for(p_value: float | None, alpha: float) -> Verdict:
    if p_value is None:
        return Verdict.NOT_ENOUGH
    return Verdict.DIFFERS if p_value < alpha else Verdict.SAME


@dataclass(frozen=True, slots=True)
class EqualityPlan:
    """The config's `equality:` section: how to sample and test, and what to compare."""

    settings: EqualitySettings
    comparisons: tuple[Comparison, ...]

    def networks(self) -> list[tuple[str, str]]:
        """Every (network, tier) a run samples, each once."""
        return asked(self.comparisons)
