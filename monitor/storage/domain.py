"""Which stored values a read can use: the one definition of a run row's domain.

A store may hold rows no probe wrote: a manual edit, a migration of another tool, a bug of an
older version. A value out of its column's domain (text or infinity where a number belongs, a
`started_at` outside 1970-2200, a negative timing) would raise deep inside a read or fold
into absurd figures. Every raw read (`store.select_rows`, the rollups' fold) asks SQLite for
the first such column of each row (`problem_sql`) and sets the row aside, counted by column in
an `Ignored` tally that the read's output shows ("3 rows ignored: ..."). The check runs inside
SQLite: about 1-2 us a row read raw (3-4 us before it, 300,000 rows measured on a loaded
2-core machine); reads from the rollups check their own rows, a few per series and day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from monitor.core import times

# Points in time a run may have started at: those users may give (1970-01-01 .. 2200-01-01).
MIN_TIME_S = times.MIN_TIME_S
MAX_TIME_S = times.MAX_TIME_S
MIN_DAY = 0
MAX_DAY = int(MAX_TIME_S // 86400)
MAX_SECONDS = 1e9  # a timing or a rate: finite, 0 .. 1e9
MAX_COUNT = 1e15  # tokens, bytes: whole, 0 .. 1e15 (sums stay within SQLite's 64-bit integers)

TIMES = frozenset({"started_at", "scheduled_at"})
AMOUNTS = frozenset({"ttft_s", "duration_s", "tokens_per_s", "connect_s", "ttfb_s",
                     "max_gap_s", "queue_s", "dns_s", "tcp_s", "tls_s"})
COUNTS = frozenset({"output_tokens", "input_tokens", "bytes"})
TEXTS = frozenset({"network", "target", "job", "outcome", "location", "node"})
REQUIRED = frozenset({"started_at", "network", "target", "job", "outcome"})

# Why a row was set aside, by its first bad column (or its table), as the output says it.
WHY = {
    **{c: f"with {c} not a time in 1970-2200" for c in TIMES},
    **{c: f"with {c} not a finite number >= 0" for c in AMOUNTS},
    **{c: f"with {c} not a whole number >= 0" for c in COUNTS},
    **{c: f"with {c} not text" for c in TEXTS},
    **{t: f"of {t} out of domain" for t in ("rollup_runs", "rollup_hist", "rollup_hist_week",
                                           "rollup_nodes")},
    "equality_verdicts": "equality verdicts this version cannot read (an unknown verdict, "
                         "a value out of domain)",
    "capacity_ladders": "capacity ladders this version cannot read (criteria or steps that "
                        "are not its JSON, a value out of domain)",
    "fingerprint_verdicts": "fingerprint verdicts this version cannot read (an unknown "
                            "verdict or method, a value out of domain)",
}


def _numeric(column: str) -> str:
    return f"typeof({column}) in ('integer', 'real')"


def column_problem_sql(column: str) -> str | None:
    """A SQL condition true when `column`'s value is out of its domain (None: any value
    goes)."""
    nullable = column not in REQUIRED
    if column in TIMES:
        bad = f"not ({_numeric(column)} and {column} between {MIN_TIME_S!r} and {MAX_TIME_S!r})"
    elif column in AMOUNTS:
        bad = f"not ({_numeric(column)} and {column} between 0 and {MAX_SECONDS!r})"
    elif column in COUNTS:
        bad = (f"not ({_numeric(column)} and {column} between 0 and {MAX_COUNT!r} "
               f"and {column} = round({column}))")
    elif column in TEXTS:
        bad = f"typeof({column}) != 'text'"
    else:
        return None
    return f"({column} is not null and {bad})" if nullable else f"({bad})"


def problem_sql(columns: Iterable[str], prefix: str = "") -> str:
    """A SQL expression naming the first of `columns` whose value is out of its domain, NULL
    for a row in domain (`prefix` qualifies the columns, e.g. `s0.`)."""
    cases = []
    for column in columns:
        condition = column_problem_sql(f"{prefix}{column}" if prefix else column)
        if condition is not None:
            cases.append(f"when {condition} then '{column}'")
    return f"(case {' '.join(cases)} end)" if cases else "null"


class Ignored:
    """Rows a read set aside, counted by the first column out of its domain."""

    def __init__(self) -> None:
        self.by_column: Counter[str] = Counter()

    def add(self, column: str, n: int = 1) -> None:
        self.by_column[column] += n

    def merge(self, other: Ignored) -> None:
        self.by_column.update(other.by_column)

    @property
    def total(self) -> int:
        return sum(self.by_column.values())

    def __bool__(self) -> bool:
        return bool(self.by_column)

    def describe(self, what: str = "stored rows") -> str:
        """`3 stored rows ignored (values out of domain): 2 with ttft_s not a finite number
        >= 0, 1 with started_at not a time in 1970-2200`; "" when none were."""
        if not self.by_column:
            return ""
        n = self.total
        parts = [f"{k} {WHY.get(column, f'with {column} out of domain')}"
                 for column, k in sorted(self.by_column.items(), key=lambda i: (-i[1], i[0]))]
        noun = what if n != 1 else what.removesuffix("s")
        return f"{n:,} {noun} ignored (values out of domain): {', '.join(parts)}"
