"""What the status page computes from stored runs: incidents (the definition, and the SQL that
reads only what streaks are made of), per-day outcome counts from rollups or raw rows, and a
network's state now. Real SQLite store files throughout."""

from __future__ import annotations

import math
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.analysis.incidents import (
    failing_now,
    incidents_of,
    read_streaks,
    set_aside,
    streaks,
)
from monitor.analysis.queries import aggregate_stores, daily_outcomes
from monitor.analysis.status import DOWN, UNKNOWN, UP, Plan, daily_bars, network_states
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import MaintenanceWindow
from monitor.storage import rollups
from monitor.storage.filters import RunFilter
from tests.test_rollup import DAY, T0, results, write


def run(outcome: Outcome | str, t: float, network: str = "akash", target: str = "small",
        job: str = "chat-short-v1") -> ProbeResult:
    return ProbeResult(network=network, target=target, job=job, model="m",
                       outcome=Outcome(outcome), started_at=t, location="eu")


# -- the definition ---------------------------------------------------------------------------

def test_an_incident_is_three_failures_in_a_row_ended_by_an_ok_run() -> None:
    seq = ["ok", "timeout", "rate_limited", "disconnect", "timeout", "ok", "http_error",
           "wrong_output"]
    runs = [run(o, T0 + 10 * i) for i, o in enumerate(seq)]
    found = list(streaks(runs))
    (incident,) = incidents_of(found)
    assert (incident.started_at, incident.ended_at) == (T0 + 10, T0 + 50)
    assert incident.failures == 3  # the rate-limited run neither counts nor breaks the streak
    assert incident.outcomes == {"timeout": 2, "disconnect": 1}
    assert incident.outcome == "timeout" and not incident.ongoing
    assert incident.duration_s(now=T0 + 1000) == 40
    # the trailing two failures: not (yet) an incident, but the target is failing now
    assert failing_now(found) == {("akash", "small", "eu"): 2}
    assert incidents_of(found, min_failures=2)[0].ongoing


def test_targets_and_networks_keep_their_own_streaks() -> None:
    runs = []
    for i in range(6):  # large fails every run, small never: interleaved in time
        runs.append(run("timeout", T0 + 2 * i, target="large"))
        runs.append(run("ok", T0 + 2 * i + 1, target="small"))
        runs.append(run("ok", T0 + 2 * i + 1, network="other", target="large"))
    (incident,) = incidents_of(streaks(runs))
    assert (incident.network, incident.target, incident.failures) == ("akash", "large", 6)
    assert incident.ongoing and incident.duration_s(now=T0 + 100) == 100


OUTCOME_CHOICES = st.sampled_from(["ok", "ok", "ok", "timeout", "disconnect", "http_error",
                                   "rate_limited", "wrong_output", "connect_error"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["small", "large"]),
                          st.sampled_from(["chat-short-v1", "json-v1"]), OUTCOME_CHOICES,
                          st.integers(0, 40)), max_size=60))
def test_the_stores_shortcut_finds_exactly_the_definitions_streaks(
        draws: list[tuple[str, str, str, int]]) -> None:
    runs = [run(o, T0 + 5 * t + i * 1e-3, target=target, job=job)
            for i, (target, job, o, t) in enumerate(draws)]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        write(db, runs)
        got = read_streaks([db], since=T0)
    key = lambda s: (s.target, s.started_at)  # noqa: E731
    assert sorted(got, key=key) == sorted(streaks(runs), key=key)


# -- outcome counts per day -------------------------------------------------------------------

def counted(rs: list[ProbeResult], windows: list[MaintenanceWindow]
            ) -> dict[tuple[str, int], tuple[Counter[str], Counter[str]]]:
    out: dict[tuple[str, int], tuple[Counter[str], Counter[str]]] = {}
    for r in rs:
        kept, excluded = out.setdefault((r.network, math.floor(r.started_at / DAY)),
                                        (Counter(), Counter()))
        inside = any(w.covers(r.network, r.started_at) for w in windows)
        (excluded if inside else kept)[r.outcome.value] += 1
    return out


@pytest.mark.parametrize("folded", ["all", "none", "no rollup tables"])
def test_daily_outcomes_count_each_day_from_rollups_or_raw_rows(tmp_path: Path,
                                                                folded: str) -> None:
    rs = results(4000, step=170.0)  # about eight days
    db = tmp_path / "runs.db"
    write(db, rs)
    conn = sqlite3.connect(db)
    with conn:
        if folded == "none":  # rollup tables there, nothing folded yet
            for table in ("rollup_runs", "rollup_hist", "rollup_nodes"):
                conn.execute(f"delete from {table}")
            conn.execute("update rollup_state set rolled_rowid = 0")
        elif folded == "no rollup tables":  # a store from before migration 002
            for table in rollups.TABLES:
                conn.execute(f"drop table {table}")
    conn.close()
    windows = [MaintenanceWindow(T0 + 2.5 * DAY, T0 + 3.2 * DAY, networks=("net-1",))]
    since = T0 + 0.5 * DAY  # a partial first day
    got = daily_outcomes([db], since=since, until=T0 + 7 * DAY, maintenance=windows)
    want = counted([r for r in rs if since <= r.started_at < T0 + 7 * DAY], windows)
    assert {k: (v.kept, v.excluded) for k, v in got.items()} == want
    assert any(v[1] for v in want.values())  # the window did hold runs


@pytest.mark.parametrize("folded", ["all", "none"])
def test_the_report_and_the_status_page_count_each_day_alike(tmp_path: Path,
                                                             folded: str) -> None:
    """The report's daily availability (and credits) and the status page's daily bars read
    the same counts, partial first and last days and a maintenance day included."""
    rs = results(4000, step=170.0)  # about eight days
    db = tmp_path / "runs.db"
    write(db, rs)
    if folded == "none":
        conn = sqlite3.connect(db)
        with conn:
            for table in ("rollup_runs", "rollup_hist", "rollup_nodes"):
                conn.execute(f"delete from {table}")
            conn.execute("update rollup_state set rolled_rowid = 0")
        conn.close()
    windows = [MaintenanceWindow(T0 + 2.5 * DAY, T0 + 3.2 * DAY, networks=("net-1",))]
    since, until = T0 + 0.4 * DAY, T0 + 6.7 * DAY  # partial first and last days
    report = aggregate_stores([db], runs=RunFilter(since=since, until=until),
                              maintenance=windows)
    page = daily_outcomes([db], since=since, until=until, maintenance=windows)
    assert report.daily.days() == page
    first, last = math.floor(since / DAY), math.floor(until / DAY)
    assert {d for _, d in page} == set(range(first, last + 1))
    want = counted([r for r in rs if since <= r.started_at < until], windows)
    assert {k: (v.kept, v.excluded) for k, v in page.items()} == want


def test_daily_bars_leave_set_aside_and_maintenance_runs_out_of_availability(
        tmp_path: Path) -> None:
    rs = results(3000, step=170.0)
    db = tmp_path / "runs.db"
    write(db, rs)
    windows = [MaintenanceWindow(T0 + DAY, T0 + 2 * DAY)]
    now = T0 + 5 * DAY + 3600
    bars = daily_bars([db], ["net-0"], days=7, now=now, maintenance=windows)["net-0"]
    assert [b.day for b in bars] == list(range(int(T0 // DAY) - 1, int(T0 // DAY) + 6))
    assert bars[0].runs == 0 and bars[0].availability is None
    maintenance_day = bars[2]
    assert maintenance_day.maintenance > 0 and maintenance_day.ok == 0
    for bar in bars[3:]:
        day = [r for r in rs if r.network == "net-0" and math.floor(r.started_at / DAY) == bar.day
               and r.started_at < now]
        ok = sum(r.outcome is Outcome.OK for r in day)
        judged = sum(not set_aside(r.outcome) for r in day)
        assert bar.runs == len(day) and bar.availability == pytest.approx(ok / judged)
        limited = sum(r.outcome is Outcome.RATE_LIMITED for r in day)
        assert bar.set_aside == ({"rate_limited": limited} if limited else {})


# -- the state now ---------------------------------------------------------------------------

def test_network_states_follow_the_latest_runs_of_every_target(tmp_path: Path) -> None:
    now = T0 + 10_000
    rs = []
    for i in range(10):
        t = now - 100 + 10 * i
        rs.append(run("ok", t, network="good", target="small"))
        rs.append(run("ok", t, network="half", target="small"))
        rs.append(run("ok" if i < 8 else "timeout", t, network="half", target="large"))
        rs.append(run("ok" if i < 5 else "connect_error", t, network="dead", target="small"))
        rs.append(run("ok" if i < 5 else "rate_limited", t, network="limited", target="small"))
    rs.append(run("ok", now - 5000, network="quiet", target="small"))
    db = tmp_path / "runs.db"
    write(db, rs)
    plans = {name: Plan(("small",), 10.0) for name in ("good", "dead", "limited", "quiet",
                                                        "never")}
    plans["half"] = Plan(("small", "large"), 10.0)
    states = network_states([db], plans, now=now)
    assert states["good"].state == UP and states["limited"].state == UP
    assert states["half"].state == "degraded"
    assert states["half"].failing == {"large": 2} and "large (2 in a row)" in states["half"].reason
    assert states["dead"].state == DOWN and states["dead"].failing == {"small": 5}
    assert states["quiet"].state == UNKNOWN and states["quiet"].reason == "no run in the last 1h"
    assert states["never"].state == UNKNOWN and states["never"].last_run_at is None
    assert states["good"].last_run_at == pytest.approx(now - 10)

