"""Which stored runs a read selects, and the one place that turns that into a WHERE clause."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Runs started in [since, until) of some networks and jobs (empty: all), optionally only
    rows past or up to a rowid (the rollups' watermark). None leaves a bound open."""

    since: float | None = None
    until: float | None = None
    networks: Sequence[str] = ()
    jobs: Sequence[str] = ()
    after_rowid: int | None = None
    upto_rowid: int | None = None

    def where(self, time_column: str = "started_at") -> tuple[str, list[object]]:
        """`(sql, params)` for a WHERE clause; the rollup tables pass `day` as time_column,
        with since/until in days."""
        clauses: list[str] = []
        params: list[object] = []
        for clause, value in ((f"{time_column} >= ?", self.since),
                              (f"{time_column} < ?", self.until),
                              ("rowid > ?", self.after_rowid),
                              ("rowid <= ?", self.upto_rowid)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        for column, values in (("network", self.networks), ("job", self.jobs)):
            if values:
                clauses.append(f"{column} in ({', '.join('?' * len(values))})")
                params.extend(values)
        return " and ".join(clauses) or "1=1", params
