"""The store on real SQLite files: every field round-trips, writes are batched, WAL, queries."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlite_utils

from monitor.core.result import Outcome, ProbeResult
from monitor.storage.files import integrity_ok
from monitor.storage.reads import open_stores
from monitor.storage.rows import TABLE
from monitor.storage.schema import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version
from monitor.storage.store import Store


def full_result(i: int = 0, **changes: object) -> ProbeResult:
    """A result with every field set to a non-default value."""
    r = ProbeResult(
        network="akash", target="small", job="chat-short-v1", model="llama-8b",
        outcome=Outcome.WRONG_OUTPUT, started_at=1_790_000_000.25 + i, kind="ollama",
        job_version=3, prompt_hash="abcdef0123456789", location="eu-west-1",
        scheduled_at=1_790_000_000.0 + i, http_status=200, error="expected '42', got 'x'",
        connect_s=0.012, ttfb_s=0.2, ttft_s=0.31, duration_s=1.5, output_tokens=16,
        input_tokens=40, token_source="usage", tokens_per_s=42.5, max_gap_s=0.09, bytes=2048,
        queue_s=0.7, retry_after_s=5.0, served_model="llama-8b-fp8", system_fingerprint="fp_1",
        node="node-7", lagged=True, details={"finish_reason": "stop", "quirks": ["a", "b"]},
        dns_s=0.004, tcp_s=0.003, tls_s=0.008, ip_version=6, tls_version="TLSv1.3",
        tls_cipher="TLS_AES_256_GCM_SHA384", tls_cert_expiry=1_800_000_000.0,
    )
    return r.replace(**changes)


def test_every_field_round_trips(tmp_path: Path) -> None:
    every = full_result()
    assert all(getattr(every, f.name) != f.default for f in dataclasses.fields(ProbeResult)
               if f.default is not dataclasses.MISSING)
    sparse = ProbeResult(network="n", target="t", job="j", model="m", outcome=Outcome.TIMEOUT,
                         started_at=1.0)
    store = Store(tmp_path / "s.db")
    store.add(every)
    store.add(sparse)
    store.close()
    back = list(open_stores([tmp_path / "s.db"]).results())
    assert back == [sparse, every]  # oldest first
    assert back[1].lateness_s == pytest.approx(0.25)


def test_schema_wal_indexes_and_migrations_are_recorded(tmp_path: Path) -> None:
    Store(tmp_path / "s.db").close()
    db = sqlite_utils.Database(tmp_path / "s.db")
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    cols = {c.name for c in db[TABLE].columns}
    assert {f.name for f in dataclasses.fields(ProbeResult)} <= cols
    assert {"location", "scheduled_at"} <= cols
    indexes = {tuple(ix.columns) for ix in db[TABLE].indexes}
    assert {("network", "started_at"), ("job", "started_at")} <= indexes
    assert schema_version(db) == SCHEMA_VERSION == len(MIGRATIONS)
    assert migrate(db) == []  # re-opening applies nothing twice
    assert [r["name"] for r in db["_migrations"].rows] == [name for name, _ in MIGRATIONS]


class WriterClock:
    """Paces the store's writer in place of time: each of its waits lasts until the test lets
    the interval pass (`elapse`) or the writer is woken (a full batch, flush, close)."""

    def __init__(self) -> None:
        self.intervals: list[float] = []  # every wait the writer began, in order
        self._cond = threading.Condition()
        self._elapsed = 0

    def wait(self, event: threading.Event, seconds: float) -> bool:
        with self._cond:
            self.intervals.append(seconds)
            self._cond.notify_all()
            # Event.set() does not notify this condition: look at the event between ticks
            while not event.is_set() and not self._elapsed:
                self._cond.wait(0.001)
            if event.is_set():
                return True
            self._elapsed -= 1
            return False

    def waits(self, n: int) -> None:
        """Return once the writer has begun its n-th wait (it finished what came before)."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.intervals) >= n, timeout=10)

    def elapse(self) -> None:
        """Let the writer's current wait time out, and return once it waits again."""
        with self._cond:
            n = len(self.intervals)
            self._elapsed += 1
        self.waits(n + 1)


def rows(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as reader:
        return int(reader.execute(f"select count(*) from {TABLE}").fetchone()[0])


def test_add_does_not_write_until_the_batch_is_flushed(tmp_path: Path) -> None:
    clock = WriterClock()
    store = Store(tmp_path / "s.db", flush_interval_s=30.0, batch_rows=100, wait=clock.wait)
    clock.waits(1)
    for i in range(50):
        store.add(full_result(i))
    assert store.pending == 50
    assert rows(tmp_path / "s.db") == 0
    for i in range(50, 100):  # the 100th row fills a batch: the writer wakes at once
        store.add(full_result(i))
    clock.waits(2)
    assert rows(tmp_path / "s.db") == 100
    assert clock.intervals == [30.0, 30.0]  # woken by the batch, not by the interval
    store.add(full_result(100))
    assert store.flush()
    assert rows(tmp_path / "s.db") == 101
    assert store.flushes == 2  # two commits, not one per row
    store.close()


def test_the_writer_flushes_on_its_own_within_the_interval(tmp_path: Path) -> None:
    clock = WriterClock()
    store = Store(tmp_path / "s.db", flush_interval_s=0.1, wait=clock.wait)
    clock.waits(1)
    store.add(full_result())
    clock.elapse()
    assert rows(tmp_path / "s.db") == 1
    assert clock.intervals == [0.1, 0.1]
    store.close()


def test_add_never_blocks_while_the_database_is_locked(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", flush_interval_s=0.05)
    locker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    locker.execute("begin exclusive")
    store.add(full_result(0))
    assert not store.flush(timeout=0.2)  # the writer is now stuck on the lock ...

    def add_the_rest() -> None:
        for i in range(1, 1000):
            store.add(full_result(i))

    adder = threading.Thread(target=add_the_rest)  # ... and the event loop's side goes on
    adder.start()
    adder.join(10)
    assert not adder.is_alive() and store.written == 0
    locker.execute("commit")
    locker.close()
    store.close()  # everything is written once the lock is gone
    assert open_stores([tmp_path / "s.db"]).count() == 1000
    assert integrity_ok(tmp_path / "s.db")


def test_add_from_the_loop_while_the_writer_commits_loses_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", flush_interval_s=0.01, batch_rows=64)

    def producer(offset: int) -> None:
        for i in range(2000):
            store.add(full_result(offset + i))

    threads = [threading.Thread(target=producer, args=(k * 10_000,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    assert open_stores([tmp_path / "s.db"]).count() == 4000


def test_queries_for_reports_and_sla(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    rows = [full_result(i, network="a", outcome=Outcome.OK, ttft_s=0.1 * (i + 1),
                        duration_s=1.0 + i) for i in range(10)]
    rows += [full_result(20 + i, network="b", outcome=Outcome.DISCONNECT, ttft_s=None,
                         duration_s=0.5) for i in range(3)]
    rows += [full_result(30, network="b", job="json-v1", outcome=Outcome.OK)]
    store.add_many(rows)
    store.flush()
    t0 = 1_790_000_000.0
    assert store.networks() == ["a", "b"]
    assert store.count() == 14 and store.count(network="b") == 4
    assert store.count(since=t0 + 5, until=t0 + 10) == 5
    assert store.outcome_counts() == {"a": {"ok": 10}, "b": {"disconnect": 3, "ok": 1}}
    assert store.outcome_counts(job="json-v1") == {"b": {"ok": 1}}
    assert store.latencies("ttft_s", network="a")[:3] == pytest.approx([0.1, 0.2, 0.3])
    # durations of failed runs are time-to-failure, not end-to-end latency: not included
    assert store.latencies("duration_s", network="b") == [1.5]
    assert len(store.latencies("duration_s", network="b", outcomes=None)) == 4
    with pytest.raises(ValueError):
        store.latencies("network")
    assert [r.network for r in store.results(network="b", job="json-v1")] == ["b"]
    store.close()


def test_several_store_files_read_as_one(tmp_path: Path) -> None:
    for name, n in (("eu", 3), ("us", 5)):
        store = Store(tmp_path / f"{name}.db")
        store.add_many(full_result(i, location=name) for i in range(n))
        store.close()
    merged = open_stores([tmp_path / "eu.db", tmp_path / "us.db"])
    assert merged.count() == 8
    assert sorted({r.location for r in merged.results()}) == ["eu", "us"]
    with pytest.raises(sqlite3.OperationalError):  # read-only: a report never writes
        merged.db.execute(f"insert into s0.{TABLE} (network) values ('x')")
    with pytest.raises(FileNotFoundError):
        open_stores([tmp_path / "nope.db"])


def test_close_writes_everything_and_the_file_is_sound(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", flush_interval_s=60.0)
    store.add_many(full_result(i) for i in range(5000))
    store.close()
    assert not store.is_open
    with pytest.raises(RuntimeError):
        store.add(full_result())
    assert integrity_ok(tmp_path / "s.db")
    assert open_stores([tmp_path / "s.db"]).count() == 5000


CONNECTION_COLUMNS = ("dns_s", "tcp_s", "tls_s", "ip_version", "tls_version", "tls_cipher",
                      "tls_cert_expiry")


def test_a_store_from_before_the_connection_columns_is_read_and_migrated(tmp_path: Path
                                                                          ) -> None:
    path = tmp_path / "old.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    for column in CONNECTION_COLUMNS:  # the file as schema 2 wrote it
        conn.execute(f"alter table {TABLE} drop column {column}")
    conn.execute("delete from _migrations where name = '003_connection_columns'")
    old = full_result()
    conn.execute("insert into probe_results (network, target, job, model, outcome, started_at) "
                 "values ('akash', 'small', 'chat-short-v1', 'm', 'ok', 1.0)")
    conn.commit()
    conn.close()
    # a report opens it read-only, unmigrated: the new fields read as not observed
    [row] = open_stores([path]).results()
    assert row.ok and row.tls_version is None and row.dns_s is None
    # the writer migrates it and then keeps every field
    store = Store(path)
    store.add(old)
    store.close()
    back = list(open_stores([path]).results())
    assert back[1] == old and back[0].started_at == 1.0
