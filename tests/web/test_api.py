"""/api/v1/ over HTTP against the real server and a store the real scheduler filled: every
figure checked against the stored runs, paging, filters, errors, and no secret anywhere."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import httpx
import pytest

from monitor.analysis.incidents import incidents_of, set_aside, streaks
from monitor.analysis.sla import month_bounds
from monitor.analysis.status import STATES
from monitor.core.result import Outcome, ProbeResult
from monitor.storage.reads import open_store
from tests.web.conftest import GAP_DAYS, KEY, KEY_ENV, Seeded, Served

DAY_S = 86400


def stored(db: Path) -> list[ProbeResult]:
    reader = open_store(db)
    try:
        return list(reader.results())
    finally:
        reader.close()


@pytest.fixture(scope="module")
def runs(seeded: Seeded) -> list[ProbeResult]:
    return stored(seeded.db)


def get(served: Served, path: str, status: int = 200) -> dict:
    r = httpx.get(f"{served.url}{path}", timeout=30)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def test_networks_list_the_configured_networks_with_a_state(served: Served,
                                                            runs: list[ProbeResult]) -> None:
    body = get(served, "/api/v1/networks")
    nets = {n["name"]: n for n in body["networks"]}
    assert list(nets) == ["steady", "flaky", "outage"]  # the config's order
    assert body["location"] == "test-lab"
    for name, net in nets.items():
        assert net["state"] in STATES
        assert net["targets"] == [{"name": "small", "model": "sim-llama-3.1-8b-instruct"}]
        assert net["jobs"] == ["chat-short-v1"] and net["sla_profile"] == "standard"
        last = max(r.started_at for r in runs if r.network == name and r.started_at <= served.now)
        assert net["last_run_at"] == pytest.approx(last)
    assert nets["steady"]["state"] == "up" and nets["steady"]["failing"] == {}
    # the latest model equality verdict of each network's comparisons (docs/equality.md)
    assert nets["steady"]["model_equality"] == []
    assert nets["flaky"]["model_equality"] == [{
        "model": "sim-llama-3.1-8b-instruct", "reference": "baseline", "verdict": "differs",
        "p_value": 0.000999, "alpha": 0.01, "samples": 250, "reference_samples": 248,
        "tested_at": 1_790_000_000.0, "differs_in_a_row": 2, "prompt_set": "continue-v1"}]
    # the latest quality audit of each network's comparisons (docs/quality.md)
    assert nets["steady"]["quality"] == []
    (audit,) = nets["flaky"]["quality"]
    assert audit["verdict"] == "worse than reference" and audit["reference"] == "baseline"
    assert (audit["accuracy"], audit["reference_accuracy"]) == (60 / 90, 80 / 90)
    assert audit["difference_ci"][0] < audit["difference"] < audit["difference_ci"][1] < 0
    assert audit["consecutive_worse"] == 2 and audit["audits"] == 1
    # the latest fingerprint of each network's models, with the day it changed
    assert nets["steady"]["fingerprint"] == []
    (printed,) = nets["outage"]["fingerprint"]
    assert printed["summary"] == "the model behind this name changed on 2026-09-22"
    assert (printed["verdict"], printed["p_value"], printed["runs"]) == ("changed", 0.0005, 2)
    # the state follows the latest judged runs of the target
    for name, net in nets.items():
        judged = [r for r in runs if r.network == name and not set_aside(r.outcome)]
        latest = max(judged, key=lambda r: r.started_at)
        assert (latest.outcome is Outcome.OK) == (net["state"] == "up"), (name, net)


def test_fingerprint_lists_each_model_worst_first(served: Served) -> None:
    body = get(served, "/api/v1/fingerprint")
    (row,) = body["fingerprints"]
    assert (row["network"], row["changed_on"], row["method"]) == (
        "outage", ["2026-09-22"], "logprobs")
    assert get(served, "/api/v1/fingerprint?network=steady")["fingerprints"] == []
    assert "/api/v1/fingerprint" in get(served, "/api/v1/")["resources"]


def test_daily_bars_count_every_stored_run_of_each_day(served: Served,
                                                       runs: list[ProbeResult]) -> None:
    body = get(served, "/api/v1/daily?days=90")
    today = math.floor(served.now / DAY_S)
    for net in body["networks"]:
        days = net["days"]
        assert len(days) == 90
        assert days[-1]["date"] == _date(today) and days[0]["date"] == _date(today - 89)
        expected: dict[str, Counter[str]] = {}
        for r in runs:
            if r.network == net["name"] and r.started_at >= (today - 89) * DAY_S:
                expected.setdefault(_date(math.floor(r.started_at / DAY_S)), Counter())[
                    r.outcome.value] += 1
        for day in days:
            counts = expected.get(day["date"], Counter())
            assert day["runs"] == sum(counts.values())
            assert day["ok"] == counts["ok"]
            assert day["set_aside"] == {o: n for o, n in counts.items() if set_aside(o)}
            assert day["failed"] == day["runs"] - day["ok"] - sum(day["set_aside"].values())
            if day["ok"] + day["failed"]:
                assert day["availability"] == pytest.approx(day["ok"] / (day["ok"] + day["failed"]))
            else:
                assert day["availability"] is None
        gaps = {_date(today - d) for d in GAP_DAYS}
        assert all(d["runs"] == 0 for d in days if d["date"] in gaps)
        assert sum(d["runs"] > 0 for d in days) == 90 - len(GAP_DAYS)


def _date(day: int) -> str:
    import datetime as dt
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def test_ttft_series_reads_the_last_day_in_steps(served: Served,
                                                 runs: list[ProbeResult]) -> None:
    body = get(served, "/api/v1/ttft?hours=24&step=3600")
    for net in body["networks"]:
        points = net["points"]
        assert len(points) in (24, 25)  # steps aligned to the hour
        assert [p["start"] for p in points] == sorted(p["start"] for p in points)
        seen = [r.ttft_s for r in runs if r.network == net["name"] and r.ttft_s is not None
                and body["since"] <= r.started_at < served.now]
        assert sum(p["runs"] for p in points) == len(seen)
        for p in points:
            if p["runs"]:
                assert p["p50_s"] <= p["p95_s"]
    steady = next(n for n in body["networks"] if n["name"] == "steady")
    assert sum(p["runs"] > 0 for p in steady["points"]) >= 20  # a line, not a dot


def test_sla_is_this_months_figure_from_the_store(served: Served,
                                                  runs: list[ProbeResult]) -> None:
    body = get(served, "/api/v1/sla")
    start, end = month_bounds(served.now)
    assert body["period"] == {"start": start, "end": end}
    for net in body["networks"]:
        month = [r for r in runs if r.network == net["name"] and start <= r.started_at < end]
        ok = sum(r.outcome is Outcome.OK for r in month)
        assert net["runs"] == len(month) and net["ok"] == ok
        assert net["availability"] == pytest.approx(ok / len(month))
        availability = next(s for s in net["slis"] if s["sli"] == "availability")
        assert availability["target"] == 0.99  # the standard profile
        assert net["error_budget_remaining"] == pytest.approx(
            1 - (1 - ok / len(month)) / (1 - 0.99))
        assert net["attained"] == all(s["attained"] for s in net["slis"]
                                      if s["attained"] is not None)


def test_incidents_are_the_definitions_streaks(served: Served,
                                               runs: list[ProbeResult]) -> None:
    body = get(served, f"/api/v1/incidents?since={served.now - 7 * DAY_S}&limit=1000")
    window = [r for r in runs if served.now - 7 * DAY_S <= r.started_at]
    expected = incidents_of(streaks(window))
    assert body["total"] == len(expected) > 0
    got = [(i["network"], i["target"], i["started_at"], i["ended_at"], i["failures"],
            i["outcome"]) for i in body["incidents"]]
    assert got == [(i.network, i.target, i.started_at, i.ended_at, i.failures, i.outcome)
                   for i in expected]
    assert {i["network"] for i in body["incidents"]} <= {"flaky", "outage"}
    outage = [i for i in body["incidents"] if i["network"] == "outage"]
    assert outage, "the churning network had no incident"
    assert {i["outcome"] for i in outage} <= {"connect_error", "disconnect", "timeout"}
    for i in body["incidents"]:
        assert i["failures"] >= 3 and sum(i["outcomes"].values()) == i["failures"]
        assert i["ongoing"] == (i["ended_at"] is None)
        end = served.now if i["ongoing"] else i["ended_at"]
        assert i["duration_s"] == pytest.approx(end - i["started_at"])
    only = get(served, "/api/v1/incidents?since=7d&network=outage&limit=2")
    assert only["total"] == len(outage) and len(only["incidents"]) == min(2, len(outage))
    assert all(i["network"] == "outage" for i in only["incidents"])


def test_results_page_through_every_run_once_newest_first(served: Served,
                                                          runs: list[ProbeResult]) -> None:
    since = served.now - 2 * DAY_S
    url = f"/api/v1/results?network=flaky&since={since}&limit=10"
    seen: list[tuple[float, str]] = []
    pages = 0
    while url:
        body = get(served, url)
        assert len(body["results"]) <= 10
        seen += [(r["started_at"], r["outcome"]) for r in body["results"]]
        assert all(r["network"] == "flaky" for r in body["results"])
        url = body["next"]
        pages += 1
    expected = sorted(((r.started_at, r.outcome.value) for r in runs
                       if r.network == "flaky" and r.started_at >= since), reverse=True)
    assert seen == expected and pages > 2


def test_results_filter_by_outcome_and_show_no_free_text(served: Served,
                                                         runs: list[ProbeResult]) -> None:
    body = get(served, "/api/v1/results?outcome=connect_error&outcome=disconnect&limit=1000")
    want = sum(r.outcome.value in ("connect_error", "disconnect") for r in runs)
    assert len(body["results"]) == min(want, 1000) > 0
    assert {r["outcome"] for r in body["results"]} <= {"connect_error", "disconnect"}
    assert all("error" not in r and "details" not in r for r in body["results"])


@pytest.mark.parametrize(("path", "status", "says"), [
    ("/api/v1/results?limit=0", 400, "limit"),
    ("/api/v1/results?limit=many", 400, "limit"),
    ("/api/v1/results?cursor=xyz", 400, "cursor"),
    ("/api/v1/results?since=yesterday", 400, "since"),
    ("/api/v1/daily?days=9999", 400, "days"),
    ("/api/v1/sla?network=nope", 404, "unknown network 'nope'"),
    ("/api/v1/everything", 404, "no such API resource"),
])
def test_bad_requests_say_what_to_fix(served: Served, path: str, status: int,
                                      says: str) -> None:
    assert says in get(served, path, status)["error"]


def test_no_secret_or_config_internal_in_any_answer(served: Served, seeded: Seeded) -> None:
    bodies = [httpx.get(f"{served.url}{p}", timeout=30).text for p in (
        "/api/v1/", "/api/v1/networks", "/api/v1/daily", "/api/v1/ttft", "/api/v1/sla",
        "/api/v1/incidents", "/api/v1/results?limit=1000", "/", "/api/v1/maintenance",
        "/api/v1/networks/flaky", "/api/v1/feed.atom", "/api/v1/networks/outage/feed.atom",
        "/api/v1/networks/flaky/badges/state.svg", "/network/flaky")]
    ports = {n.base_url.rsplit(":", 1)[1].split("/")[0] for n in seeded.config.networks}
    for text in bodies:
        assert KEY not in text and KEY_ENV not in text
        assert "base_url" not in text and "/v1/chat" not in text
        assert seeded.config.path not in text and str(seeded.db) not in text
        assert not any(f"127.0.0.1:{port}" in text for port in ports)


def test_the_page_and_its_assets_come_from_this_server_only(served: Served) -> None:
    page = httpx.get(f"{served.url}/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    texts = [page.text]
    texts.append(httpx.get(f"{served.url}/network/flaky", timeout=30).text)
    for asset in ("/static/status.js", "/static/status.css", "/static/network.js"):
        r = httpx.get(f"{served.url}{asset}", timeout=30)
        assert r.status_code == 200
        assert "default-src 'self'" in r.headers["content-security-policy"]
        texts.append(r.text)
    for text in texts:
        # the SVG namespace is a name, not a fetch; nothing may point off this server
        assert set(re.findall(r"https?://[^\s\"'`)]+", text)) <= {"http://www.w3.org/2000/svg"}
        assert not re.search(r"(src|href)=\"//|url\(", text)


def test_quality_lists_the_latest_audit_of_each_comparison(served: Served) -> None:
    body = get(served, "/api/v1/quality")
    (audit,) = body["audits"]
    assert audit["network"] == "flaky" and audit["model"] == "sim-llama-3.3-70b-instruct"
    assert audit["pairs"] == audit["items"] == 90 and audit["p_value"] < audit["alpha"]
    assert sum(c["pairs"] for c in audit["by_family"].values()) == 90
    assert get(served, "/api/v1/quality?network=steady")["audits"] == []
    assert "/api/v1/quality" in get(served, "/api/v1/")["resources"]
