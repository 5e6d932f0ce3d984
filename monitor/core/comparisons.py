"""What the verdict families that compare a network with a reference (model equality, quality
audits) share: their results grouped by what was compared, and how many of the latest said
the bad verdict in a row."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Protocol, TypeVar

Comparison = tuple[str, str, str]  # (network, model, reference)


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


def by_comparison(results: Iterable[R]) -> dict[Comparison, list[R]]:
    """Each (network, model, reference) -> its results, oldest first."""
    groups: dict[Comparison, list[R]] = {}
    for r in sorted(results, key=lambda r: r.started_at):
        groups.setdefault((r.network, r.model, r.reference), []).append(r)
    return groups


def in_a_row(results: Iterable[Compared], bad: enum.Enum, good: enum.Enum
             ) -> dict[Comparison, int]:
    """(network, model, reference) -> how many of its latest results (`results` oldest first)
    said `bad` in a row; a result neither `bad` nor `good` (not enough samples or items)
    neither breaks nor extends the run."""
    streak: dict[Comparison, int] = {}
    for r in results:
        key = (r.network, r.model, r.reference)
        if r.verdict is bad:
            streak[key] = streak.get(key, 0) + 1
        elif r.verdict is good:
            streak[key] = 0
        else:
            streak.setdefault(key, 0)
    return streak
