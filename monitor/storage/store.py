"""The SQLite store of probe runs (sqlite-utils): batched writes, named migrations, queries.

One row per run in `probe_results` with every ProbeResult field plus `location` and
`scheduled_at`. WAL mode with synchronous=NORMAL: a committed batch survives a process crash.

Writes never block the event loop: `Store.add()` appends to a buffer; a writer thread commits
the buffer every `flush_interval_s` (0.5 s) or as soon as `batch_rows` rows wait. So a SIGKILL
loses at most the results that finished in the last flush interval plus the batch being
committed: under 1 s of results (docs/operations.md). `close()` writes everything, or, while
the store fails (disk full, read-only or locked file), gives up after `shutdown_timeout_s` and
says how many results were lost. Until then a failing store holds at most `buffer_limit`
results in memory (`StoreHealth`, read by /readyz and /metrics).

Reads: `read_rows`/`select_rows` for monitor.analysis.queries (file by file, read-only), and
small query helpers (`ReadStore`), also over several store files at once (`open_stores`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import operator
import os
import sqlite3
import threading
import time
import types
import typing
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.core.result import COMPLETED_OUTCOMES, Outcome, ProbeResult
from monitor.storage import contract, domain, equality, fingerprint, quality, rollups
from monitor.storage.domain import Ignored
from monitor.storage.filters import RunFilter

log = logging.getLogger(__name__)

TABLE = "probe_results"
MIGRATIONS_TABLE = "_migrations"
FLUSH_INTERVAL_S = 0.5
BATCH_ROWS = 5000
ROLLUP_EVERY_S = 5.0  # the writer writes its folded rollups (and their watermark) this often
# While the store cannot write: results held in memory (about 0.6-1 KB each, so ~50 MB at
# most), then the oldest are dropped; the config's `store.buffer_results`.
BUFFER_LIMIT = 50_000
SHUTDOWN_TIMEOUT_S = 5.0  # close() retries a failing store this long, then gives up
MAX_RETRY_S = 5.0  # a failing store is retried with a backoff up to this interval
WRITER_BUSY_TIMEOUT_S = 1.0  # a locked database fails an attempt after this (then retried)
FAILURE_LOG_EVERY_S = 60.0  # while failing, one log line a minute

_FIELDS = tuple(f.name for f in dataclasses.fields(ProbeResult))


def _column_type(annotation: Any) -> type:
    """A ProbeResult field's column type: its own (or its optional's) int, float or str;
    a bool as int, an enum by its str value, a mapping as JSON text."""
    kind = annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (kind,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(kind) or kind
    if origin is bool:
        return int
    for column in (int, float, str):
        if isinstance(origin, type) and issubclass(origin, column):
            return column
    if origin is dict:
        return str  # JSON (to_row)
    raise TypeError(f"ProbeResult field of type {annotation!r} has no column type")


_TYPES: dict[str, type] = {name: _column_type(hint) for name, hint in
                           typing.get_type_hints(ProbeResult).items() if name in _FIELDS}
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
    # Connection phases and TLS facts. A store created since has them from 001.
    table = db.table(TABLE)
    have = table.columns_dict
    for name in ("dns_s", "tcp_s", "tls_s", "ip_version", "tls_version", "tls_cipher",
                 "tls_cert_expiry"):
        if name not in have:
            table.add_column(name, _TYPES[name])


def _m004_equality_verdicts(db: sqlite_utils.Database) -> None:
    # Model equality tests: one row per test (monitor/storage/equality.py).
    equality.create_table(db.conn)


CAPACITY_RUNS = "capacity_runs"


def _m005_capacity_tables(db: sqlite_utils.Database) -> None:
    # Capacity ladders (read and written by monitor/storage/capacity.py). Their runs
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


def _m006_weekly_rollups(db: sqlite_utils.Database) -> None:
    # Histograms per UTC week next to the daily ones, filled from the daily ones:
    # about 10 s for a store of 10M runs, once. A store created since has them from 002.
    rollups.create_weekly(db.conn)


def _m007_quality_tables(db: sqlite_utils.Database) -> None:
    # Quality audits: one row per audit and comparison, one per item and side answered
    # (monitor/storage/quality.py), apart from the canaries' runs.
    quality.create_tables(db.conn)
def _m008_contract_tables(db: sqlite_utils.Database) -> None:
    # The contract checks: tool-call grades and parameter cells (monitor/storage/contract.py),
    # in tables of their own so that no canary read counts their requests.
    contract.create_tables(db.conn)
def _m009_fingerprint_tables(db: sqlite_utils.Database) -> None:
    # Fingerprints: border-input sets and one verdict a run (monitor/storage/fingerprint.py).
    fingerprint.create_tables(db.conn)


def _m010_rollup_ignored(db: sqlite_utils.Database) -> None:
    # Rows the rollups' fold passed over, a value out of domain (monitor.storage.domain): a
    # read of the rolled days still says how many rows it ignored.
    db.execute(rollups.IGNORED_SCHEMA)


def _m011_fingerprint_reference(db: sqlite_utils.Database) -> None:
    # Which reference each fingerprint run was compared with: a reference network sampled in
    # the same run, or NULL for its border set's stored reference (and for older rows).
    fingerprint.add_reference_column(db.conn)


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("001_create_probe_results", _m001_create_probe_results),
    ("002_create_rollups", _m002_create_rollups),
    ("003_connection_columns", _m003_connection_columns),
    ("004_equality_verdicts", _m004_equality_verdicts),
    ("005_capacity_tables", _m005_capacity_tables),
    ("006_weekly_rollups", _m006_weekly_rollups),
    ("007_quality_tables", _m007_quality_tables),
    ("008_contract_tables", _m008_contract_tables),
    ("009_fingerprint_tables", _m009_fingerprint_tables),
    ("010_rollup_ignored", _m010_rollup_ignored),
    ("011_fingerprint_reference", _m011_fingerprint_reference),
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


def _connect(path: str | Path, busy_timeout_s: float = 30.0) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), check_same_thread=True, timeout=busy_timeout_s)
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


def _storable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """`row` with what SQLite cannot hold replaced: an integer beyond 64 bits by NULL,
    another object by its text."""
    out: list[Any] = []
    for v in row:
        if isinstance(v, int) and not -(2**63) <= v < 2**63:
            v = None
        elif v is not None and not isinstance(v, int | float | str | bytes):
            v = str(v)
        out.append(v)
    return tuple(out)


# -- reading -------------------------------------------------------------------------

class ReadStore:
    """Query helpers over a `probe_results` table (a file, or several merged by open_stores)."""

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


def select_rows(conn: sqlite3.Connection, columns: Sequence[str], runs: RunFilter,
                ignored: Ignored | None = None) -> Iterator[dict[str, Any]]:
    """Selected columns of the runs `runs` selects, as dicts (sqlite3.DatabaseError for a file
    that is not a store). Rows with a value out of its column's domain (monitor.storage.domain)
    are left out and counted in `ignored`."""
    unknown = [c for c in columns if c not in _FIELDS]
    if unknown:
        raise ValueError(f"unknown columns {unknown}")
    have = _columns(conn)
    where, params = runs.where()
    problem = domain.problem_sql([c for c in columns if c in have])
    cursor = conn.execute(f"select {_select_list(conn, columns)}, {problem} from {TABLE} "
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
    for path in paths:
        conn = open_readonly(path)
        try:
            yield from select_rows(conn, columns, runs, ignored)
        finally:
            conn.close()


def _columns(conn: sqlite3.Connection, schema: str = "") -> set[str]:
    return {row[1] for row in conn.execute(f"pragma {schema}table_info({TABLE})")}


def _select_list(conn: sqlite3.Connection, columns: Sequence[str], schema: str = "") -> str:
    """`columns` for a select, NULL for those an older store file (opened read-only, so not
    migrated) does not have yet."""
    have = _columns(conn, schema)
    if not have:  # not a store: let the select fail with sqlite's own message
        return ", ".join(columns)
    missing = sorted(NOT_NULL - have)
    if missing:
        raise sqlite3.DatabaseError(f"its {TABLE} table has no column {', '.join(missing)}: "
                                    "a table of another program, not a depin-monitor store")
    return ", ".join(c if c in have else f"null as {c}" for c in columns)


# -- writing -------------------------------------------------------------------------

Wait = Callable[[threading.Event, float], bool]

# Kinds of SQLite failure that are the disk's or another process's, not a wrong path: the
# store starts anyway, holds results in memory and retries (docs/operations.md).
TRANSIENT = ("SQLITE_FULL", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_READONLY", "SQLITE_IOERR")


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """What /readyz, /metrics and the logs say about the store."""

    writable: bool  # the last write (or connection attempt) succeeded
    problem: str  # why not, e.g. "database or disk is full"; "" when writable
    failing_for_s: float  # since the first failed write of this episode (0 when writable)
    buffered: int  # results held in memory, not yet committed
    buffer_limit: int  # the bound on `buffered`; beyond it the oldest are dropped
    dropped: int  # results dropped because the buffer was full
    written: int  # results committed since the store opened
    write_errors: int  # failed write attempts since the store opened
    rollup_errors: int = 0  # rollup refreshes that raised (the results were stored anyway)
    rollup_problem: str = ""  # why the last refresh failed; "" once one succeeds

    def describe(self) -> str:
        """One line for /readyz and the logs."""
        state = ("writable" if self.writable else
                 f"failing for {self.failing_for_s:.0f} s ({self.problem})")
        return (f"store {state}; {self.buffered} results held in memory (limit "
                f"{self.buffer_limit}), {self.dropped} dropped")

    def rollup_note(self) -> str:
        """What /readyz adds while results are stored but the rollups are not updated: "" when
        they are."""
        if not self.rollup_problem:
            return ""
        return (f"store rollups not updated ({self.rollup_problem}; {self.rollup_errors} "
                "refreshes failed): every result is stored, reports read the rows raw")


def _transient(exc: sqlite3.Error, path: Path) -> bool:
    """A failure the disk may recover from, as opposed to a wrong path or a file that is not
    a store. A WAL store on a read-only filesystem cannot even be opened (its -shm file cannot
    be made): that one is transient too."""
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(TRANSIENT) or (name == "SQLITE_CANTOPEN" and _read_only_fs(path))


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _no_space(path: Path) -> bool:
    try:
        return os.statvfs(path.parent).f_bavail == 0
    except OSError:
        return False


def _problem(exc: BaseException, path: Path) -> str:
    """A short reason: SQLite's message ("database or disk is full"), or the OS error's, with
    the cause when SQLite's words hide it (a full disk often fails as "disk I/O error")."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).split("\n", 1)[0] or type(exc).__name__
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_CANTOPEN" and _read_only_fs(path):
        text += " (the filesystem is read-only)"
    elif name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")) and _no_space(path):
        text += " (no space left on the device)"
    return text


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`; None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class Store(ReadStore):
    """The writable store of one agent. `add()` never blocks; a writer thread commits.

    While the store cannot write (disk full, read-only or locked database, a deleted file),
    results wait in memory, at most `buffer_limit` of them: past the bound the oldest are
    dropped and counted (`dropped`). The writer retries with a backoff up to
    `MAX_RETRY_S`, reconnecting each time (a connection opened on a read-only file stays
    read-only), and writes what is held once the fault clears. It logs the first failure, then
    at most one line every `FAILURE_LOG_EVERY_S`, then the recovery. A file deleted or replaced
    under it is noticed before the next commit and a new one is made at the path.

    Reads (`self.db`, the query helpers) use a connection opened on first use, in the reading
    thread; they see every committed batch (call `flush()` first to see the latest results).
    The writer paces itself with `wait(event, seconds)` (threading.Event.wait) and `clock`;
    tests inject both.
    """

    def __init__(self, path: str | Path, *, flush_interval_s: float = FLUSH_INTERVAL_S,
                 batch_rows: int = BATCH_ROWS, buffer_limit: int = BUFFER_LIMIT,
                 shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S,
                 wait: Wait = threading.Event.wait,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if buffer_limit < 1:
            raise ValueError("buffer_limit must be at least 1")
        self.path = Path(path)
        self.sources = (str(self.path),)
        self.flush_interval_s = flush_interval_s
        self.batch_rows = max(1, min(batch_rows, buffer_limit))
        self.buffer_limit = buffer_limit
        self.shutdown_timeout_s = shutdown_timeout_s
        self._wait = wait
        self._clock = clock
        self._buffer: deque[ProbeResult] = deque()
        self._lock = threading.Lock()  # the buffer and the batch being written
        self._in_flight = 0  # results taken from the buffer by the writer, not yet committed
        self._wake = threading.Event()  # a batch is full, a flush is asked for, or closing
        self._stopping = threading.Event()
        self._cond = threading.Condition()
        self._added = 0
        self._written = 0
        self.dropped = 0
        self._owed = 0  # oldest results of the batch in flight given up for newer ones
        self.write_errors = 0
        self.flushes = 0
        self.lost = 0  # results never stored: dropped, or still held when close() gave up
        self._problem = ""  # why the last write failed; "" while writable
        self._failing_since = 0.0
        self._logged_at = 0.0
        self._give_up_at = math.inf
        self._closed = False
        self._reader: sqlite_utils.Database | None = None
        self._conn: sqlite3.Connection | None = None  # the writer's; None until (re)connected
        self._file: tuple[int, int] | None = None  # the file the writer's connection is on
        self._insert = (f"insert into {TABLE} ({', '.join(_FIELDS)}) "
                        f"values ({', '.join('?' * len(_FIELDS))})")
        self._folder = rollups.Folder()  # the writer's, for the rows it inserts
        self.rollup_errors: Counter[str] = Counter()  # failed refreshes by kind of exception
        self._rollup_problem = ""
        self.rows_not_folded = Ignored()  # rows out of domain the refresh passed over
        problem = store_problem(self.path, writing=True)
        if problem:
            raise NotAStoreError(f"{self.path}: {problem}")
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # a wrong path or a file that is not a store fails here, at once
            self._open().close()  # (the writer thread makes its own connection)
        except sqlite3.Error as exc:
            if not _transient(exc, self.path):
                raise
            self._failed(exc)  # the disk's fault: start, hold results and retry
        self._thread = threading.Thread(target=self._writer, name="store-writer", daemon=True)
        self._thread.start()

    @property
    def db(self) -> sqlite_utils.Database:
        if self._reader is None:
            self._reader = _connect(self.path)
        return self._reader

    # the sink side

    def on_result(self, result: ProbeResult) -> None:
        self.add(result)

    def add(self, result: ProbeResult) -> None:
        """Queue one result for the writer (never blocks on disk); when `buffer_limit` results
        already wait, the oldest is dropped."""
        if self._closed:
            raise RuntimeError("store is closed")
        with self._lock:
            self._added += 1
            if self.pending >= self.buffer_limit:
                if self._in_flight > self._owed:
                    # the oldest wait in the batch being written: they go if that write fails
                    # (counted then), and were never lost if it succeeds
                    self._owed += 1
                else:
                    self._buffer.popleft()
                    self.dropped += 1
            self._buffer.append(result)
            full = len(self._buffer) >= self.batch_rows
        if full:
            self._wake.set()

    def add_many(self, results: Iterable[ProbeResult]) -> None:
        for r in results:
            self.add(r)

    @property
    def pending(self) -> int:
        return len(self._buffer) + self._in_flight - self._owed

    @property
    def written(self) -> int:
        return self._written

    @property
    def is_open(self) -> bool:
        return not self._closed

    def health(self) -> StoreHealth:
        problem = self._problem
        return StoreHealth(
            writable=not problem, problem=problem,
            failing_for_s=self._clock() - self._failing_since if problem else 0.0,
            buffered=self.pending, buffer_limit=self.buffer_limit, dropped=self.dropped,
            written=self._written, write_errors=self.write_errors,
            rollup_errors=sum(self.rollup_errors.values()), rollup_problem=self._rollup_problem)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until every result added so far is committed; False on timeout, or as soon as
        the store is failing (the results stay held; `close()` makes the last attempts)."""
        target = self._added
        self._wake.set()
        with self._cond:
            return self._cond.wait_for(
                lambda: self._written + self.dropped >= target or bool(self._problem)
                or not self._thread.is_alive(), timeout) and not self._problem

    def close(self, timeout_s: float | None = None) -> None:
        """Commit everything still held, stop the writer and close the files. While the store
        fails, retry for at most `timeout_s` (default `shutdown_timeout_s`), then give up.
        How many results were never stored (dropped, or given up) is then in `lost`, and
        logged."""
        if self._closed:
            return
        limit = self.shutdown_timeout_s if timeout_s is None else timeout_s
        self._give_up_at = self._clock() + limit
        self._stopping.set()
        self._wake.set()
        # The writer checks the deadline between attempts; an attempt takes at most the busy
        # timeout, unless the kernel itself hangs (then the daemon thread is left behind).
        self._thread.join(limit + WRITER_BUSY_TIMEOUT_S + 1.0)
        self._closed = True
        if self._reader is not None:
            self._reader.close()
        self.lost = self.dropped + self.pending
        if self.lost:
            why = f" ({self._problem})" if self._problem else ""
            log.error("store %s: %d results could not be stored%s: %d dropped when more than "
                      "%d waited (the store failing, or slower than the results came), %d still "
                      "held when it gave up after %.3g s", self.path, self.lost, why,
                      self.dropped, self.buffer_limit, self.pending, limit)

    # the writer thread

    def _open(self) -> sqlite3.Connection:
        db = _connect(self.path, busy_timeout_s=WRITER_BUSY_TIMEOUT_S)
        try:
            migrate(db)
        except BaseException:
            db.close()
            raise
        self._file = _identity(self.path)
        return db.conn

    def _connection(self) -> sqlite3.Connection:
        """The writer's connection: (re)opened when there is none, and when the file it was
        on was deleted or replaced (writing on would commit into a file nobody can read)."""
        if self._conn is not None and _identity(self.path) != self._file:
            log.error("store %s: the database file was deleted or replaced; writing to a new "
                      "file at that path", self.path)
            self._disconnect()
            self._folder = rollups.Folder()
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _writer(self) -> None:
        folded_at = self._clock()
        retry_s = self.flush_interval_s
        try:
            while True:
                stopping = self._stopping.is_set()
                if stopping and self._problem:
                    pause = min(retry_s, max(self._give_up_at - self._clock(), 0.0))
                else:
                    pause = retry_s if self._problem else self.flush_interval_s
                if pause > 0:
                    self._wait(self._wake, pause)
                self._wake.clear()
                stopping = self._stopping.is_set()
                try:
                    ok = self._write_pending()
                    if (ok and not self._problem
                            and (stopping or self._clock() - folded_at >= ROLLUP_EVERY_S)):
                        ok = self._write_rollups()
                        folded_at = self._clock()
                except Exception as exc:  # a bug must not stop every later run being stored
                    self._unexpected(exc, "write")
                    ok = False
                retry_s = self.flush_interval_s if ok else min(retry_s * 2, MAX_RETRY_S)
                if stopping and (not self._buffer or self._clock() >= self._give_up_at):
                    break
        finally:
            self._disconnect()
            with self._cond:
                self._cond.notify_all()

    def _write_pending(self) -> bool:
        """Commit what is held, batch by batch. False when the store failed: the batch goes
        back to the front of the buffer (the bound still holds), and the failure is noted.
        A failing store with nothing to write stays failing: only a commit can tell that a
        full disk has room again."""
        while self._buffer:
            with self._lock:
                n = min(len(self._buffer), self.batch_rows)
                batch = [self._buffer.popleft() for _ in range(n)]
                self._in_flight = n
            first = self._try(self._commit, batch)
            with self._lock:
                owed, self._owed, self._in_flight = self._owed, 0, 0
                if first is None:
                    self.dropped += owed
                    self._buffer.extendleft(reversed(batch[owed:]))
                    while len(self._buffer) > self.buffer_limit:
                        self._buffer.popleft()
                        self.dropped += 1
            if first is None:
                with self._cond:
                    self._cond.notify_all()  # flush() returns: the store is failing
                return False
            try:
                self._folder.add(batch, first, first + len(batch) - 1)
            except Exception as exc:  # left to the next refresh, which re-reads the rows
                self._folder = rollups.Folder()
                self._unexpected(exc, "rollup")
            self.flushes += 1
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()
        return True

    def _commit(self, batch: Sequence[ProbeResult]) -> int:
        """Insert one batch in one transaction; the rowid of its first row. A value SQLite
        cannot hold (an integer beyond 64 bits from a network's answer, an object of a type
        it does not know) is stored as NULL or text: the batch is never refused for it."""
        conn = self._connection()
        rows = [to_row(r) for r in batch]
        try:
            return self._insert_rows(conn, rows)
        except (OverflowError, sqlite3.InterfaceError, sqlite3.ProgrammingError):
            return self._insert_rows(conn, [_storable(row) for row in rows])

    def _insert_rows(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> int:
        with conn:
            first = int(conn.execute(f"select max(rowid) from {TABLE}").fetchone()[0] or 0) + 1
            conn.executemany(self._insert, rows)
        return first

    def _try(self, step: Callable[..., Any], *args: Any) -> Any:
        """Run one write step; on a storage failure note it and return None."""
        try:
            result = step(*args)
        except (sqlite3.Error, OSError) as exc:
            self._disconnect()
            self._failed(exc)
            return None
        if self._problem:
            self._recovered()
        return result

    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        self.write_errors += 1
        problem = _problem(exc, self.path)
        if not self._problem:
            self._failing_since = self._logged_at = now
            self._problem = problem
            log.error("store %s: cannot write (%s); holding results in memory (at most %d, "
                      "then the oldest are dropped) and retrying", self.path, problem,
                      self.buffer_limit)
            return
        self._problem = problem
        if now - self._logged_at >= FAILURE_LOG_EVERY_S:
            self._logged_at = now
            log.error("store %s: still cannot write after %.0f s (%s): %d results held, %d "
                      "dropped, %d attempts failed", self.path, now - self._failing_since,
                      problem, self.pending, self.dropped, self.write_errors)

    def _recovered(self) -> None:
        log.warning("store %s: writing again after %.0f s (it failed with: %s); catching up on "
                    "%d held results, %d dropped so far", self.path,
                    self._clock() - self._failing_since, self._problem, self.pending,
                    self.dropped)
        self._problem = ""

    def _write_rollups(self) -> bool:
        """Write what the writer folded. A failure is the store's like any write (noted, logged
        at the bounded rate); the rows stay unfolded and the next write re-reads them
        (rollups.refresh): reports read unfolded rows raw meanwhile."""
        def write() -> bool:
            self._folder.write(self._connection(), ignored=self.rows_not_folded)
            return True

        try:
            done = self._try(write)
        except Exception as exc:  # not the disk's: a refresh that cannot fold (a bad row)
            self._folder = rollups.Folder()
            self._unexpected(exc, "rollup")
            return True  # the results are stored; storing goes on as usual
        if done is None:
            self._folder = rollups.Folder()
            return False
        self._rollup_problem = ""
        return True

    def _unexpected(self, exc: Exception, step: str) -> None:
        """An exception that is no storage failure, in the writer: logged with its traceback
        once per kind, counted (`depin_monitor_store_rollup_errors_total`, /readyz), and the
        writer goes on."""
        kind = f"{step}: {type(exc).__name__}"
        first = kind not in self.rollup_errors
        self.rollup_errors[kind] += 1
        self._rollup_problem = f"{kind}: {_problem(exc, self.path)}"[:200]
        if first:
            log.error("store %s: %s failed (%s); results are still stored, reports read "
                      "rows not folded raw; logged once per kind of error", self.path, step,
                      self._rollup_problem, exc_info=exc)


SQLITE_MAGIC = b"SQLite format 3\x00"


class NotAStoreError(sqlite3.DatabaseError):
    """A path that cannot hold a store: a directory, a file of another kind, the database of
    another program."""


def store_problem(path: str | Path, *, writing: bool = False) -> str | None:
    """Why `path` cannot be a store, in a few words ("is a directory", "not an SQLite
    database", "an SQLite database of another program"); None when it can (a store, an empty
    file or, for writing, no file yet)."""
    p = Path(path)
    if p.is_dir():
        return "is a directory, not a store file"
    if not p.exists():
        return None if writing else "no such file"
    if not p.is_file():
        return "is not a regular file"
    try:
        with open(p, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if not head:
        return None  # an empty file: SQLite makes it a database
    if head != SQLITE_MAGIC:
        return "not an SQLite database (a file of another kind)"
    try:
        conn = open_readonly(p)
    except sqlite3.OperationalError:  # locked, a read-only disk: the store's to retry
        return None
    try:
        tables = {r[0] for r in conn.execute("select name from sqlite_master "
                                             "where type in ('table', 'view')")}
        if TABLE not in tables:
            if tables - {MIGRATIONS_TABLE} and (not writing or MIGRATIONS_TABLE not in tables):
                return (f"an SQLite database of another program (no {TABLE} table), not a "
                        "depin-monitor store")
            return None
        missing = sorted(NOT_NULL - _columns(conn))
        if missing:
            return (f"its {TABLE} table has no column {', '.join(missing)}: a table of "
                    "another program, not a depin-monitor store")
    except sqlite3.OperationalError:  # locked, a read-only disk: the store's to retry
        return None
    except sqlite3.DatabaseError as exc:
        return f"not a readable SQLite database ({exc})"
    finally:
        conn.close()
    return None


def integrity_ok(path: str | Path) -> bool:
    """`PRAGMA integrity_check` says ok."""
    conn = open_readonly(path)
    try:
        return bool(conn.execute("pragma integrity_check").fetchone()[0] == "ok")
    finally:
        conn.close()
