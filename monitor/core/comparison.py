"""A configured comparison of a network with a reference: what model equality tests and
quality audits pair, each on the same prompts at the same time (docs/equality.md,
docs/quality.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


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
    def key(self) -> tuple[str, str, str]:
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
