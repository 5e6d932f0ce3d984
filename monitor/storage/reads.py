"""Named queries over stored runs for the status page and the incidents: each one is SQL that
SQLite answers in C, so that only what the caller needs reaches Python while the probes share
the process. The analysis layer says what the rows mean; the SQL lives here, with the rest of
the store's (monitor/storage/)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from monitor.storage import domain
from monitor.storage.filters import RunFilter
from monitor.storage.store import TABLE, open_readonly

StreakRow = tuple[str, str, str, float, str]  # network, target, location, started_at, outcome


def streak_rows(paths: Sequence[str | Path], runs: RunFilter, *, set_aside: Sequence[str]
                ) -> Iterator[StreakRow]:
    """What incident streaks are made of, across store files: the failed runs `runs` selects
    and the ok run right after each (a lag() over each target's runs in start order),
    leaving out runs whose outcome is `set_aside` (neither a failure nor an ok run). Files are
    read one by one: each is one agent's, so their locations differ. Location "" for none."""
    where, params = runs.where()
    # rows out of domain are left out (monitor.storage.domain; the report counts them)
    where += f" and {domain.problem_sql(('network', 'target', 'started_at', 'outcome'))} is null"
    aside = sorted(set_aside)
    sql = (
        "select network, target, location, started_at, outcome from ("
        " select network, target, coalesce(location, '') as location, started_at, outcome,"
        "  lag(outcome) over (partition by network, target, location"
        "                     order by started_at, rowid) as previous"
        f" from {TABLE} where {where}"
        f" and outcome not in ({', '.join('?' * len(aside))}))"
        " where outcome != 'ok' or previous != 'ok'")
    for path in paths:
        conn = open_readonly(path)
        try:
            yield from conn.execute(sql, [*params, *aside])
        finally:
            conn.close()


def last_run_times(paths: Sequence[str | Path], runs: RunFilter
                   ) -> dict[tuple[str, str], float]:
    """(network, target) -> when its latest run that `runs` selects started, across files."""
    where, params = runs.where()
    # rows out of domain are left out (monitor.storage.domain; the report counts them)
    where += f" and {domain.problem_sql(('network', 'target', 'started_at'))} is null"
    out: dict[tuple[str, str], float] = {}
    for path in paths:
        conn = open_readonly(path)
        try:
            for network, target, last in conn.execute(
                    f"select network, target, max(started_at) from {TABLE} where {where} "
                    "group by network, target", params):
                out[(network, target)] = max(last, out.get((network, target), last))
        finally:
            conn.close()
    return out


POINT_COLUMNS = ("ttft_s", "tokens_per_s")  # what ttft_points may read


def ttft_points(paths: Sequence[str | Path], runs: RunFilter, column: str = "ttft_s"
                ) -> Iterator[tuple[str, float, float]]:
    """(network, started_at, ttft_s) of every run `runs` selects that had a first token (or
    another of POINT_COLUMNS: `tokens_per_s`, of the runs that had a decode rate)."""
    if column not in POINT_COLUMNS:
        raise ValueError(f"column {column!r}: one of {', '.join(POINT_COLUMNS)}")
    where, params = runs.where()
    # rows out of domain are left out (monitor.storage.domain; the report counts them)
    where += f" and {domain.problem_sql(('network', 'started_at', 'ttft_s'))} is null"
    for path in paths:
        conn = open_readonly(path)
        try:
            yield from conn.execute(
                f"select network, started_at, {column} from {TABLE} "
                f"where {where} and {column} is not null", params)
        finally:
            conn.close()
