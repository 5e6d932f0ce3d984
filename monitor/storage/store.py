"""The writer: `Store` appends probe results to one store file without ever blocking the
event loop.

`Store.add()` appends to a buffer; a writer thread commits the buffer every `flush_interval_s`
(0.5 s) or as soon as `batch_rows` rows wait, one prepared INSERT of the batch in one
transaction (docs/architecture.md: why raw SQL here), and folds what it wrote into the
rollups. So a SIGKILL loses at most the results that finished in the last flush interval plus
the batch being committed: under 1 s of results (docs/operations.md). `close()` writes
everything, or, while the store fails (disk full, read-only or locked file), gives up after
`shutdown_timeout_s` and says how many results were lost. Until then a failing store holds at
most `buffer_limit` results in memory (`StoreHealth`, read by /readyz and /metrics).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.core.result import COMPLETED_OUTCOMES, ProbeResult
from monitor.storage import rollups
from monitor.storage.domain import Ignored
from monitor.storage.files import NotAStoreError, store_problem
from monitor.storage.reads import Runs
from monitor.storage.rows import COLUMNS, TABLE, storable, to_row
from monitor.storage.schema import connect, migrate

log = logging.getLogger(__name__)

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


class Store:
    """The writable store of one agent. `add()` never blocks; a writer thread commits.

    While the store cannot write (disk full, read-only or locked database, a deleted file),
    results wait in memory, at most `buffer_limit` of them: past the bound the oldest are
    dropped and counted (`dropped`). The writer retries with a backoff up to
    `MAX_RETRY_S`, reconnecting each time (a connection opened on a read-only file stays
    read-only), and writes what is held once the fault clears. It logs the first failure, then
    at most one line every `FAILURE_LOG_EVERY_S`, then the recovery. A file deleted or replaced
    under it is noticed before the next commit and a new one is made at the path.

    Reads of its own file (`reads`, and the run queries beside it) see every committed batch
    (call `flush()` first to see the latest results).
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
        self._reads: Runs | None = None
        self._conn: sqlite3.Connection | None = None  # the writer's; None until (re)connected
        self._file: tuple[int, int] | None = None  # the file the writer's connection is on
        self._insert = (f"insert into {TABLE} ({', '.join(COLUMNS)}) "
                        f"values ({', '.join('?' * len(COLUMNS))})")
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

    # reading its own file (the demo's live table, tests): the run queries of
    # monitor.storage.reads.Runs, on a connection opened on first use in the reading thread;
    # they see every committed batch (flush() first to see the latest results)

    @property
    def reads(self) -> Runs:
        if self._reads is None:
            self._reads = Runs(connect(self.path), sources=[str(self.path)])
        return self._reads

    def count(self, network: str | None = None, since: float | None = None,
              until: float | None = None, job: str | None = None) -> int:
        return self.reads.count(network, since, until, job)

    def results(self, network: str | None = None, since: float | None = None,
                until: float | None = None, job: str | None = None) -> Iterator[ProbeResult]:
        return self.reads.results(network, since, until, job)

    def networks(self) -> list[str]:
        return self.reads.networks()

    def outcome_counts(self, network: str | None = None, since: float | None = None,
                       until: float | None = None, job: str | None = None
                       ) -> dict[str, dict[str, int]]:
        return self.reads.outcome_counts(network, since, until, job)

    def latencies(self, column: str, network: str | None = None, since: float | None = None,
                  until: float | None = None, job: str | None = None,
                  outcomes: Iterable[str] | None = COMPLETED_OUTCOMES) -> list[float]:
        return self.reads.latencies(column, network, since, until, job, outcomes)

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
        if self._reads is not None:
            self._reads.close()

        self.lost = self.dropped + self.pending
        if self.lost:
            why = f" ({self._problem})" if self._problem else ""
            log.error("store %s: %d results could not be stored%s: %d dropped when more than "
                      "%d waited (the store failing, or slower than the results came), %d still "
                      "held when it gave up after %.3g s", self.path, self.lost, why,
                      self.dropped, self.buffer_limit, self.pending, limit)

    # the writer thread

    def _open(self) -> sqlite3.Connection:
        db = connect(self.path, busy_timeout_s=WRITER_BUSY_TIMEOUT_S)
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
            return self._insert_rows(conn, [storable(row) for row in rows])

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

