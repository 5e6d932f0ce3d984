"""The SQLite store of probe runs (sqlite-utils): batched writes, named migrations, queries.

One row per run in `probe_results` with every ProbeResult field plus `location` and
`scheduled_at`. WAL mode with synchronous=NORMAL: a committed batch survives a process crash.

Writes never block the event loop: `Store.add()` appends to a buffer; a writer thread commits
the buffer every `flush_interval_s` (0.5 s) or as soon as `batch_rows` rows wait. So a SIGKILL
loses at most the results that finished in the last flush interval plus the batch being
committed: under 1 s of results (docs/operations.md). `close()` writes everything.

Reads: `read_rows`/`select_rows` for monitor.analysis.queries (file by file, read-only), and
small query helpers (`ReadStore`), also over several store files at once (`open_stores`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import operator
import sqlite3
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.core.result import COMPLETED_OUTCOMES, Outcome, ProbeResult
from monitor.storage import equality, rollups
from monitor.storage.filters import RunFilter

log = logging.getLogger(__name__)

TABLE = "probe_results"
MIGRATIONS_TABLE = "_migrations"
FLUSH_INTERVAL_S = 0.5
BATCH_ROWS = 5000
MAX_BUFFERED = 1_000_000  # rows kept while the disk refuses writes, then the oldest are dropped
ROLLUP_EVERY_S = 5.0  # the writer writes its folded rollups (and their watermark) this often

_FIELDS = tuple(f.name for f in dataclasses.fields(ProbeResult))
_TYPES: dict[str, type] = {
    "network": str, "target": str, "job": str, "model": str, "outcome": str, "kind": str,
    "prompt_hash": str, "location": str, "error": str, "token_source": str,
    "served_model": str, "system_fingerprint": str, "node": str, "details": str,
    "started_at": float, "scheduled_at": float, "connect_s": float, "ttfb_s": float,
    "ttft_s": float, "duration_s": float, "tokens_per_s": float, "max_gap_s": float,
    "queue_s": float, "retry_after_s": float,
    "job_version": int, "http_status": int, "output_tokens": int, "input_tokens": int,
    "bytes": int, "lagged": int,
    "dns_s": float, "tcp_s": float, "tls_s": float, "ip_version": int, "tls_version": str,
    "tls_cipher": str, "tls_cert_expiry": float,
}
assert set(_TYPES) == set(_FIELDS), "every ProbeResult field needs a column type"
COLUMNS: tuple[str, ...] = _FIELDS
NOT_NULL = {"network", "target", "job", "model", "outcome", "started_at"}


# -- schema: named migrations, applied once each, recorded in _migrations ------------------

def _m001_create_probe_results(db: sqlite_utils.Database) -> None:
    table = db.table(TABLE)
    table.create({name: _TYPES[name] for name in _FIELDS}, not_null=NOT_NULL, if_not_exists=True)
    table.create_index(["network", "started_at"], if_not_exists=True)
    table.create_index(["job", "started_at"], if_not_exists=True)


def _m002_create_rollups(db: sqlite_utils.Database) -> None:
    # Daily pre-aggregates for reports over long periods (monitor/storage/rollups.py); the
    # writer folds rows into them as it goes, and folds an older store's rows on first use.
    rollups.create_tables(db.conn)


def _m003_connection_columns(db: sqlite_utils.Database) -> None:
    # Connection phases and TLS facts (issue 19). A store created since has them from 001.
    table = db.table(TABLE)
    have = table.columns_dict
    for name in ("dns_s", "tcp_s", "tls_s", "ip_version", "tls_version", "tls_cipher",
                 "tls_cert_expiry"):
        if name not in have:
            table.add_column(name, _TYPES[name])


def _m004_equality_verdicts(db: sqlite_utils.Database) -> None:
    # Model equality tests (issue 17): one row per test (monitor/storage/equality.py).
    equality.create_table(db.conn)


CAPACITY_RUNS = "capacity_runs"


def _m005_capacity_tables(db: sqlite_utils.Database) -> None:
    # Capacity ladders (issue 15; read and written by monitor/storage/capacity.py). Their runs
    # are ordinary runs in a table of their own, `capacity_runs`, linked by ladder_id: a
    # ladder loads the network on purpose, so no canary read (SLA, rollups, reports, status)
    # can ever count them. A migration that adds a probe_results column adds it here too.
    db.execute("""create table if not exists capacity_ladders (id text primary key,
        network text not null, target text not null, job text not null, job_version integer,
        model text, location text, started_at float not null, elapsed_s float,
        stopped text not null, detail text, requests integer, spend_usd float,
        retry_after_s float, sustained integer, knee integer, criteria text)""")
    db.execute("create index if not exists capacity_ladders_network_started "
               "on capacity_ladders (network, started_at)")
    db.execute("""create table if not exists capacity_steps (ladder_id text not null,
        streams integer not null, started_at float, elapsed_s float, runs integer,
        outcomes text, output_tokens integer, tokens_per_s float, stream_tps_p50 float,
        ttft_p50_s float, ttft_p95_s float, error_rate float, disconnect_rate float,
        held integer, broke text, primary key (ladder_id, streams)) without rowid""")
    table = db.table(CAPACITY_RUNS)
    table.create({"ladder_id": str, "streams": int, **{name: _TYPES[name] for name in _FIELDS}},
                 not_null={"ladder_id", "streams", *NOT_NULL}, if_not_exists=True)
    table.create_index(["ladder_id"], if_not_exists=True)


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("001_create_probe_results", _m001_create_probe_results),
    ("002_create_rollups", _m002_create_rollups),
    ("003_connection_columns", _m003_connection_columns),
    ("004_equality_verdicts", _m004_equality_verdicts),
    ("005_capacity_tables", _m005_capacity_tables),
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations this file has not seen, each in its own transaction."""
    db.execute(f"create table if not exists {MIGRATIONS_TABLE} "
               "(name text primary key, applied_at float not null)")
    done = {row[0] for row in db.execute(f"select name from {MIGRATIONS_TABLE}").fetchall()}
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with db.conn:
            step(db)
            db.execute(f"insert into {MIGRATIONS_TABLE} (name, applied_at) values (?, ?)",
                       [name, time.time()])
        applied.append(name)
    return applied


def schema_version(db: sqlite_utils.Database) -> int:
    if not db[MIGRATIONS_TABLE].exists():
        return 0
    return int(db.execute(f"select count(*) from {MIGRATIONS_TABLE}").fetchone()[0])


def _connect(path: str | Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), check_same_thread=True, timeout=30)
    db = sqlite_utils.Database(conn)
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=normal")
    return db


# -- rows <-> results ------------------------------------------------------------------

def to_row(r: ProbeResult) -> tuple[Any, ...]:
    row = list(_get_fields(r))
    row[_OUTCOME] = r.outcome.value
    row[_DETAILS] = _details_json(r.details) if r.details else "{}"
    row[_LAGGED] = int(r.lagged)
    return tuple(row)


_get_fields = operator.attrgetter(*_FIELDS)
# json.dumps(details, separators=(",", ":"), default=str) without building an encoder per row
_details_json = json.JSONEncoder(separators=(",", ":"), default=str).encode


_OUTCOME = _FIELDS.index("outcome")
_DETAILS = _FIELDS.index("details")
_LAGGED = _FIELDS.index("lagged")


def from_row(row: sqlite3.Row | dict[str, Any]) -> ProbeResult:
    values = {name: row[name] for name in _FIELDS}
    values["outcome"] = Outcome(values["outcome"])
    values["details"] = json.loads(values["details"] or "{}")
    values["lagged"] = bool(values["lagged"])
    values["error"] = values["error"] or ""
    values["prompt_hash"] = values["prompt_hash"] or ""
    values["location"] = values["location"] or ""
    values["bytes"] = values["bytes"] or 0
    return ProbeResult(**values)


# -- reading -------------------------------------------------------------------------

class ReadStore:
    """Query helpers over a `probe_results` table (a file, or several merged by open_stores)."""

    def __init__(self, db: sqlite_utils.Database, *, sources: Sequence[str] = ()) -> None:
        self.db = db
        self.sources = tuple(sources)

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
        cursor = self._query(f"select {', '.join(_FIELDS)} from {TABLE} where {where} "
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
        if _TYPES.get(column) is not float:
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


def open_store(path: str | Path) -> ReadStore:
    """One store file, read-only."""
    return open_stores([path])


def open_stores(paths: Sequence[str | Path]) -> ReadStore:
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
        selects.append(f"select {_select_list(conn, _FIELDS, f's{i}.')} from s{i}.{TABLE}")
    conn.execute(f"create temp view {TABLE} as {' union all '.join(selects)}")
    return ReadStore(sqlite_utils.Database(conn), sources=[str(p) for p in paths])


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to one store file (FileNotFoundError if there is none)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such store file")
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)


def select_rows(conn: sqlite3.Connection, columns: Sequence[str], runs: RunFilter
                ) -> Iterator[dict[str, Any]]:
    """Selected columns of the runs `runs` selects, as dicts (sqlite3.DatabaseError for a file
    that is not a store)."""
    unknown = [c for c in columns if c not in _FIELDS]
    if unknown:
        raise ValueError(f"unknown columns {unknown}")
    where, params = runs.where()
    cursor = conn.execute(f"select {_select_list(conn, columns)} from {TABLE} where {where}",
                          params)
    for values in cursor:
        yield dict(zip(columns, values, strict=True))


def read_rows(paths: Sequence[str | Path], columns: Sequence[str], *,
              since: float | None = None, until: float | None = None,
              networks: Sequence[str] = (), jobs: Sequence[str] = ()
              ) -> Iterator[dict[str, Any]]:
    """Selected columns of the runs in each store file, file after file, each opened read-only
    (no limit on the number of files, unlike open_stores). FileNotFoundError for a missing
    file, sqlite3.DatabaseError for a file that is not a store."""
    runs = RunFilter(since=since, until=until, networks=networks, jobs=jobs)
    for path in paths:
        conn = open_readonly(path)
        try:
            yield from select_rows(conn, columns, runs)
        finally:
            conn.close()


def _select_list(conn: sqlite3.Connection, columns: Sequence[str], schema: str = "") -> str:
    """`columns` for a select, NULL for those an older store file (opened read-only, so not
    migrated) does not have yet."""
    have = {row[1] for row in conn.execute(f"pragma {schema}table_info({TABLE})")}
    if not have:  # not a store: let the select fail with sqlite's own message
        return ", ".join(columns)
    return ", ".join(c if c in have else f"null as {c}" for c in columns)


# -- writing -------------------------------------------------------------------------

Wait = Callable[[threading.Event, float], bool]


class Store(ReadStore):
    """The writable store of one agent. `add()` is non-blocking; a writer thread commits.

    Reads (`self.db`, the query helpers) use a connection of the creating thread and see every
    committed batch; call `flush()` first to see the latest results. The writer paces itself
    with `wait(event, seconds)` (threading.Event.wait: until the event is set or the time is
    up) and `clock`; tests inject both.
    """

    def __init__(self, path: str | Path, *, flush_interval_s: float = FLUSH_INTERVAL_S,
                 batch_rows: int = BATCH_ROWS, wait: Wait = threading.Event.wait,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = _connect(self.path)
        migrate(db)
        super().__init__(db, sources=[str(self.path)])
        self.flush_interval_s = flush_interval_s
        self.batch_rows = batch_rows
        self._buffer: deque[ProbeResult] = deque()
        self._wake = threading.Event()  # a batch is full, a flush is asked for, or closing
        self._stopping = threading.Event()
        self._wait = wait
        self._clock = clock
        self._cond = threading.Condition()
        self._added = 0
        self._written = 0
        self.dropped = 0
        self.write_errors = 0
        self.flushes = 0
        self._closed = False
        self._insert = (f"insert into {TABLE} ({', '.join(_FIELDS)}) "
                        f"values ({', '.join('?' * len(_FIELDS))})")
        self._folder = rollups.Folder()  # the writer's, for the rows it inserts
        self._thread = threading.Thread(target=self._writer, name="store-writer", daemon=True)
        self._thread.start()

    # the sink side

    def on_result(self, result: ProbeResult) -> None:
        self.add(result)

    def add(self, result: ProbeResult) -> None:
        """Queue one result for the writer (never blocks on disk)."""
        if self._closed:
            raise RuntimeError("store is closed")
        self._buffer.append(result)
        self._added += 1
        if len(self._buffer) >= self.batch_rows:
            self._wake.set()

    def add_many(self, results: Iterable[ProbeResult]) -> None:
        for r in results:
            self.add(r)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    @property
    def written(self) -> int:
        return self._written

    @property
    def is_open(self) -> bool:
        return not self._closed

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until every result added so far is committed; False on timeout."""
        target = self._added
        self._wake.set()
        with self._cond:
            return self._cond.wait_for(lambda: self._written + self.dropped >= target
                                       or not self._thread.is_alive(), timeout)

    def close(self) -> None:
        """Commit everything still buffered, stop the writer and close the files."""
        if self._closed:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join()
        self._closed = True
        self.db.close()

    # the writer thread

    def _writer(self) -> None:
        db = _connect(self.path)
        folded_at = self._clock()
        try:
            while True:
                self._wait(self._wake, self.flush_interval_s)
                self._wake.clear()
                closing = self._stopping.is_set()
                self._write_pending(db)
                if closing or self._clock() - folded_at >= ROLLUP_EVERY_S:
                    self._write_rollups(db)
                    folded_at = self._clock()
                if closing and (not self._buffer or self.write_errors > 3):
                    if self._buffer:
                        log.error("store %s: closing with %d results unwritten", self.path,
                                  len(self._buffer))
                    break
        finally:
            db.close()
            with self._cond:
                self._cond.notify_all()

    def _write_pending(self, db: sqlite_utils.Database) -> None:
        while self._buffer:
            batch: list[ProbeResult] = []
            while self._buffer and len(batch) < self.batch_rows:
                batch.append(self._buffer.popleft())
            try:
                with db.conn:
                    first = (db.conn.execute(f"select max(rowid) from {TABLE}").fetchone()[0]
                             or 0) + 1
                    db.conn.executemany(self._insert, [to_row(r) for r in batch])
            except sqlite3.Error as exc:
                self.write_errors += 1
                log.error("store %s: writing %d results failed (%s); will retry",
                          self.path, len(batch), exc)
                self._buffer.extendleft(reversed(batch))
                overflow = len(self._buffer) - MAX_BUFFERED
                for _ in range(max(overflow, 0)):
                    self._buffer.popleft()
                    self.dropped += 1
                self._wait(self._stopping, self.flush_interval_s)  # then retry
                return
            self._folder.add(batch, first, first + len(batch) - 1)
            self.flushes += 1
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()

    def _write_rollups(self, db: sqlite_utils.Database) -> None:
        """Write what the writer folded; on failure the rows stay unfolded and the next write
        re-reads them (rollups.refresh): reports read unfolded rows raw meanwhile."""
        try:
            self._folder.write(db.conn)
        except sqlite3.Error as exc:
            log.error("store %s: updating rollups failed (%s); will catch up", self.path, exc)
            self._folder = rollups.Folder()


def integrity_ok(path: str | Path) -> bool:
    """`PRAGMA integrity_check` says ok."""
    conn = open_readonly(path)
    try:
        return bool(conn.execute("pragma integrity_check").fetchone()[0] == "ok")
    finally:
        conn.close()
