"""A run's hard caps, for the jobs that ask networks on purpose (model equality, quality
audits, contract checks, fingerprints): a request is sent only once it has taken one of
`max_requests` and reserved its worst-case cost within `max_spend_usd`; its cost is settled
when its answer comes back (the reported usage, or the worst case when none was reported).
No total can pass its cap, whatever number of requests are in flight."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class Budget:
    """One network and model's requests and spend within a run's caps. `price` is the
    network's (USD per million tokens; None: unpriced, the spend cap does not apply).
    With `need`, taking stops once too many of the `planned` requests failed for the run to
    reach `need` answers. With `whole`, a run that asks several networks: each takes within
    the whole run's caps (which counts them all), at its own price."""

    max_requests: int
    max_spend_usd: float
    price: Mapping[str, float] | None = None
    planned: int = 0
    need: float = 0.0
    whole: Budget | None = None
    sent: int = 0
    failed: int = 0
    output_tokens: int = 0  # reported by the answers, where a job records them
    spent: float = 0.0
    reserved: float = 0.0
    capped: str = ""  # why taking stopped at a cap, else ""
    error: str = ""  # the first failure's reason
    priced: bool = False  # a request with a price was taken

    def take(self, worst_usd: float | None) -> float | None:
        """Reserve the next request and its worst-case cost (None: unpriced); the reserved
        cost, or None when a cap (or hopelessness) says to stop."""
        if self.whole is not None:
            if self.whole.take(worst_usd) is None:
                self.capped = self.whole.capped
                return None
        else:
            if self.sent >= self.max_requests:
                self.capped = self.capped or f"stopped at the request cap ({self.max_requests})"
                return None
            if self.need > 0 and self.planned - self.failed < self.need:
                return None  # too many failed: the run cannot reach `need` any more
            if (worst_usd is not None
                    and self.spent + self.reserved + worst_usd > self.max_spend_usd):
                self.capped = self.capped or f"stopped at the spend cap (${self.max_spend_usd:g})"
                return None
        worst = worst_usd or 0.0
        self.sent += 1
        self.reserved += worst
        self.priced = self.priced or worst_usd is not None
        return worst

    def settle(self, reserved: float, cost_usd: float | None) -> None:
        """A request's answer came back: it cost `cost_usd` (None: unknown, the reserved
        worst case stays spent)."""
        if self.whole is not None:
            self.whole.settle(reserved, cost_usd)
        self.reserved -= reserved
        self.spent += reserved if cost_usd is None else cost_usd

    def fail(self, reason: str) -> None:
        """A request (or item) failed; the first reason is kept."""
        self.failed += 1
        self.error = self.error or reason

    @property
    def spend_usd(self) -> float | None:
        """What the run spent, or None when no price applied to it."""
        return self.spent if self.price is not None or self.priced else None
