"""The weekly histograms: a report or an SLA read from whole weeks plus edge days is exactly the
one the daily histograms give (and within the rollups' precision of the exact one), and a store
from before them gets them filled by its migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from hypothesis import given
from hypothesis import strategies as st

from monitor.analysis.report import report_from_stores
from monitor.analysis.report_json import to_data
from monitor.core.slaprofile import ENTERPRISE, MaintenanceWindow
from monitor.exporter.sla_collector import month_reports
from monitor.storage import rollups
from monitor.storage.filters import RunFilter
from monitor.storage.schema import migrate
from tests.test_rollup import DAY, T0, assert_same, exact_report, results, write

# T0 is Thursday 2026-01-01: 5000 runs 500 s apart reach Thursday 2026-01-29, so the store
# holds a partial week, three whole weeks (Monday 5, 12, 19 January) and a partial one.
RUNS, STEP = 5000, 500.0
MAINTENANCE = (MaintenanceWindow(start=T0 + 12.1 * DAY, end=T0 + 12.2 * DAY),)  # a Tuesday
PERIODS = [
    {},
    {"since": T0 + 0.4 * DAY, "until": T0 + 26.3 * DAY},  # edge days and partial days
    {"since": T0 + 5 * DAY, "until": T0 + 25 * DAY, "maintenance": MAINTENANCE},  # Tuesday on
    {"by": ("network", "job", "location"), "maintenance": MAINTENANCE},
    {"since": T0 + 5 * DAY, "until": T0 + 10.5 * DAY},  # whole days but no whole week
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weeks") / "runs.db"
    write(path, results(RUNS, step=STEP))
    return path


def daily_only(store: Path, tmp_path: Path) -> Path:
    """A copy of the store as it was before the weekly tier (reports read the daily one)."""
    copy = tmp_path / "daily.db"
    src, dst = sqlite3.connect(store), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    with dst:
        dst.execute(f"drop table {rollups.WEEK_TABLE}")
        dst.execute("delete from _migrations where name = '006_weekly_rollups'")
    dst.close()
    return copy


def report_data(path: Path, **kw: object) -> dict:
    data = to_data(report_from_stores([str(path)], **kw))  # type: ignore[arg-type]
    del data["generated_at"], data["sources"]
    return data


def weeks_read(kw: dict) -> bool:
    """The period has a whole week the weekly tier serves."""
    days = RunFilter(since=None if "since" not in kw else -(-kw["since"] // DAY),
                     until=None if "until" not in kw else kw["until"] // DAY)
    return any(table == rollups.WEEK_TABLE for table, _, _ in rollups.split_weeks(days))


@pytest.mark.parametrize("kw", PERIODS)
def test_reports_from_weeks_equal_reports_from_days_and_raw_rows(
        store: Path, tmp_path: Path, kw: dict) -> None:
    assert weeks_read(kw) == (kw.get("until", T0 + 30 * DAY) - kw.get("since", T0) > 14 * DAY)
    from_weeks = report_data(store, **kw)
    assert from_weeks == report_data(daily_only(store, tmp_path), **kw)
    assert from_weeks["period"]["runs"] > 0
    assert_same(exact_report(store, **kw), report_from_stores([str(store)], **kw))


def test_the_month_sla_from_weeks_equals_the_sla_from_days(store: Path, tmp_path: Path) -> None:
    profiles = {f"net-{i}": ENTERPRISE for i in range(3)}
    old = daily_only(store, tmp_path)
    for maintenance in ((), MAINTENANCE):
        got = month_reports([store], profiles, at=T0 + DAY, maintenance=maintenance)
        assert got == month_reports([old], profiles, at=T0 + DAY, maintenance=maintenance)
        assert all(r.runs for r in got)


def weekly_rows(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute(f"select network, target, job, location, metric, bucket, week, n "
                        f"from {rollups.WEEK_TABLE} order by 1, 2, 3, 4, 5, 6, 7").fetchall()


def daily_by_week(conn: sqlite3.Connection) -> list[tuple]:
    rows = conn.execute("select network, target, job, location, metric, bucket, day, n "
                        "from rollup_hist").fetchall()
    weekly: dict[tuple, int] = {}
    for *series, day, n in rows:
        key = (*series, rollups.week_of(day))
        weekly[key] = weekly.get(key, 0) + n
    return sorted((*k, n) for k, n in weekly.items())


def test_the_writer_folds_each_run_into_its_week(store: Path) -> None:
    conn = sqlite3.connect(store)
    try:
        got = weekly_rows(conn)
        assert got == daily_by_week(conn)
        assert {row[6] for row in got} == {rollups.week_of(int(T0 // DAY) + d) for d in range(29)}
        assert len({row[6] for row in got}) == 5
    finally:
        conn.close()


def test_the_migration_fills_the_weeks_of_an_older_store(store: Path, tmp_path: Path) -> None:
    old = daily_only(store, tmp_path)
    assert migrate(sqlite_utils.Database(old)) == ["006_weekly_rollups"]
    conn = sqlite3.connect(old)
    try:
        assert weekly_rows(conn) == daily_by_week(conn) != []
    finally:
        conn.close()
    write(old, results(300, seed=5, start=T0 + 29 * DAY, step=STEP))  # the writer goes on
    conn = sqlite3.connect(old)
    try:
        assert weekly_rows(conn) == daily_by_week(conn)
    finally:
        conn.close()
    assert_same(exact_report(old), report_from_stores([str(old)]))


@given(since=st.none() | st.integers(0, 60), length=st.integers(0, 60),
       unbounded_until=st.booleans(), skip=st.sets(st.integers(-5, 70), max_size=4))
def test_whole_weeks_and_other_days_cover_each_selected_day_once(
        since: int | None, length: int, unbounded_until: bool, skip: set[int]) -> None:
    until = None if unbounded_until else (since or 0) + length
    conn = sqlite3.connect(":memory:")
    conn.execute(f"create table {rollups.WEEK_TABLE} (week integer)")
    conn.execute("create table rollup_hist (day integer)")
    days = range(-10, 80)
    conn.executemany("insert into rollup_hist values (?)", [(d,) for d in days])
    conn.executemany(f"insert into {rollups.WEEK_TABLE} values (?)",
                     [(w,) for w in {rollups.week_of(d) for d in days}])
    read: list[int] = []
    for table, where, params in rollups.split_weeks(RunFilter(since=since, until=until), skip):
        for (value,) in conn.execute(f"select * from {table} where {where}", params):
            if table == rollups.WEEK_TABLE:
                read += range(rollups.week_start(value), rollups.week_start(value) + 7)
            else:
                read.append(value)
    want = [d for d in days if (since is None or d >= since) and (until is None or d < until)
            and d not in skip]
    assert sorted(d for d in read if d in days) == want
    assert len(read) == len(set(read))  # no day read twice
