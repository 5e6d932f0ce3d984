"""Daily rollups: the store's writer folds what it writes, refresh() re-reads what it missed,
and the report from rollups matches the exact report (counts exactly, quantiles within 0.5 %)."""

from __future__ import annotations

import math
import random
import sqlite3
from pathlib import Path

import pytest

from monitor.analysis.queries import COLUMNS
from monitor.analysis.report import build_report, report_from_stores
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import MaintenanceWindow
from monitor.storage import rollups
from monitor.storage.reads import read_rows
from monitor.storage.rows import to_row
from monitor.storage.store import Store

DAY = 86400.0
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
OUTCOMES = [Outcome.OK] * 12 + [Outcome.WRONG_OUTPUT, Outcome.DISCONNECT, Outcome.HTTP_ERROR,
                                Outcome.RATE_LIMITED, Outcome.TIMEOUT]


def results(n: int, seed: int = 3, start: float = T0, step: float = 97.0) -> list[ProbeResult]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        outcome = rng.choice(OUTCOMES)
        done = outcome in (Outcome.OK, Outcome.WRONG_OUTPUT)
        out.append(ProbeResult(
            network=f"net-{i % 3}", target="small", job=("chat-short-v1", "json-v1")[i % 2],
            model="m", outcome=outcome, started_at=start + i * step + rng.random(),
            location=("eu", "us")[i % 2] if i % 5 else "",
            ttft_s=rng.lognormvariate(-1, 0.8) if outcome != Outcome.HTTP_ERROR else None,
            duration_s=rng.lognormvariate(1, 0.5), output_tokens=rng.randint(1, 300) if done
            else None, input_tokens=1000, tokens_per_s=rng.uniform(3, 120) if done else None,
            node=f"node-{rng.randint(1, 9)}" if i % 4 else None))
    return out


def write(path: Path, rs: list[ProbeResult]) -> None:
    store = Store(path, flush_interval_s=0.01, batch_rows=500)
    store.add_many(rs)
    store.close()


def tables(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {t: sorted(conn.execute(f"select * from {t}").fetchall())
                for t in (*rollups.TABLES, rollups.WEEK_TABLE)}
    finally:
        conn.close()


def assert_same(exact, fast) -> None:
    assert [g.key for g in exact.groups] == [g.key for g in fast.groups]
    for a, b in zip(exact.groups, fast.groups, strict=True):
        for name in ("runs", "outcomes", "availability", "availability_ci", "disconnect_rate",
                     "wrong_output_rate", "output_tokens", "good_output_tokens", "nodes"):
            assert getattr(a, name) == pytest.approx(getattr(b, name)), (a.key, name)
        assert a.first_at == pytest.approx(b.first_at) and a.last_at == pytest.approx(b.last_at)
        for name in ("ttft_p50_s", "ttft_p95_s", "e2e_p50_s", "e2e_p99_s", "decode_tps_median"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None) == (y is None), (a.key, name)
            if x is not None:
                assert math.isclose(x, y, rel_tol=0.005), (a.key, name, x, y)
        for name in ("ttft_p95_ci", "e2e_p99_ci", "decode_tps_ci"):
            for x, y in zip(getattr(a, name) or (), getattr(b, name) or (), strict=True):
                assert math.isclose(x, y, rel_tol=0.005), (a.key, name, x, y)
        for va, vb in zip(a.verdicts, b.verdicts, strict=True):
            assert (va.sli, va.total, va.verdict) == (vb.sli, vb.total, vb.verdict)
            assert abs(va.bad - vb.bad) <= 1  # a run within half a bucket of the threshold


def exact_report(path: Path, **kw):
    rows = list(read_rows([path], COLUMNS, since=kw.get("since"), until=kw.get("until")))
    return build_report(rows, by=kw.get("by", ("network",)),
                        maintenance=kw.get("maintenance", ()))


def test_the_writer_folds_what_it_writes_like_refresh_rereads_it(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    write(path, results(3000))
    folded = tables(path)
    assert folded["rollup_state"] == [(1, 3000)]
    conn = sqlite3.connect(path)
    with conn:
        for t in (*rollups.TABLES, rollups.WEEK_TABLE):
            conn.execute(f"delete from {t}")
    rollups.refresh(conn)
    conn.close()
    assert tables(path) == folded


@pytest.mark.parametrize("kw", [
    {},
    {"by": ("network", "job", "location")},
    {"since": T0 + 0.4 * DAY, "until": T0 + 2.7 * DAY},
    {"since": T0 + 0.4 * DAY, "until": T0 + 0.7 * DAY},  # no whole day: every run once
    {"maintenance": (MaintenanceWindow(start=T0 + 1.1 * DAY, end=T0 + 1.2 * DAY),)},
])
def test_report_from_rollups_matches_the_exact_report(tmp_path: Path, kw: dict) -> None:
    path = tmp_path / "a.db"
    write(path, results(3000))  # ~3.4 days
    assert_same(exact_report(path, **kw), report_from_stores([path], **kw))


def test_rows_the_writer_did_not_fold_are_read_raw_then_caught_up(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    write(path, results(1000))
    # Rows from elsewhere (an import, another tool): past the watermark, never folded.
    extra = results(500, seed=9, start=T0 + 5 * DAY)
    conn = sqlite3.connect(path)
    from monitor.storage.rows import COLUMNS as FIELDS

    with conn:
        conn.executemany(f"insert into probe_results ({', '.join(FIELDS)}) values "
                         f"({', '.join('?' * len(FIELDS))})", [to_row(r) for r in extra])
    conn.close()
    assert_same(exact_report(path), report_from_stores([path]))
    write(path, results(200, seed=11, start=T0 + 8 * DAY))  # the writer notices and catches up
    assert tables(path)["rollup_state"] == [(1, 1700)]
    assert_same(exact_report(path), report_from_stores([path]))
