"""A store holding rows no probe wrote (text or infinity in numeric columns, absurd times,
a broken rollup watermark, a foreign table): the monitor keeps storing every run, and the
report reads around the bad rows, says how many it ignored and never raises."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from monitor.cli import main
from monitor.config import parse_config
from monitor.core.result import Outcome, ProbeResult
from monitor.runtime.agent import monitor
from monitor.storage import store as store_module
from monitor.storage.store import Store
from tests.conftest import StartSim

# One row each of what a hand edit, a foreign migration or an old bug can leave behind.
ABSURD: list[dict[str, object]] = [
    {"ttft_s": float("inf")}, {"ttft_s": "NaN"}, {"ttft_s": 9e999},
    {"output_tokens": "many"}, {"started_at": 1e18}, {"started_at": "yesterday"},
    {"duration_s": -5.0}, {"tokens_per_s": "fast"}, {"outcome": b"\xff"},
]


def seed(path: Path, good: int = 20) -> int:
    """A store with `good` ordinary runs an hour ago and every ABSURD row; the rows it holds."""
    store = Store(path)
    now = time.time()
    for i in range(good):
        store.add(ProbeResult(network="alpha", target="small", job="chat-short-v1", model="m",
                              outcome=Outcome.OK, kind="openai", started_at=now - 3600 + i,
                              ttft_s=0.1, duration_s=1.0, tokens_per_s=50.0, output_tokens=20))
    store.close()
    conn = sqlite3.connect(path)
    base = {"network": "alpha", "target": "small", "job": "chat-short-v1", "model": "m",
            "outcome": "ok", "kind": "openai", "started_at": now - 100}
    for change in ABSURD:
        row = {**base, **change}
        conn.execute(f"insert into probe_results ({', '.join(row)}) "
                     f"values ({', '.join('?' * len(row))})", list(row.values()))
    conn.commit()
    conn.close()
    return good + len(ABSURD)


def count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("select count(*) from probe_results").fetchone()[0])
    finally:
        conn.close()


class Counting:
    """A sink counting the runs the scheduler finished."""

    def __init__(self) -> None:
        self.runs = 0

    def on_result(self, result: ProbeResult) -> None:
        self.runs += 1


async def run_monitor(start_sim: StartSim, db: Path, *, seconds: float,
                      readyz: list[str] | None = None) -> int:
    """`run` in this process for `seconds` (probes every 50 ms, rollups every 0.1 s) against a
    simulated network; how many runs finished."""
    net = await start_sim()
    config = parse_config(f"""
networks:
  - name: alpha
    base_url: {net.base_url}
    model: m
    interval: 50ms
""")
    counting = Counting()
    store = Store(db)
    try:
        if readyz is None:
            await monitor(config, store, duration_s=seconds, handle_signals=False,
                          extra_sinks=[counting])
        else:
            async def ask() -> None:  # until the writer has tried a refresh, or the end
                async with httpx.AsyncClient() as client:
                    while True:
                        r = await client.get(f"http://127.0.0.1:{port[0]}/readyz")
                        if "rollups" in r.text or not store.is_open or stopped:
                            readyz.append(f"{r.status_code} {r.text}")
                            return
                        await asyncio.sleep(0.05)

            port: list[int] = []
            task = None

            def on_ready(scheduler: object, bound: int | None) -> None:
                nonlocal task
                assert bound is not None
                port.append(bound)
                task = asyncio.get_running_loop().create_task(ask())

            stopped = False
            await monitor(config, store, duration_s=seconds, handle_signals=False,
                          extra_sinks=[counting], listen="127.0.0.1:0", on_ready=on_ready)
            stopped = True
            assert task is not None
            await task
    finally:
        store.close()
    assert store.lost == 0
    return counting.runs


@pytest.fixture
def quick_rollups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "ROLLUP_EVERY_S", 0.1)


async def test_a_long_run_on_absurd_rows_stores_every_new_run(
        tmp_path: Path, start_sim: StartSim, quick_rollups: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.db"
    before = seed(db)
    runs = await run_monitor(start_sim, db, seconds=1.0)
    assert runs >= 5
    assert count(db) == before + runs
    # the report reads every new run and the good old ones, and names what it ignored
    assert main(["report", "--db", str(db), "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert f'"runs": {20 + runs}' in out
    assert "9 stored rows ignored" in out and "ttft_s not a finite number" in out


async def test_a_writer_whose_refresh_raises_keeps_storing_and_readyz_says_so(
        tmp_path: Path, start_sim: StartSim, quick_rollups: None) -> None:
    db = tmp_path / "r.db"
    before = seed(db, good=5)
    conn = sqlite3.connect(db)
    conn.execute("update rollup_state set rolled_rowid = 'lost'")  # a watermark edited away
    conn.commit()
    conn.close()
    readyz: list[str] = []
    runs = await run_monitor(start_sim, db, seconds=1.0, readyz=readyz)
    assert count(db) == before + runs
    assert readyz and readyz[0].startswith("200 ready\nstore rollups not updated")
    assert "ValueError" in readyz[0]


def test_a_result_sqlite_cannot_hold_is_stored_and_the_next_ones_too(tmp_path: Path) -> None:
    """A network answering with a token count beyond 64 bits: the run is stored (the count as
    not observed) and so is every run after it."""
    store = Store(tmp_path / "r.db")
    now = time.time()
    for i, tokens in enumerate((20, 10**30, 20)):
        store.add(ProbeResult(network="alpha", target="small", job="chat-short-v1", model="m",
                              outcome=Outcome.OK, kind="openai", started_at=now + i,
                              output_tokens=tokens))
    assert store.flush()
    store.close()
    assert store.lost == 0 and store.written == 3
    conn = sqlite3.connect(tmp_path / "r.db")
    assert [r[0] for r in conn.execute("select output_tokens from probe_results "
                                       "order by started_at")] == [20, None, 20]
    conn.close()
