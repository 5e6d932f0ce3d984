"""The store when the disk fails it: full, read-only, locked by another process, the file
deleted. Results wait in a bounded buffer (what overflows is counted), the failure shows in
/readyz and /metrics, the logs stay quiet, the store catches up when the fault clears, and
shutdown gives up in bounded time saying what was lost. Every file passes
`PRAGMA integrity_check` afterwards (tests/disk.py for the tmpfs, `sound_stores` for the rest).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.config import parse_config
from monitor.runtime.agent import monitor
from monitor.runtime.scheduler import Scheduler
from monitor.storage.files import integrity_ok
from monitor.storage.store import Store, StoreHealth
from tests.conftest import StartSim
from tests.disk import Disk, disk_fixture
from tests.test_store import full_result

STORE_LOG = "monitor.storage.store"
# What SQLite says of a full disk depends on which file could not grow: the WAL, the -shm
FULL = re.compile(r"database or disk is full|no space left on the device")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    yield from disk_fixture(tmp_path)


@pytest.fixture(autouse=True)
def sound_stores(tmp_path: Path) -> Iterator[None]:
    yield
    for path in tmp_path.glob("*.db"):
        assert integrity_ok(path), f"PRAGMA integrity_check failed for {path.name}"


def rows(path: Path) -> list[float]:
    """started_at of every stored run, oldest first."""
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("select started_at from probe_results order by 1")]
    finally:
        conn.close()


def until(check: object, timeout: float = 20.0) -> None:
    deadline = time.perf_counter() + timeout
    while not check():  # type: ignore[operator]
        assert time.perf_counter() < deadline, "timed out"
        time.sleep(0.01)


def fail_the_store(store: Store, first: int = 0) -> int:
    """Add results until a write fails (a full disk may still take what fits); how many."""
    i = first
    while store.health().writable:
        store.add(full_result(i))
        i += 1
        store.flush(timeout=5)
        assert i < first + 100_000, "the store never failed"
    return i - first


def test_a_full_disk_holds_results_in_memory_then_catches_up(
        disk: Disk, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(disk.path / "s.db", flush_interval_s=0.01)
    store.add_many(full_result(i) for i in range(10))
    assert store.flush()
    disk.fill()
    added = 10 + fail_the_store(store, first=10)
    health = store.health()
    assert not health.writable and FULL.search(health.problem)
    assert health.buffered > 0 and health.dropped == 0
    assert "failing" in health.describe() and FULL.search(health.describe())
    disk.free()
    until(lambda: store.health().writable)
    assert store.flush()
    assert len(rows(disk.path / "s.db")) == added  # nothing lost, nothing twice
    store.close()
    errors = [r for r in caplog.records if r.name == STORE_LOG and r.levelno >= logging.ERROR]
    assert errors and "cannot write" in errors[0].getMessage()
    assert FULL.search(errors[0].getMessage())
    assert any("writing again after" in r.getMessage() for r in caplog.records)


def test_a_write_in_flight_that_fails_gives_up_its_oldest_results_not_the_newest(
        tmp_path: Path) -> None:
    """Results that arrive while the writer holds the whole bound in a batch being written
    are kept; if that write fails, the batch's oldest are the ones dropped (and counted)."""
    store = Store(tmp_path / "s.db", flush_interval_s=0.01, buffer_limit=10, batch_rows=10)
    entered, release = threading.Event(), threading.Event()

    def failing_commit(batch: object) -> int:
        entered.set()
        release.wait(10)
        raise sqlite3.OperationalError("disk I/O error")

    store._commit = failing_commit  # type: ignore[method-assign]
    store.add_many(full_result(i) for i in range(10))
    assert entered.wait(10)  # the writer holds all ten, in flight
    store.add_many(full_result(i) for i in range(10, 15))
    assert store.pending == 10 and store.dropped == 0  # the bound holds; nothing lost yet
    del store._commit  # the disk works again after this one failed write
    release.set()
    until(lambda: store.health().writable and store.pending == 0)
    assert rows(tmp_path / "s.db") == [full_result(i).started_at for i in range(5, 15)]
    assert store.dropped == 5
    store.close()
    assert store.lost == 5


def test_the_buffer_is_bounded_and_what_overflows_is_counted(disk: Disk) -> None:
    store = Store(disk.path / "s.db", flush_interval_s=0.01, buffer_limit=50)
    disk.fill()
    first = fail_the_store(store)
    for i in range(first, first + 200):
        store.add(full_result(i))
        assert store.pending <= 50  # at no moment more than the bound
    # a write in flight when the bound was passed counts its drops once it has failed
    until(lambda: store.health().dropped >= 150)
    assert store.health().buffered == 50
    disk.free()
    until(lambda: store.health().writable and store.pending == 0)
    stored = rows(disk.path / "s.db")
    assert len(stored) + store.dropped == first + 200  # each one stored or counted dropped
    # the newest 50 are kept: the oldest were dropped
    assert stored[-50:] == [full_result(i).started_at for i in range(first + 150, first + 200)]
    store.close()
    assert store.lost == store.dropped > 0


def test_a_read_only_database_recovers_when_the_disk_is_writable_again(disk: Disk) -> None:
    # Linux remounts a disk read-only under open files only on its own (errors=remount-ro);
    # a test can do it while no file is open: the store then starts on a read-only database.
    Store(disk.path / "s.db").close()
    disk.read_only()
    store = Store(disk.path / "s.db", flush_interval_s=0.01)  # starts, fails, retries
    store.add(full_result(0))
    until(lambda: not store.health().writable)
    assert "read-only" in store.health().problem
    disk.read_only(False)
    until(lambda: store.health().writable and store.pending == 0)
    store.close()
    assert store.lost == 0
    assert len(rows(disk.path / "s.db")) == 1


def test_a_locked_database_fails_the_store_until_the_lock_is_released(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", flush_interval_s=0.01)
    locker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    locker.execute("begin exclusive")
    store.add(full_result(0))
    until(lambda: not store.health().writable)
    assert store.health().problem == "database is locked"
    assert not store.flush(timeout=5)  # returns at once: the store is failing
    locker.execute("commit")
    locker.close()
    until(lambda: store.health().writable and store.pending == 0)
    store.close()
    assert store.lost == 0
    assert len(rows(tmp_path / "s.db")) == 1


def test_a_deleted_database_file_is_made_again_and_written(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    path = tmp_path / "s.db"
    store = Store(path, flush_interval_s=0.01)
    store.add_many(full_result(i) for i in range(5))
    assert store.flush()
    for name in ("s.db", "s.db-wal", "s.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    store.add_many(full_result(i) for i in range(5, 8))
    assert store.flush()
    store.close()
    assert len(rows(path)) == 3  # the results after the deletion, in a new, sound file
    assert any("deleted or replaced" in r.getMessage() for r in caplog.records)


def test_only_the_database_file_deleted_leaves_a_sound_new_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path, flush_interval_s=0.01)
    store.add_many(full_result(i) for i in range(5))
    assert store.flush()
    path.unlink()  # `rm s.db`: its -wal and -shm stay behind
    store.add_many(full_result(i) for i in range(5, 9))
    assert store.flush()
    store.close()
    assert len(rows(path)) == 4


def test_close_gives_up_in_bounded_time_and_says_how_many_were_lost(
        disk: Disk, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(disk.path / "s.db", flush_interval_s=0.01, shutdown_timeout_s=0.5)
    disk.fill()
    fail_the_store(store)
    store.add_many(full_result(100_000 + i) for i in range(20))
    held = store.pending
    started = time.perf_counter()
    store.close()
    took = time.perf_counter() - started
    lost = store.lost
    assert lost == held >= 20
    assert took < 10  # 0.5 s of retries (plus one attempt), not a retry loop without end
    said = [r.getMessage() for r in caplog.records if "could not be stored" in r.getMessage()]
    assert said and f"{lost} results could not be stored" in said[0]
    assert FULL.search(said[0])
    disk.free()


def test_the_store_starts_on_a_full_disk_and_catches_up(disk: Disk) -> None:
    disk.fill()
    store = Store(disk.path / "s.db", flush_interval_s=0.01)  # no exception: it will retry
    assert not store.health().writable
    store.add_many(full_result(i) for i in range(3))
    disk.free()
    until(lambda: store.health().writable and store.pending == 0)
    store.close()
    assert store.lost == 0
    assert len(rows(disk.path / "s.db")) == 3


def test_a_file_that_is_not_a_store_is_refused_at_once(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database, " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        Store(tmp_path / "notes.txt")


def test_failures_are_logged_at_a_bounded_rate(disk: Disk,
                                               caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]

    def clock() -> float:  # ten seconds pass at every look
        now[0] += 10.0
        return now[0]

    def wait(event: threading.Event, seconds: float) -> bool:
        return event.wait(0.001)

    store = Store(disk.path / "s.db", flush_interval_s=0.01, wait=wait, clock=clock)
    disk.fill()
    fail_the_store(store)
    until(lambda: store.write_errors >= 200)
    lines = [r for r in caplog.records if r.name == STORE_LOG and r.levelno >= logging.ERROR]
    # 200 failed attempts over > 2,000 s of (injected) time: one line a minute at most
    assert 2 <= len(lines) <= now[0] / 60 + 2
    assert all("still cannot write" in r.getMessage() for r in lines[1:])
    store.close(timeout_s=0)
    disk.free()


# -- the monitor around the store -------------------------------------------------------

async def test_the_monitor_keeps_probing_and_exporting_while_the_store_fails(
        disk: Disk, start_sim: StartSim) -> None:
    sim = await start_sim()
    config = parse_config(f"""
networks:
  - name: steady
    base_url: {sim.base_url}
    model: {sim.sim.model}
    interval: 100ms
store: {{buffer_results: 5}}
""")
    store = Store(disk.path / "m.db", flush_interval_s=0.05,
                  buffer_limit=config.store.buffer_results)
    ports: list[int] = []
    schedulers: list[Scheduler] = []

    def ready(scheduler: Scheduler, port: int | None) -> None:
        schedulers.append(scheduler)
        ports.append(port or 0)

    task = asyncio.create_task(monitor(config, store, listen="127.0.0.1:0", on_ready=ready,
                                       handle_signals=False, grace_s=1.0))
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await until_async(lambda: bool(ports))
            url = f"http://127.0.0.1:{ports[0]}"
            await until_async(lambda: store.written >= 3)
            assert (await client.get(f"{url}/readyz")).status_code == 200
            disk.fill()
            await until_async(lambda: store.dropped >= 3)  # past the 5-result buffer
            ready_now = await client.get(f"{url}/readyz")
            assert ready_now.status_code == 503
            assert "store failing" in ready_now.text
            assert FULL.search(ready_now.text)
            first = metric_values(await client.get(f"{url}/metrics"))
            await asyncio.sleep(0.5)
            second = metric_values(await client.get(f"{url}/metrics"))
            assert first["depin_monitor_store_up"] == 0
            assert first["depin_monitor_store_buffered_results"] <= 5
            assert first["depin_monitor_store_buffer_limit_results"] == 5
            assert second["depin_monitor_results_dropped_total"] > 0
            assert second["depin_probe_runs_total"] > first["depin_probe_runs_total"]  # probing
            disk.free()
            await until_async(lambda: store.health().writable and store.pending == 0)
            assert (await client.get(f"{url}/readyz")).status_code == 200
            third = metric_values(await client.get(f"{url}/metrics"))
            assert third["depin_monitor_store_up"] == 1
    finally:
        if schedulers:
            schedulers[0].stop()
        await task
    store.close()
    lost = store.lost
    counted = int(third["depin_probe_runs_total"])
    assert len(rows(disk.path / "m.db")) >= counted - lost  # all but what was dropped


async def until_async(check: object, timeout: float = 20.0) -> None:
    deadline = time.perf_counter() + timeout
    while not check():  # type: ignore[operator]
        assert time.perf_counter() < deadline, "timed out"
        await asyncio.sleep(0.02)


def metric_values(response: httpx.Response) -> dict[str, float]:
    """Each metric name's value, summed over its series."""
    assert response.status_code == 200
    out: dict[str, float] = {}
    for m in re.finditer(r"^([a-z_]+)(?:\{[^}]*\})? ([-+\d.e]+)$", response.text, re.M):
        out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


def test_demo_on_a_full_disk_ends_in_time_and_says_what_it_could_not_store(disk: Disk) -> None:
    db = disk.path / "demo.db"
    disk.fill()
    # Timed from the demo's first line of output, so that a slow interpreter start on a
    # loaded machine is not counted: 20 s of probing, then the store's 5 s of retries
    # (a store that never gave up would hang it until the timeout below).
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "demo", "--duration", "20", "--db", str(db),
             "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=errors, text=True, stdin=subprocess.DEVNULL)
        hung = threading.Timer(120, proc.kill)  # a demo that never ends fails, killed
        hung.start()
        first_line: float | None = None
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                first_line = first_line or time.perf_counter()
                lines.append(line)
            proc.wait()
        finally:
            hung.cancel()
        ended = time.perf_counter()
        errors.seek(0)
        stderr = errors.read()
    out = subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines), stderr)
    assert first_line is not None, stderr[-2000:]
    took = ended - first_line
    assert out.returncode == 1, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    said = re.search(r"could not store (\d+) result", out.stdout)
    assert said and int(said.group(1)) > 20, out.stdout[-2000:]
    assert FULL.search(out.stdout)
    assert took < 45, f"demo --duration 20 took {took:.1f} s after its first line, disk full"
    disk.free()


def test_store_health_reads_as_one_line() -> None:
    h = StoreHealth(writable=False, problem="database is locked", failing_for_s=12.4,
                    buffered=340, buffer_limit=50_000, dropped=0, written=10, write_errors=3)
    assert h.describe() == ("store failing for 12 s (database is locked); 340 results held in "
                            "memory (limit 50000), 0 dropped")
