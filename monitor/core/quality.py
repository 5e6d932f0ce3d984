"""The quality audit's vocabulary: its settings, the items an audit draws, one side's answers
and the verdict of one audit (the comparison it judges: monitor.core.comparison).

An audit sends the same items (monitor.core.quality_suite) to a network and to a reference
serving the same model, at the same time and settings (temperature 0, the same max_tokens),
grades every answer exactly (monitor.core.quality_grading) and compares the two sides on the
items both answered (monitor.analysis.paired). docs/quality.md explains it all.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.core.comparison import Comparison, asked
from monitor.core.quality_grading import Grade
from monitor.core.quality_suite import DIFFICULTIES, FAMILIES, SUITE, Item, make_item

SUITES = (SUITE,)


@dataclass(frozen=True, slots=True)
class QualitySettings:
    """How an audit draws, asks and judges. Temperature is 0 on both sides: the audit asks
    for each model's best answer, not a sample."""

    suite: str = SUITE
    # per audit, spread evenly over families x difficulties: 7 per cell, enough for 80 %
    # power against a 10-point drop (benchmarks/quality_power.py, docs/quality.md)
    items: int = 189
    families: tuple[str, ...] = FAMILIES
    difficulties: tuple[int, ...] = DIFFICULTIES
    max_tokens: int = 512
    temperature: float = 0.0
    alpha: float = 0.05  # one-sided level of McNemar's exact test, per audit
    consecutive: int = 2  # the alert wants this many "worse" in a row
    min_items: float = 0.8  # fewer items answered by both sides than this share: no verdict
    interval_s: float = 6 * 3600.0
    concurrency: int = 4  # requests in flight per asked network
    max_requests: int = 200  # per network and model, per audit: a hard cap
    max_spend_usd: float = 1.0  # per network and model, per audit (with price_per_mtok)
    deadline_s: float = 120.0  # per request
    seed: int | None = None  # a fixed audit seed (the same items every audit); None: fresh

    def specs(self, audit_seed: int) -> list[tuple[str, int, int]]:
        """The audit's items as (family, difficulty, seed): round-robin over the families and
        difficulties (an audit cut short stays balanced), each seed derived from the audit's
        seed, so that every audit draws fresh items and any of them can be regenerated."""
        cells = [(f, d) for d in self.difficulties for f in self.families]
        return [(*cells[i % len(cells)], item_seed(audit_seed, i)) for i in range(self.items)]

    def draw(self, audit_seed: int) -> list[Item]:
        return [make_item(f, d, s) for f, d, s in self.specs(audit_seed)]


def item_seed(audit_seed: int, index: int) -> int:
    """Item number `index`'s seed in an audit (63 bits)."""
    digest = hashlib.sha256(f"{audit_seed}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def prompt_tokens_bound(prompt: str) -> int:
    """An upper bound on a prompt's tokens for the spend cap: a token is rarely under two
    characters (digits are the worst case: 1-3 a token in Llama 3's tokenizer), plus the chat
    template's overhead."""
    return len(prompt) // 2 + 16


def request_cost_usd(price: Mapping[str, float] | None, input_tokens: int,
                     output_tokens: int) -> float | None:
    """What a request costs at `price` (USD per million tokens); None without a price."""
    if price is None:
        return None
    return (input_tokens * price["input"] + output_tokens * price["output"]) / 1e6


def worst_case_cost_usd(settings: QualitySettings, price: Mapping[str, float] | None
                        ) -> float | None:
    """The most an audit of one network can cost: every item's prompt at its token bound and
    max_tokens out. The items' lengths hardly depend on the seed; the bound takes the longest
    of eight seeds per family and difficulty, plus a quarter."""
    if price is None:
        return None
    longest = {(f, d): max(len(make_item(f, d, s).prompt) for s in range(8)) * 5 // 4
               for f in settings.families for d in settings.difficulties}
    total = 0.0
    for family, difficulty, _ in settings.specs(0):
        tokens = longest[(family, difficulty)] // 2 + 16
        total += request_cost_usd(price, tokens, settings.max_tokens) or 0.0
    return total


class Verdict(enum.StrEnum):
    WORSE = "worse than reference"
    NOT_WORSE = "not worse"
    NOT_ENOUGH = "not enough items"


@dataclass(frozen=True, slots=True)
class Answer:
    """One side's answer to item number `index` of an audit. A request that failed (no
    reply) has `outcome` other than ok and no grade: the item is left out of the pairs."""

    index: int
    family: str
    difficulty: int
    seed: int
    outcome: str  # monitor.core.result.Outcome value
    raw: str = ""  # the reply, scrubbed of secrets and cut to RAW_MAX_CHARS
    extracted: str | None = None
    grade: Grade | None = None
    error: str = ""  # redacted


RAW_MAX_CHARS = 4000  # of a reply kept in the store (the answer line is at its end: the tail)


@dataclass(frozen=True, slots=True)
class Asked:
    """What one network answered in one audit, and what asking cost."""

    answers: tuple[Answer, ...]
    requests: int = 0  # sent (failures included)
    failed: int = 0
    spend_usd: float | None = None  # None: the network has no price in the config
    error: str = ""  # the first failure's reason (redacted)
    capped: str = ""  # why asking stopped early: the request or spend cap


@dataclass(frozen=True, slots=True)
class Cell:
    """Correct answers of each side over the pairs of one family or difficulty."""

    pairs: int
    correct: int
    reference_correct: int


@dataclass(frozen=True, slots=True)
class QualityResult:
    """One audit's verdict, as stored (table `quality_audits`) and exported."""

    audit_id: str
    network: str
    tier: str
    model: str
    reference: str
    started_at: float  # unix seconds
    verdict: Verdict
    suite: str
    seed: int  # the audit's seed: its items are settings.specs(seed)
    items: int  # planned
    pairs: int  # items both sides answered (graded)
    correct: int  # the network's correct answers among the pairs
    reference_correct: int
    network_only: int  # pairs the network got right and the reference wrong (b)
    reference_only: int  # pairs the reference got right and the network wrong (c)
    accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None
    reference_accuracy: float | None
    reference_low: float | None
    reference_high: float | None
    difference: float | None  # accuracy - reference accuracy, on the pairs
    difference_low: float | None
    difference_high: float | None
    p_value: float | None  # one-sided exact McNemar: P(this few network-only | equal skill)
    alpha: float
    refused: int  # the network's refusals among its graded answers
    unparsed: int
    requests: int
    failed: int
    spend_usd: float | None
    consecutive_worse: int = 0
    duration_s: float = 0.0
    error: str = ""  # why items are missing, redacted
    by_family: Mapping[str, Cell] | None = None
    by_difficulty: Mapping[str, Cell] | None = None


@dataclass(frozen=True, slots=True)
class QualityPlan:
    """The config's `quality:` section: how to audit, and what to compare."""

    settings: QualitySettings
    comparisons: tuple[Comparison, ...]

    def networks(self) -> list[tuple[str, str]]:
        """Every (network, tier) an audit asks, each once."""
        return asked(self.comparisons)
