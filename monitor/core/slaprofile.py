"""SLA profiles: the named targets a network is judged against (config, SLA maths, rules)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CapacityObjective:
    """The optional SLA item "sustains `streams` concurrent streams at >= `decode_tps_min`
    tokens/s each with availability >= `availability`", judged from capacity ladders: a ladder
    meets it when its sustained concurrency reaches `streams`, and the item is met when a share
    `ladders` of the period's ladders do. None falls back to the profile's own target."""

    streams: int
    decode_tps_min: float | None = None
    availability: float | None = None
    ttft_p95_s: float | None = None
    ladders: float = 0.9


@dataclass(frozen=True, slots=True)
class CreditTier:
    """A line of a credit schedule: when a calendar month's availability is below `below`,
    the buyer is owed `credit` (a share of that month's spend)."""

    below: float
    credit: float


@dataclass(frozen=True, slots=True)
class SLAProfile:
    """Targets over a window. Ratios are fractions (0.999 = 99.9 %); None disables an SLI."""

    name: str
    availability: float | None = 0.999  # share of runs with outcome ok
    ttft_p95_s: float | None = 2.0  # 95th percentile time to first token
    e2e_p99_s: float | None = 30.0  # 99th percentile end-to-end duration
    disconnect_rate: float | None = 0.001  # share of runs that ended in `disconnect`
    decode_tps_min: float | None = 20.0  # median decode tokens/s floor
    wrong_output_rate: float | None = 0.01  # share of completed runs that failed the check
    window_days: int = 30  # rolling window; contracts are also judged per calendar month
    capacity: CapacityObjective | None = None  # judged from capacity ladders, not canaries
    # the tier ladder misses a tier whose latest quality audit said "worse than reference"
    quality_not_worse: bool = False
    credits: tuple[CreditTier, ...] = ()  # service credits by monthly availability; none: ()

    def credit_for(self, availability: float) -> float:
        """The share of the month's spend owed at this monthly availability: the largest
        credit among the tiers it falls below (0.0 when it falls below none)."""
        return max((t.credit for t in self.credits if availability < t.below), default=0.0)


ENTERPRISE = SLAProfile(name="enterprise")
BUILTIN_PROFILES: dict[str, SLAProfile] = {
    "enterprise": ENTERPRISE,
    "standard": SLAProfile(
        name="standard", availability=0.99, ttft_p95_s=5.0, e2e_p99_s=60.0,
        disconnect_rate=0.01, decode_tps_min=10.0, wrong_output_rate=0.05,
    ),
}


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A declared maintenance window (unix seconds), excluded from calendar-month attainment."""

    start: float
    end: float
    networks: tuple[str, ...] = ()  # empty: every network
    reason: str = ""

    def covers(self, network: str, t: float) -> bool:
        return self.start <= t < self.end and (not self.networks or network in self.networks)
