"""SLA maths with worked numbers (the same ones docs/sla.md walks through)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlite_utils

from monitor.analysis.sla import (
    budget_remaining,
    burn_rate,
    evaluate,
    evaluate_month,
    evaluate_rolling,
    month_bounds,
)
from monitor.analysis.stats import nearest_rank
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import BUILTIN_PROFILES, MaintenanceWindow, SLAProfile
from monitor.exporter.sla_collector import month_figures_source
from monitor.exporter.sla_collector import month_reports as evaluate_store_month

ENTERPRISE = BUILTIN_PROFILES["enterprise"]
MARCH_2024 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp()


def run(outcome: Outcome = Outcome.OK, t: float = MARCH_2024 + 3600, **kw: object) -> ProbeResult:
    base: dict[str, object] = dict(network="akash", target="small", job="chat-short-v1",
                                   model="m", outcome=outcome, started_at=t, ttft_s=0.5,
                                   duration_s=3.0, tokens_per_s=40.0)
    base.update(kw)
    return ProbeResult(**base)  # type: ignore[arg-type]


def test_worked_example_month_burn_and_budget() -> None:
    # 10 000 runs this month, 15 failed: 99.85 % < 99.9 %; the 0.1 % budget is burnt 1.5 times
    rows = [run(t=MARCH_2024 + i * 60) for i in range(9985)]
    rows += [run(Outcome.HTTP_ERROR, t=MARCH_2024 + 600_000 + i, ttft_s=None) for i in range(15)]
    report = evaluate_month(rows, ENTERPRISE, network="akash", at=MARCH_2024 + 86400)
    avail = report.sli("availability")
    assert avail is not None
    assert report.runs == 10_000 and avail.bad == 15
    assert report.availability == pytest.approx(0.9985)
    assert avail.burn_rate == pytest.approx(1.5)
    assert avail.budget_remaining == pytest.approx(-0.5)
    assert avail.attained is False and report.attained is False


def test_burn_rate_thresholds_of_the_workbook() -> None:
    # 1 failure in 60 runs over 1 h against 99.9 %: burn 16.7 > 14.4, a page-level burn
    assert burn_rate(1 / 60, 0.999) == pytest.approx(16.667, rel=1e-3)
    # at burn 1 the budget lasts exactly the window; at 14.4, 2 % of it goes in one hour
    assert burn_rate(0.001, 0.999) == pytest.approx(1.0)
    assert pytest.approx(0.02) == 14.4 * 1 / (30 * 24)
    assert budget_remaining(0.0005, 0.999) == pytest.approx(0.5)
    assert burn_rate(None, 0.999) is None


def test_availability_with_and_without_rate_limited_runs() -> None:
    rows = [run() for _ in range(96)] + [run(Outcome.RATE_LIMITED, ttft_s=None)] * 3
    rows += [run(Outcome.TIMEOUT, ttft_s=None)]
    report = evaluate(rows, ENTERPRISE, network="akash", start=MARCH_2024, end=MARCH_2024 + 1e7)
    assert report.availability == pytest.approx(0.96)
    assert report.availability_excl_rate_limited == pytest.approx(96 / 97)


def test_latency_percentiles_agree_with_their_budget() -> None:
    # 100 runs, 5 slower than 2 s: p95 (nearest rank) is still <= 2 s, and so is the budget
    ttfts = [0.5] * 95 + [3.0] * 5
    rows = [run(ttft_s=v) for v in ttfts]
    ttft = evaluate(rows, ENTERPRISE, network="akash", start=0, end=1e10).sli("ttft_p95")
    assert ttft is not None
    assert ttft.value == 0.5 and ttft.bad == 5 and ttft.attained is True
    assert ttft.budget_remaining == pytest.approx(0.0)
    rows.append(run(ttft_s=3.0))  # one more slow run tips both
    ttft = evaluate(rows, ENTERPRISE, network="akash", start=0, end=1e10).sli("ttft_p95")
    assert ttft is not None and ttft.value == 3.0 and ttft.attained is False


def test_e2e_decode_disconnect_and_wrong_output() -> None:
    rows = [run(duration_s=5.0, tokens_per_s=30.0) for _ in range(98)]
    rows.append(run(Outcome.DISCONNECT, duration_s=0.4, tokens_per_s=5.0))  # not completed
    rows.append(run(Outcome.WRONG_OUTPUT, duration_s=40.0, tokens_per_s=10.0))
    rows.append(run(Outcome.WRONG_OUTPUT, duration_s=6.0, tokens_per_s=10.0))
    report = evaluate(rows, ENTERPRISE, network="akash", start=0, end=1e10)
    e2e, decode = report.sli("e2e_p99"), report.sli("decode_tps")
    disc, wrong = report.sli("disconnect_rate"), report.sli("wrong_output_rate")
    # 1 of 100 completed runs over 30 s: exactly the 1 % a p99 allows
    assert e2e is not None and e2e.total == 100 and e2e.bad == 1 and e2e.attained is True
    assert e2e.value == 6.0  # nearest-rank p99 of 100 values: the 99th smallest
    assert decode is not None and decode.value == 30.0 and decode.attained is True
    assert disc is not None and disc.error_ratio == pytest.approx(1 / 101) and not disc.attained
    assert wrong is not None and wrong.total == 100 and wrong.bad == 2
    assert wrong.attained is False  # 2 % > 1 %


def test_calendar_month_counts_only_this_month() -> None:
    start, end = month_bounds(dt.datetime(2024, 2, 15, tzinfo=dt.UTC).timestamp())
    assert (end - start) / 86400 == 29  # leap February
    feb_end = dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp()
    assert end == feb_end
    rows = [run(Outcome.TIMEOUT, t=feb_end - 1)] + [run(t=feb_end + i) for i in range(10)]
    march = evaluate_month(rows, ENTERPRISE, network="akash", at=feb_end + 5)
    assert march.runs == 10 and march.availability == 1.0


def test_maintenance_windows_are_excluded() -> None:
    outage = MaintenanceWindow(start=MARCH_2024 + 7200, end=MARCH_2024 + 10800,
                               networks=("akash",), reason="driver upgrade")
    rows = [run(t=MARCH_2024 + i * 60) for i in range(1000)]
    rows += [run(Outcome.CONNECT_ERROR, t=MARCH_2024 + 7200 + i, ttft_s=None)
             for i in range(50)]
    without = evaluate_month(rows, ENTERPRISE, network="akash", at=MARCH_2024)
    assert without.attained is False and without.excluded_runs == 0
    other_net = MaintenanceWindow(start=outage.start, end=outage.end, networks=("ionet",))
    judged = evaluate_month(rows, ENTERPRISE, network="akash", at=MARCH_2024,
                            maintenance=[other_net])
    assert judged.excluded_runs == 0 and judged.sli("availability").attained is False
    judged = evaluate_month(rows, ENTERPRISE, network="akash", at=MARCH_2024,
                            maintenance=[outage])
    assert judged.attained is True and judged.excluded_runs == 50 + 60  # 60 ok runs too


def test_rolling_window_and_no_data() -> None:
    now = MARCH_2024 + 40 * 86400
    rows = [run(Outcome.TIMEOUT, t=MARCH_2024), run(t=now - 100)]
    report = evaluate_rolling(rows, ENTERPRISE, network="akash", now=now)
    assert report.runs == 1 and report.attained is True
    empty = evaluate_rolling([], ENTERPRISE, network="akash", now=now)
    assert empty.attained is None and empty.availability is None


def test_nearest_rank() -> None:
    assert nearest_rank([], 0.95) is None
    assert nearest_rank([3, 1, 2], 0.5) == 2
    assert nearest_rank(list(range(1, 101)), 0.95) == 95


def test_store_adapter_and_month_figures(tmp_path) -> None:
    db = sqlite_utils.Database(tmp_path / "s.db")
    now = dt.datetime.now(dt.UTC).timestamp()
    db["probe_results"].insert_all(
        {k: v for k, v in run(outcome, t=now - 1).to_dict().items() if k != "details"}
        for outcome in [Outcome.OK] * 9 + [Outcome.DISCONNECT]
    )
    profile = SLAProfile(name="p", availability=0.8)
    (report,) = evaluate_store_month([tmp_path / "s.db"], {"akash": profile}, at=now)
    assert report.runs == 10 and report.availability == pytest.approx(0.9)
    (figure,) = month_figures_source(tmp_path / "s.db", {"akash": profile})()
    assert figure.attained["availability"] is True
    assert figure.budget_remaining["availability"] == pytest.approx(0.5)


def test_stored_runs_are_judged_like_runs_in_memory(tmp_path) -> None:
    outcomes = [Outcome.OK, Outcome.DISCONNECT, Outcome.WRONG_OUTPUT, Outcome.RATE_LIMITED,
                Outcome.TIMEOUT]
    rows = [run(outcomes[i % 5], t=MARCH_2024 + i * 10, ttft_s=None if i % 7 == 0 else i / 50,
                duration_s=i / 3, tokens_per_s=None if i % 11 == 0 else float(i % 40))
            for i in range(500)]
    rows.append(run(network="other"))
    db = sqlite_utils.Database(tmp_path / "s.db")
    db["probe_results"].insert_all(
        {k: v for k, v in r.to_dict().items() if k != "details"} for r in rows)
    window = MaintenanceWindow(start=MARCH_2024 + 1000, end=MARCH_2024 + 2000)
    (sql,) = evaluate_store_month([tmp_path / "s.db"], {"akash": ENTERPRISE}, at=MARCH_2024,
                                  maintenance=[window])
    py = evaluate_month(rows, ENTERPRISE, network="akash", at=MARCH_2024, maintenance=[window])
    assert sql.runs == py.runs == 400 and sql.excluded_runs == py.excluded_runs == 100
    for a, b in zip(sql.slis, py.slis, strict=True):
        assert (a.sli, a.total, a.bad, a.attained) == (b.sli, b.total, b.bad, b.attained)


def test_month_counts_read_through_merged_stores(tmp_path) -> None:
    """A report over several agents' files sees their runs."""
    from monitor.storage.store import Store

    now = 1_790_000_000.0
    for name in ("eu", "us"):
        store = Store(tmp_path / f"{name}.db")
        store.add_many(ProbeResult(network="n", target="small", job="chat-short-v1", model="m",
                                   outcome=Outcome.OK, started_at=now + i, ttft_s=0.1,
                                   duration_s=0.2) for i in range(4))
        store.close()
    (counts,) = evaluate_store_month([tmp_path / "eu.db", tmp_path / "us.db"],
                                     {"n": BUILTIN_PROFILES["enterprise"]}, at=now)
    assert counts.runs == 8 and counts.ok == 8


def test_month_figures_can_be_read_from_a_scrape_thread(tmp_path) -> None:
    """/metrics renders off the event loop: the store-backed SLA source must work there."""
    import threading
    import time as _time

    from monitor.storage.store import Store

    store = Store(tmp_path / "s.db")
    store.add_many(ProbeResult(network="n", target="small", job="chat-short-v1", model="m",
                               outcome=Outcome.OK, started_at=_time.time() - i, ttft_s=0.1,
                               duration_s=0.2) for i in range(3))
    store.flush()
    source = month_figures_source(store.path, {"n": BUILTIN_PROFILES["enterprise"]})
    figures: list = []
    worker = threading.Thread(target=lambda: figures.extend(source()))
    worker.start()
    worker.join(10)
    store.close()
    assert [(f.network, f.runs, f.availability) for f in figures] == [("n", 3, 1.0)]


def test_month_figures_from_rollups_match_the_row_by_row_counts(tmp_path) -> None:
    """The scrape-time month reads the store's daily rollups, with the counts of the rows."""
    import time as _time

    from monitor.analysis import sla
    from monitor.core.result import Outcome, ProbeResult
    from monitor.storage.store import Store

    profile = BUILTIN_PROFILES["enterprise"]
    now = _time.time()
    start, _ = sla.month_bounds(now)
    t0 = max(start + 1, now - 3 * 86400)
    results = [ProbeResult(network="n", target="small", job="chat-short-v1", model="m",
                           outcome=Outcome.DISCONNECT if i % 10 == 0 else Outcome.OK,
                           started_at=t0 + i * 600, ttft_s=0.5 + (i % 7),
                           duration_s=1.0 + i % 5, tokens_per_s=15.0 + i % 20)
               for i in range(min(300, int((now - t0) / 600)))]
    store = Store(tmp_path / "s.db")
    store.add_many(results)
    store.flush()
    exact = sla.evaluate_month(results, profile, network="n", at=now)
    rolled = month_figures_source(store.path, {"n": profile})()[0]
    store.close()
    assert rolled.runs == exact.runs > 0
    assert rolled.availability == exact.availability
    figure = exact.figure()
    assert rolled.attained == figure.attained
    assert rolled.budget_remaining == pytest.approx(figure.budget_remaining)
