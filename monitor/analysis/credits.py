"""SLA credits: each calendar month's availability (maintenance windows excluded) against the
network's credit schedule, and what that month's spend earns back (docs/report.md).

Cloud SLAs credit on monthly availability alone (EC2, Compute Engine, Azure VMs), so this does
too: availability = ok runs / runs that count toward availability, over the UTC calendar
month, leaving out runs inside declared maintenance windows. The credit is the largest share
among the schedule's tiers the month falls below, times the month's configured spend.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.analysis.queries import Daily
from monitor.core.result import Outcome, counts_toward_availability
from monitor.core.slaprofile import SLAProfile
from monitor.storage.rollups import DAY_S


@dataclass(frozen=True, slots=True)
class MonthCredit:
    """One network's calendar month: attainment and the credit owed."""

    network: str
    month: str  # YYYY-MM (UTC)
    profile: str
    runs: int  # runs judged for availability, outside maintenance windows
    excluded_runs: int  # runs inside maintenance windows, left out
    availability: float | None
    target: float | None  # the profile's availability objective
    days_with_runs: int
    days_in_month: int
    credit_share: float | None  # None: the profile has no credit schedule
    spend_usd: float | None  # None: no monthly spend configured
    credit_usd: float | None

    @property
    def met(self) -> bool | None:
        if self.availability is None or self.target is None:
            return None
        return self.availability >= self.target - 1e-12

    @property
    def partial(self) -> bool:
        """Runs on fewer days than the month has: the period covers part of it, or the
        monitor did not run every day."""
        return self.days_with_runs < self.days_in_month


def month_of(day: int) -> str:
    return dt.datetime.fromtimestamp(day * DAY_S, dt.UTC).strftime("%Y-%m")


def day_label(day: int) -> str:
    return dt.datetime.fromtimestamp(day * DAY_S, dt.UTC).strftime("%Y-%m-%d")


def monthly_credits(daily: Daily, profiles: Mapping[str, SLAProfile],
                    default_profile: SLAProfile,
                    spends: Mapping[str, float]) -> list[MonthCredit]:
    """One MonthCredit per network and calendar month with runs, in (network, month) order."""
    kept: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    excluded: Counter[tuple[str, str]] = Counter()
    days: dict[tuple[str, str], set[int]] = defaultdict(set)
    for (network, day), counts in daily.kept.items():
        kept[network, month_of(day)].update(counts)
        days[network, month_of(day)].add(day)
    for (network, day), counts in daily.excluded.items():
        excluded[network, month_of(day)] += sum(counts.values())
        days[network, month_of(day)].add(day)
    out = []
    for network, month in sorted(days):
        profile = profiles.get(network, default_profile)
        counts = kept.get((network, month), Counter())
        judged = sum(n for o, n in counts.items() if counts_toward_availability(o))
        ok = counts.get(Outcome.OK.value, 0)
        availability = ok / judged if judged else None
        share = None
        if profile.credits:
            share = profile.credit_for(availability) if availability is not None else 0.0
        spend = spends.get(network)
        year, number = (int(part) for part in month.split("-"))
        out.append(MonthCredit(
            network=network, month=month, profile=profile.name, runs=judged,
            excluded_runs=excluded[network, month], availability=availability,
            target=profile.availability, days_with_runs=len(days[network, month]),
            days_in_month=calendar.monthrange(year, number)[1], credit_share=share,
            spend_usd=spend,
            credit_usd=None if share is None or spend is None else round(share * spend, 2)))
    return out
