"""The one read interface of the store: every question the layers above ask of stored data,
each a named query, and nothing else of storage that a reader needs to know.

As in Gatus's `Store` interface (TwiN/gatus, storage/store/store.go), the callers ask
questions by name (the runs of a period, the streaks of failures, a page of runs, the
verdicts of a family) and never see SQL: the queries over `probe_results` are here, each a
statement SQLite answers in C so that only the rows a caller needs reach Python; each verdict
family's tables are read by that family's module (monitor/storage/equality.py, quality.py,
contract.py, fingerprint.py, capacity.py), next to the DDL and the writer of those tables, and
exported here under the names callers use. Every query takes the store files to read (one
agent's file, or several agents' at once) and opens each read-only: a report never writes,
and a store file copied from elsewhere reads like one's own. A file from before a migration
reads as if it had the migration's tables empty and its columns NULL.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.core.result import COMPLETED_OUTCOMES, ProbeResult
from monitor.storage import domain
from monitor.storage.capacity import read_ladder_runs, read_ladders
from monitor.storage.contract import read_contract_runs
from monitor.storage.domain import Ignored
from monitor.storage.equality import read_verdicts
from monitor.storage.files import each_file, open_readonly, select_list, table_columns
from monitor.storage.filters import RunFilter
from monitor.storage.fingerprint import (
    fingerprint_history,
    read_border_sets,
    read_fingerprints,
)
from monitor.storage.quality import read_answers, read_audits
from monitor.storage.rows import COLUMNS, TABLE, TYPES, from_row

__all__ = [
    "POINT_COLUMNS", "Page", "Position", "Runs", "SlotKey", "StreakRow", "fingerprint_history",
    "last_run_times", "open_readonly", "open_store", "open_stores", "read_answers", "read_audits",
    "read_border_sets", "read_contract_runs", "read_fingerprints", "read_ladder_runs",
    "read_ladders", "read_page", "read_rows", "read_verdicts", "select_rows", "slot_counts",
    "streak_rows", "ttft_points",
]


# -- runs as results: one file, or several read as one --------------------------------

class Runs:
    """The runs of a `probe_results` table (one file, or several merged by open_stores) as
    results, counts and timings."""

    def __init__(self, db: sqlite_utils.Database, *, sources: Sequence[str] = ()) -> None:
        self._db = db
        self.sources = tuple(sources)

    @property
    def db(self) -> sqlite_utils.Database:
        return self._db

    def _where(self, network: str | None, since: float | None, until: float | None,
               job: str | None) -> tuple[str, list[Any]]:
        return RunFilter(since=since, until=until, networks=() if network is None else (network,),
                         jobs=() if job is None else (job,)).where()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, list(params))

    def count(self, network: str | None = None, since: float | None = None,
              until: float | None = None, job: str | None = None) -> int:
        where, params = self._where(network, since, until, job)
        return int(self._query(f"select count(*) from {TABLE} where {where}", params)
                   .fetchone()[0])

    def results(self, network: str | None = None, since: float | None = None,
                until: float | None = None, job: str | None = None) -> Iterator[ProbeResult]:
        """Every run in [since, until), oldest first."""
        where, params = self._where(network, since, until, job)
        cursor = self._query(f"select {', '.join(COLUMNS)} from {TABLE} where {where} "
                             "order by started_at", params)
        cursor.row_factory = sqlite3.Row
        for row in cursor:
            yield from_row(row)

    def networks(self) -> list[str]:
        return [r[0] for r in self._query(f"select distinct network from {TABLE} order by 1")]

    def outcome_counts(self, network: str | None = None, since: float | None = None,
                       until: float | None = None, job: str | None = None
                       ) -> dict[str, dict[str, int]]:
        """network -> outcome -> runs."""
        where, params = self._where(network, since, until, job)
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for net, outcome, n in self._query(
                f"select network, outcome, count(*) from {TABLE} where {where} "
                "group by network, outcome", params):
            out[net][outcome] = n
        return dict(out)

    def latencies(self, column: str, network: str | None = None, since: float | None = None,
                  until: float | None = None, job: str | None = None,
                  outcomes: Iterable[str] | None = COMPLETED_OUTCOMES) -> list[float]:
        """Sorted non-null values of one timing column (ttft_s, duration_s, tokens_per_s, ...)
        of runs with the given outcomes (default: completed runs; None: every run)."""
        if TYPES.get(column) is not float:
            raise ValueError(f"{column!r} is not a timing column of {TABLE}")
        where, params = self._where(network, since, until, job)
        wanted = sorted(outcomes or ())
        if wanted:
            where += f" and outcome in ({', '.join('?' * len(wanted))})"
            params += wanted
        return [r[0] for r in self._query(
            f"select {column} from {TABLE} where {where} and {column} is not null "
            f"order by {column}", params)]

    def close(self) -> None:
        self.db.close()


def open_store(path: str | Path) -> Runs:
    """One store file, read-only."""
    return open_stores([path])


def open_stores(paths: Sequence[str | Path]) -> Runs:
    """Several store files (e.g. one per agent and location) as one read-only store: each is
    ATTACHed read-only and `probe_results` is a temporary view over their union."""
    if not paths:
        raise ValueError("open_stores needs at least one path")
    conn = sqlite3.connect("file::memory:", uri=True)
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED) if hasattr(conn, "getlimit") else 10
    if len(paths) > limit:
        conn.close()
        raise ValueError(f"at most {limit} store files at once; merge some first")
    selects = []
    for i, path in enumerate(paths):
        if not Path(path).is_file():
            conn.close()
            raise FileNotFoundError(f"{path}: no such store file")
        uri = f"file:{Path(path).resolve()}?mode=ro"
        conn.execute(f"attach database ? as s{i}", [uri])
        selects.append(f"select {select_list(conn, COLUMNS, schema=f's{i}.')} from s{i}.{TABLE}")
    conn.execute(f"create temp view {TABLE} as {' union all '.join(selects)}")
    return Runs(sqlite_utils.Database(conn), sources=[str(p) for p in paths])


def select_rows(conn: sqlite3.Connection, columns: Sequence[str], runs: RunFilter,
                ignored: Ignored | None = None) -> Iterator[dict[str, Any]]:
    """Selected columns of the runs `runs` selects, as dicts (sqlite3.DatabaseError for a file
    that is not a store). Rows with a value out of its column's domain (monitor.storage.domain)
    are left out and counted in `ignored`."""
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown columns {unknown}")
    have = table_columns(conn)
    where, params = runs.where()
    problem = domain.problem_sql([c for c in columns if c in have])
    cursor = conn.execute(f"select {select_list(conn, columns)}, {problem} from {TABLE} "
                          f"where {where}", params)
    n = len(columns)
    for values in cursor:
        why = values[n]
        if why is None:
            yield dict(zip(columns, values[:n], strict=True))
        elif ignored is not None:
            ignored.add(why)


def read_rows(paths: Sequence[str | Path], columns: Sequence[str], *,
              since: float | None = None, until: float | None = None,
              networks: Sequence[str] = (), jobs: Sequence[str] = (),
              ignored: Ignored | None = None) -> Iterator[dict[str, Any]]:
    """Selected columns of the runs in each store file, file after file, each opened read-only
    (no limit on the number of files, unlike open_stores). FileNotFoundError for a missing
    file, sqlite3.DatabaseError for a file that is not a store; rows out of domain counted
    in `ignored` (select_rows)."""
    runs = RunFilter(since=since, until=until, networks=networks, jobs=jobs)
    for conn in each_file(paths):
        yield from select_rows(conn, columns, runs, ignored)



# -- the status page and the incidents --------------------------------------------

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
    for conn in each_file(paths):
        yield from conn.execute(sql, [*params, *aside])


def last_run_times(paths: Sequence[str | Path], runs: RunFilter
                   ) -> dict[tuple[str, str], float]:
    """(network, target) -> when its latest run that `runs` selects started, across files."""
    where, params = runs.where()
    # rows out of domain are left out (monitor.storage.domain; the report counts them)
    where += f" and {domain.problem_sql(('network', 'target', 'started_at'))} is null"
    out: dict[tuple[str, str], float] = {}
    for conn in each_file(paths):
        for network, target, last in conn.execute(
                f"select network, target, max(started_at) from {TABLE} where {where} "
                "group by network, target", params):
            out[(network, target)] = max(last, out.get((network, target), last))
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
    for conn in each_file(paths):
        yield from conn.execute(
            f"select network, started_at, {column} from {TABLE} "
            f"where {where} and {column} is not null", params)


# -- the report's quorum view: run counts per (network, location, time slot) ---------
# One GROUP BY per file over the (network, started_at) index; the daily rollups are too
# coarse for it.

SlotKey = tuple[str, str, int]  # (network, location, slot number = started_at // slot_s)


def slot_counts(paths: Sequence[str | Path], slot_s: float, runs: RunFilter, *,
                not_judged: Collection[str] = ()) -> tuple[Counter[SlotKey], Counter[SlotKey]]:
    """(judged runs, failed judged runs) per slot, summed over the files. A run is judged
    unless its outcome is in `not_judged`; it failed unless it is `ok`. FileNotFoundError for
    a missing file, sqlite3.DatabaseError for a file that is not a store."""
    if slot_s <= 0:
        raise ValueError("slot_s must be > 0")
    where, params = runs.where()
    # rows out of domain are left out (monitor.storage.domain; the report counts them)
    where += f" and {domain.problem_sql(('network', 'started_at', 'outcome'))} is null"
    skipped = sorted(not_judged)
    judged = f"outcome not in ({', '.join('?' * len(skipped))})" if skipped else "1"
    # With no bound on time or network every row is read: in table order (not through the
    # (network, started_at) index, a lookup per row) it takes a third less time.
    whole = runs.since is None and runs.until is None and not runs.networks
    sql = (f"select network, coalesce(location, ''), cast(started_at / ? as integer) as slot, "
           f"sum({judged}), sum({judged} and outcome != 'ok') from {TABLE}"
           f"{' not indexed' if whole else ''} where {where} group by 1, 2, 3")
    judged_runs: Counter[SlotKey] = Counter()
    failed_runs: Counter[SlotKey] = Counter()
    for conn in each_file(paths):
        for network, location, slot, n_judged, n_failed in conn.execute(
                sql, [slot_s, *skipped, *skipped, *params]):
            key = (str(network), str(location), int(slot))
            judged_runs[key] += int(n_judged)
            failed_runs[key] += int(n_failed)
    return judged_runs, failed_runs


# -- the API: runs a page at a time, newest first -----------------------------------
# Keyset paging on (started_at, rowid): a page costs the same deep in the history as at its
# top, and runs written meanwhile never shift a page.

Position = tuple[float, int]  # (started_at, rowid) of a page's last run


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    next: Position | None  # where the next page starts; None on the last page


def read_page(path: str | Path, columns: Sequence[str], runs: RunFilter, *,
              outcomes: Sequence[str] = (), targets: Sequence[str] = (), limit: int = 100,
              after: Position | None = None) -> Page:
    """Up to `limit` runs that `runs` (and `outcomes`, `targets`; empty: any) select, newest
    first, starting after `after`."""
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown columns {unknown}")
    where, params = runs.where()
    # rows out of domain are not shown (monitor.storage.domain; the report counts them)
    where += f" and {domain.problem_sql(('started_at', *columns))} is null"
    for column, values in (("outcome", outcomes), ("target", targets)):
        if values:
            where += f" and {column} in ({', '.join('?' * len(values))})"
            params += list(values)
    if after is not None:
        where += " and (started_at < ? or (started_at = ? and rowid < ?))"
        params += [after[0], after[0], after[1]]
    conn = open_readonly(path)
    try:
        rows = conn.execute(
            f"select rowid, started_at, {', '.join(columns)} from {TABLE} where {where} "
            "order by started_at desc, rowid desc limit ?", [*params, limit + 1]).fetchall()
    finally:
        conn.close()
    page = [dict(zip(columns, row[2:], strict=True)) for row in rows[:limit]]
    if len(rows) <= limit:
        return Page(page, None)
    rowid, started_at = rows[limit - 1][:2]
    return Page(page, (float(started_at), int(rowid)))
