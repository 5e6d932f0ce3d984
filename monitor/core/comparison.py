"""A configured comparison of a network with a reference: what model equality tests and
quality audits pair, each on the same prompts at the same time (docs/equality.md,
docs/quality.md); and what the two families share about their results: grouped by what was
compared, and how many of the latest said the bad verdict in a row."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

ComparisonKey = tuple[str, str, str]  # (network, model, reference): a comparison's stored key


@dataclass(frozen=True, slots=True)
class Comparison:
    """One configured comparison: a network's model tier against a reference network's same
    tier, or against a stored reference file (a sample set made by `depin-monitor equality
    --save`, an answer file made by `depin-monitor quality --save`)."""

    network: str
    tier: str
    model: str  # the network's model id for the tier: the bounded `model` label
    reference: str  # the reference network's name, or the stored file's name
    reference_tier: str | None = None  # None: a stored file
    reference_file: str | None = None

    @property
    def key(self) -> ComparisonKey:
        return (self.network, self.model, self.reference)


def asked(comparisons: Iterable[Comparison]) -> list[tuple[str, str]]:
    """Every (network, tier) a run asks, each once (a reference shared by several comparisons
    is asked once a run)."""
    seen: dict[tuple[str, str], None] = {}
    for c in comparisons:
        seen[(c.network, c.tier)] = None
        if c.reference_tier is not None:
            seen[(c.reference, c.reference_tier)] = None
    return list(seen)



class Compared(Protocol):
    """A result of one comparison (EqualityResult, QualityResult)."""

    @property
    def network(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def started_at(self) -> float: ...
    @property
    def verdict(self) -> enum.Enum: ...


R = TypeVar("R", bound=Compared)


def by_comparison(results: Iterable[R]) -> dict[ComparisonKey, list[R]]:
    """Each (network, model, reference) -> its results, oldest first."""
    groups: dict[ComparisonKey, list[R]] = {}
    for r in sorted(results, key=lambda r: r.started_at):
        groups.setdefault((r.network, r.model, r.reference), []).append(r)
    return groups


def in_a_row(results: Iterable[Compared], bad: enum.Enum, good: enum.Enum
             ) -> dict[ComparisonKey, int]:
    """(network, model, reference) -> how many of its latest results (`results` oldest first)
    said `bad` in a row; a result neither `bad` nor `good` (not enough samples or items)
    neither breaks nor extends the run."""
    streak: dict[ComparisonKey, int] = {}
    for r in results:
        key = (r.network, r.model, r.reference)
        if r.verdict is bad:
            streak[key] = streak.get(key, 0) + 1
        elif r.verdict is good:
            streak[key] = 0
        else:
            streak.setdefault(key, 0)
    return streak
