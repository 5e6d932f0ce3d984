"""Daily and weekly rollups of `probe_results`: the storage half (tables, folding, reading them
back), so a report over 10 million runs reads pre-aggregates instead of every row.

Per (network, target, job, location, UTC day) the store keeps: runs and token sums per outcome
with the first/last start, the distinct nodes, and histograms of TTFT (runs with a TTFT),
end-to-end and decode rate (completed runs) in log buckets 1 % wide. The histograms are kept a
second time per UTC week (Monday to Sunday, `rollup_hist_week`): a series' day holds a few
hundred runs spread over hundreds of buckets, so the daily histograms barely compress (7.0M
rows for 10M runs) and a week of them is 5x fewer rows. Both tiers hold the same buckets, so a
period read from whole weeks gives exactly the quantiles the days give.

The store's writer folds what it inserts (`Folder`), into both tiers in one transaction;
`refresh()` folds every row past the watermark (by rowid: late or out-of-order rows are never
missed). Which days a period reads from here and which raw is decided by
monitor.analysis.queries; `read_hist` reads the whole weeks among those days from the weekly
tier and the rest from the daily one. Quantiles read off these buckets are within 0.5 %.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from dataclasses import replace
from typing import Any

from monitor.core.result import COMPLETED_OUTCOMES, Outcome
from monitor.storage import domain
from monitor.storage.domain import Ignored
from monitor.storage.filters import RunFilter

GAMMA = 1.01  # bucket width: [GAMMA**b, GAMMA**(b+1))
LN_GAMMA = math.log(GAMMA)
ZERO_BUCKET = -(2**31)  # values <= 0
DAY_S = 86400
REFRESH_CHUNK = 500_000  # rows per transaction when catching up
METRICS = ("ttft", "e2e", "tps")
KEY = ("network", "target", "job", "location")
TABLES = ("rollup_runs", "rollup_hist", "rollup_nodes", "rollup_state")  # what readers need
WEEK_TABLE = "rollup_hist_week"

SCHEMA = (
    """create table if not exists rollup_runs (network text not null, target text not null,
    job text not null, location text not null, day integer not null, outcome text not null,
    runs integer not null, output_tokens integer not null, input_tokens integer not null,
    first_at real not null, last_at real not null,
    primary key (network, target, job, location, day, outcome)) without rowid""",
    """create table if not exists rollup_hist (network text not null, target text not null,
    job text not null, location text not null, day integer not null, metric text not null,
    bucket integer not null, n integer not null,
    primary key (network, target, job, location, metric, bucket, day)) without rowid""",
    """create table if not exists rollup_nodes (network text not null, target text not null,
    job text not null, location text not null, day integer not null, node text not null,
    primary key (network, target, job, location, day, node)) without rowid""",
    """create table if not exists rollup_state (id integer primary key check (id = 1),
    rolled_rowid integer not null)""",
)
IGNORED_TABLE = "rollup_ignored"
# Rows the fold passed over (a value out of domain), per series, day (-1: no usable start
# time) and first bad column: a read of the rolled days still says how many it ignored.
IGNORED_SCHEMA = f"""create table if not exists {IGNORED_TABLE} (network, target, job,
    location, day integer not null, col text not null, n integer not null,
    primary key (network, target, job, location, day, col))"""
WEEK_SCHEMA = f"""create table {WEEK_TABLE} (network text not null, target text not null,
    job text not null, location text not null, week integer not null, metric text not null,
    bucket integer not null, n integer not null,
    primary key (network, target, job, location, metric, bucket, week)) without rowid"""


def week_of(day: int) -> int:
    """The UTC week (Monday to Sunday) a day number falls in: day 0, 1970-01-01, was a
    Thursday, so week 0 is its Monday-to-Sunday week and week w starts on day 7w - 3."""
    return (day + 3) // 7


def week_start(week: int) -> int:
    return 7 * week - 3


def bucket(x: float) -> int:
    return ZERO_BUCKET if x <= 0 else math.floor(math.log(x) / LN_GAMMA)


def bucket_value(b: int) -> float:
    """The value a bucket stands for: its geometric middle (0.0 for the zero bucket)."""
    return 0.0 if b == ZERO_BUCKET else GAMMA ** (b + 0.5)


def create_tables(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement)
    create_weekly(conn)
    conn.execute(IGNORED_SCHEMA)


def create_weekly(conn: sqlite3.Connection) -> None:
    """Create the weekly histograms and fill them from the daily ones (folded before the
    weekly tier existed); nothing if they exist. One step (a savepoint, nested in the caller's
    transaction if any): a weekly table is never there without what the daily one held."""
    if has_weekly(conn):
        return
    conn.execute("savepoint create_weekly")
    try:
        conn.execute(WEEK_SCHEMA)
        # (day + 3) / 7 is week_of for every day since 1970 (SQLite's / truncates, Python's //
        # floors: they differ below day -3 only)
        conn.execute(f"insert into {WEEK_TABLE} (network, target, job, location, metric, "
                     "bucket, week, n) select network, target, job, location, metric, bucket, "
                     "(day + 3) / 7, sum(n) from rollup_hist group by 1, 2, 3, 4, 5, 6, 7")
    except BaseException:
        conn.execute("rollback to create_weekly")
        raise
    finally:
        conn.execute("release create_weekly")


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}


def has_rollups(conn: sqlite3.Connection) -> bool:
    return set(TABLES) <= _tables(conn)


def has_weekly(conn: sqlite3.Connection) -> bool:
    """The store has the weekly tier (migration 006; a store read before it has not)."""
    return WEEK_TABLE in _tables(conn)


# -- writing ------------------------------------------------------------------------------

def rolled_rowid(conn: sqlite3.Connection) -> int:
    """The last rowid folded in (0: none). ValueError when the watermark is not a row number
    (an edited file): the rollups cannot be trusted, so readers read raw rows instead."""
    row = conn.execute("select rolled_rowid from rollup_state where id = 1").fetchone()
    if row is None:
        return 0
    if not isinstance(row[0], int) or row[0] < 0:
        raise ValueError(f"rollup_state.rolled_rowid is {str(row[0])[:40]!r}, not a row number")
    return row[0]


def usable(conn: sqlite3.Connection) -> bool:
    """The file has rollups a reader can trust: the tables and a watermark that is a row
    number."""
    if not has_rollups(conn):
        return False
    try:
        rolled_rowid(conn)
    except ValueError:
        return False
    return True


class Folder:
    """What the store's writer folds in as it inserts: aggregates of the results it wrote
    (rowids first..last), written to the rollups with the new watermark in one transaction.

    Aggregating the ProbeResults in memory costs a few microseconds a row; re-reading them
    with SQL GROUP BY costs several times that. If the watermark is not where this folder
    starts (rows came from elsewhere, or a crash lost a folder), `write` falls back to
    `refresh`, which re-reads exactly the rows not folded yet."""

    def __init__(self) -> None:
        self.runs: dict[tuple[Any, ...], list[Any]] = {}
        self.hist: dict[tuple[Any, ...], int] = {}
        self.nodes: set[tuple[Any, ...]] = set()
        self.passed: dict[tuple[Any, ...], int] = {}  # rows out of domain: see IGNORED_TABLE
        self.first_rowid: int | None = None
        self.last_rowid: int | None = None

    def clear(self) -> None:
        """Forget everything folded so far (written, or to be re-read by refresh)."""
        self.runs, self.hist, self.nodes, self.passed = {}, {}, set(), {}
        self.first_rowid = self.last_rowid = None

    def __len__(self) -> int:
        if self.first_rowid is None or self.last_rowid is None:
            return 0
        return self.last_rowid - self.first_rowid + 1

    def add(self, results: Sequence[Any], first_rowid: int, last_rowid: int) -> None:
        """`results` (ProbeResults) were inserted as rowids first_rowid..last_rowid."""
        if self.last_rowid is not None and first_rowid != self.last_rowid + 1:
            self.first_rowid = None  # not contiguous: let refresh() re-read them all
        if self.first_rowid is None and self.last_rowid is None:
            self.first_rowid = first_rowid
        self.last_rowid = last_rowid
        runs, hist, nodes = self.runs, self.hist, self.nodes
        get = hist.get
        done = COMPLETED_OUTCOMES
        log, floor = math.log, math.floor
        for r in results:
            t = r.started_at
            day = int(t // DAY_S)
            net, tgt, job, loc = r.network, r.target, r.job, r.location or ""
            outcome = r.outcome
            out = r.output_tokens or 0
            key = (net, tgt, job, loc, day, outcome.value)
            entry = runs.get(key)
            if entry is None:
                runs[key] = [1, out, r.input_tokens or 0, t, t]
            else:
                entry[0] += 1
                entry[1] += out
                entry[2] += r.input_tokens or 0
                if t < entry[3]:
                    entry[3] = t
                elif t > entry[4]:
                    entry[4] = t
            v = r.ttft_s
            if v is not None:
                k = (net, tgt, job, loc, "ttft",
                     floor(log(v) / LN_GAMMA) if v > 0 else ZERO_BUCKET, day)
                hist[k] = get(k, 0) + 1
            if outcome in done:
                v = r.duration_s
                if v is not None:
                    k = (net, tgt, job, loc, "e2e",
                         floor(log(v) / LN_GAMMA) if v > 0 else ZERO_BUCKET, day)
                    hist[k] = get(k, 0) + 1
                v = r.tokens_per_s
                if v is not None:
                    k = (net, tgt, job, loc, "tps",
                         floor(log(v) / LN_GAMMA) if v > 0 else ZERO_BUCKET, day)
                    hist[k] = get(k, 0) + 1
            if r.node:
                nodes.add((net, tgt, job, loc, day, r.node))

    def write(self, conn: sqlite3.Connection, _expected: int | None = None,
              ignored: Ignored | None = None) -> None:
        """Upsert the aggregates and move the watermark, in one transaction; then empty."""
        if self.last_rowid is None:
            return
        if not {*TABLES, WEEK_TABLE, IGNORED_TABLE} <= _tables(conn):
            create_tables(conn)
        if _expected is None and (self.first_rowid is None
                                  or rolled_rowid(conn) != self.first_rowid - 1):
            self.clear()
            refresh(conn, ignored)
            return
        with conn:
            conn.executemany(
                "insert into rollup_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "on conflict do update set runs = runs + excluded.runs, "
                "output_tokens = output_tokens + excluded.output_tokens, "
                "input_tokens = input_tokens + excluded.input_tokens, "
                "first_at = min(first_at, excluded.first_at), "
                "last_at = max(last_at, excluded.last_at)",
                [(*k, *v) for k, v in self.runs.items()])
            conn.executemany(
                "insert into rollup_hist (network, target, job, location, metric, bucket, day, "
                "n) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict do update set n = n + excluded.n",
                [(*k, n) for k, n in self.hist.items()])
            conn.executemany(
                f"insert into {WEEK_TABLE} (network, target, job, location, metric, bucket, "
                "week, n) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict do update "
                "set n = n + excluded.n", [(*k, n) for k, n in self._weekly().items()])
            conn.executemany("insert or ignore into rollup_nodes values (?, ?, ?, ?, ?, ?)",
                             list(self.nodes))
            conn.executemany(f"insert into {IGNORED_TABLE} values (?, ?, ?, ?, ?, ?, ?) "
                             "on conflict do update set n = n + excluded.n",
                             [(*k, n) for k, n in self.passed.items()])
            conn.execute("insert into rollup_state (id, rolled_rowid) values (1, ?) "
                         "on conflict (id) do update set rolled_rowid = excluded.rolled_rowid",
                         [self.last_rowid])
        self.clear()

    def _weekly(self) -> dict[tuple[Any, ...], int]:
        """The folded histograms summed per week (the key's last field, day, made a week)."""
        weekly: dict[tuple[Any, ...], int] = {}
        get = weekly.get
        for (*series, day), n in self.hist.items():
            k = (*series, week_of(day))
            weekly[k] = get(k, 0) + n
        return weekly


def refresh(conn: sqlite3.Connection, ignored: Ignored | None = None) -> int:
    """Fold every row added since the last refresh into the rollups; rowids folded in.
    Rows are read back and folded like the writer folds them (2x faster than SQL GROUP BY
    here); each chunk commits with its new watermark, so a crash never counts a row twice.
    A row with a value out of domain (monitor.storage.domain) is passed over, counted in
    `ignored`: raw reads set it aside the same way."""
    if not has_rollups(conn):
        create_tables(conn)
    done = rolled_rowid(conn)
    top = conn.execute("select max(rowid) from probe_results").fetchone()[0] or 0
    folded = 0
    while done < top:
        hi = min(done + REFRESH_CHUNK, top)
        folder = Folder()
        rows = conn.execute(f"select {', '.join(_ROW_COLUMNS)}, {_PROBLEM}, {_DAY} "
                            "from probe_results where rowid > ? and rowid <= ?", [done, hi])
        kept = []
        for row in rows:
            if row[-2] is None:
                kept.append(_Row(*row[:-2]))
                continue
            if ignored is not None:
                ignored.add(row[-2])
            k = (*row[1:5], row[-1], row[-2])  # network, target, job, location, day, column
            folder.passed[k] = folder.passed.get(k, 0) + 1
        folder.add(kept, done + 1, hi)
        folder.write(conn, _expected=done)
        folded += hi - done
        done = hi
    return folded


class _Row:
    """The columns a fold needs, read back from probe_results (ProbeResult's field names)."""

    __slots__ = ("duration_s", "input_tokens", "job", "location", "network", "node",
                 "outcome", "output_tokens", "started_at", "target", "tokens_per_s", "ttft_s")

    def __init__(self, started_at: float, network: str, target: str, job: str,
                 location: str | None, outcome: str, output_tokens: int | None,
                 input_tokens: int | None, ttft_s: float | None, duration_s: float | None,
                 tokens_per_s: float | None, node: str | None) -> None:
        self.started_at, self.network, self.target, self.job = started_at, network, target, job
        self.location, self.outcome = location, _OUTCOMES.get(outcome) or _Other(outcome)
        self.output_tokens, self.input_tokens = output_tokens, input_tokens
        self.ttft_s, self.duration_s, self.tokens_per_s = ttft_s, duration_s, tokens_per_s
        self.node = node


_ROW_COLUMNS = ("started_at", "network", "target", "job", "location", "outcome",
                "output_tokens", "input_tokens", "ttft_s", "duration_s", "tokens_per_s", "node")
_PROBLEM = domain.problem_sql(_ROW_COLUMNS)
_DAY = (f"(case when {domain.column_problem_sql('started_at')} then -1 "
        f"else cast(started_at / {DAY_S} as integer) end)")


class _Other(str):
    """An outcome string this version does not know: folded under its own name."""

    @property
    def value(self) -> str:
        return str(self)


_OUTCOMES = {o.value: o for o in Outcome}


# -- reading back -------------------------------------------------------------------------
# What monitor.analysis.queries merges with raw rows. `days` selects by UTC day number (its
# since/until are days), `skip_days` are days the caller reads raw instead.

RolledKey = tuple[str, str, str, str]  # (network, target, job, location), the order of KEY


def _where(days: RunFilter, skip_days: Collection[int]) -> tuple[str, list[object]]:
    where, params = days.where("day")
    if skip_days:
        where += f" and day not in ({', '.join(str(int(d)) for d in sorted(skip_days))})"
    return where, params


def _whole(column: str, lo: float, hi: float) -> str:
    return f"typeof({column}) = 'integer' and {column} between {lo!r} and {hi!r}"


_KEY_TEXT = " and ".join(f"typeof({k}) = 'text'" for k in KEY)
MAX_BUCKET = 10_000  # 1.01**10000: far past any timing or rate; the zero bucket aside
# What a rollup row must hold to be read (a hand-edited or foreign row is set aside, counted).
SANE = {
    "rollup_runs": f"({_KEY_TEXT} and {_whole('day', domain.MIN_DAY, domain.MAX_DAY)} "
                   f"and typeof(outcome) = 'text' and {_whole('runs', 0, domain.MAX_COUNT)} "
                   f"and {_whole('output_tokens', 0, domain.MAX_COUNT)} "
                   f"and {_whole('input_tokens', 0, domain.MAX_COUNT)} "
                   f"and typeof(first_at) in ('integer', 'real') "
                   f"and typeof(last_at) in ('integer', 'real') "
                   f"and first_at between {domain.MIN_TIME_S!r} and {domain.MAX_TIME_S!r} "
                   f"and last_at between first_at and {domain.MAX_TIME_S!r})",
    "rollup_hist": f"({_KEY_TEXT} and {_whole('day', domain.MIN_DAY, domain.MAX_DAY)} "
                   f"and metric in {METRICS!r} and (bucket = {ZERO_BUCKET} or "
                   f"{_whole('bucket', -MAX_BUCKET, MAX_BUCKET)}) "
                   f"and {_whole('n', 0, domain.MAX_COUNT)})",
    WEEK_TABLE: f"({_KEY_TEXT} and {_whole('week', domain.MIN_DAY // 7, domain.MAX_DAY // 7 + 1)} "
                f"and metric in {METRICS!r} and (bucket = {ZERO_BUCKET} or "
                f"{_whole('bucket', -MAX_BUCKET, MAX_BUCKET)}) "
                f"and {_whole('n', 0, domain.MAX_COUNT)})",
    "rollup_nodes": f"({_KEY_TEXT} and {_whole('day', domain.MIN_DAY, domain.MAX_DAY)} "
                    "and typeof(node) = 'text')",
}


def _count_insane(conn: sqlite3.Connection, table: str, where: str, params: list[object],
                  ignored: Ignored | None) -> None:
    """Count the rows of `table` that `where` selects but SANE sets aside, into `ignored`."""
    if ignored is None:
        return
    n = conn.execute(f"select count(*) from {table} where {where} and not {SANE[table]}",
                     params).fetchone()[0]
    if n:
        ignored.add(table, int(n))


def read_runs(conn: sqlite3.Connection, days: RunFilter, skip_days: Collection[int] = (),
              ignored: Ignored | None = None
              ) -> Iterator[tuple[RolledKey, str, int, int, int, float, float]]:
    """(key, outcome, runs, output tokens, input tokens, first start, last start) per key and
    outcome over the selected days (rows out of domain counted in `ignored`, not read)."""
    where, params = _where(days, skip_days)
    _count_insane(conn, "rollup_runs", where, params, ignored)
    where += f" and {SANE['rollup_runs']}"
    for net, tgt, job, loc, outcome, runs, out, inp, first, last in conn.execute(
            "select network, target, job, location, outcome, sum(runs), sum(output_tokens), "
            "sum(input_tokens), min(first_at), max(last_at) "
            f"from rollup_runs where {where} group by 1, 2, 3, 4, 5", params):
        yield (net, tgt, job, loc), outcome, runs, out, inp, first, last


def read_hist(conn: sqlite3.Connection, days: RunFilter, skip_days: Collection[int] = (),
              ignored: Ignored | None = None) -> Iterator[tuple[RolledKey, str, int, int]]:
    """(key, metric, bucket, runs) over the selected days; metric is one of METRICS. The whole
    weeks among the days come from the weekly tier, the others from the daily one, so a key,
    metric and bucket may come twice (the caller adds them up)."""
    if has_weekly(conn):
        selections = split_weeks(days, skip_days)
    else:
        selections = [("rollup_hist", *_where(days, skip_days))]
    for table, where, params in selections:
        _count_insane(conn, table, where, params, ignored)
        where = f"{where} and {SANE[table]}"
        for net, tgt, job, loc, metric, b, n in conn.execute(
                "select network, target, job, location, metric, bucket, sum(n) "
                f"from {table} where {where} group by 1, 2, 3, 4, 5, 6", params):
            yield (net, tgt, job, loc), metric, b, n


def split_weeks(days: RunFilter, skip_days: Collection[int] = ()
                ) -> list[tuple[str, str, list[object]]]:
    """(table, where, params) for the selected days less skip_days: the whole weeks inside
    [days.since, days.until) that hold no skipped day from the weekly tier, the other days
    (the edges, the rest of a skipped day's week) from the daily one; a table with nothing to
    read is left out."""
    w0 = None if days.since is None else week_of(int(days.since) + 6)  # first whole week
    w1 = None if days.until is None else week_of(int(days.until))  # past the last whole week
    if w0 is not None and w1 is not None and w0 >= w1:
        return [("rollup_hist", *_where(days, skip_days))]
    skip_weeks = sorted({week_of(int(d)) for d in skip_days})
    week_where, week_params = replace(days, since=w0, until=w1).where("week")
    if skip_weeks:
        week_where += f" and week not in ({', '.join(str(w) for w in skip_weeks)})"
    others = [f"day in ({', '.join(str(week_start(w) + i) for w in skip_weeks for i in range(7))})"
              ] if skip_weeks else []
    if w0 is not None:
        others.append(f"day < {week_start(w0)}")
    if w1 is not None:
        others.append(f"day >= {week_start(w1)}")
    out = [(WEEK_TABLE, week_where, week_params)]
    if others:
        day_where, day_params = _where(days, skip_days)
        out.append(("rollup_hist", f"{day_where} and ({' or '.join(others)})", day_params))
    return out


def read_nodes(conn: sqlite3.Connection, days: RunFilter, skip_days: Collection[int] = (),
               ignored: Ignored | None = None) -> Iterator[tuple[RolledKey, str]]:
    """(key, node) for every distinct node seen over the selected days."""
    where, params = _where(days, skip_days)
    _count_insane(conn, "rollup_nodes", where, params, ignored)
    where += f" and {SANE['rollup_nodes']}"
    for net, tgt, job, loc, node in conn.execute(
            "select distinct network, target, job, location, node "
            f"from rollup_nodes where {where}", params):
        yield (net, tgt, job, loc), node


def read_ignored(conn: sqlite3.Connection, days: RunFilter, ignored: Ignored,
                 skip_days: Collection[int] = ()) -> None:
    """Count into `ignored` the rows the fold passed over on the selected days (and, for a
    read without a start, those with no usable start time)."""
    if IGNORED_TABLE not in _tables(conn):
        return
    where, params = _where(days, skip_days)
    for column, n in conn.execute(f"select col, sum(n) from {IGNORED_TABLE} where {where} "
                                  "group by 1", params):
        ignored.add(str(column), int(n or 0))


def read_daily(conn: sqlite3.Connection, days: RunFilter, skip_days: Collection[int] = (),
               ignored: Ignored | None = None) -> Iterator[tuple[str, int, str, int]]:
    """(network, day, outcome, runs) over the selected days: the per-day series of a report
    (rows out of domain are not read, but counted in `ignored` when given)."""
    where, params = _where(days, skip_days)
    _count_insane(conn, "rollup_runs", where, params, ignored)
    where += f" and {SANE['rollup_runs']}"
    yield from conn.execute(
        "select network, day, outcome, sum(runs) "
        f"from rollup_runs where {where} group by 1, 2, 3", params)


def rolled_networks(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("select distinct network from rollup_runs")]
