"""The buyer's report: numbers, intervals, verdicts and cost from real store files."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils

from monitor import cli as depin_cli
from monitor.analysis.report import build_report
from monitor.analysis.stats import quantile_ci, wilson
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import SLAProfile

T0 = 1_790_000_000.0


def result(network: str, i: int, outcome: Outcome = Outcome.OK, ttft: float = 0.2,
           target: str = "small", tokens: int = 100) -> ProbeResult:
    done = outcome in (Outcome.OK, Outcome.WRONG_OUTPUT)
    return ProbeResult(
        network=network, target=target, job="chat-long-v1", model="m", outcome=outcome,
        started_at=T0 + i * 60, ttft_s=ttft if outcome is not Outcome.CONNECT_ERROR else None,
        duration_s=ttft + 5.0 if done else 1.0, tokens_per_s=50.0 if done else None,
        output_tokens=tokens if done else None, input_tokens=1000, location="eu",
        node=f"node-{i % 3}",
    )


def write_store(path: Path, results: list[ProbeResult]) -> str:
    db = sqlite_utils.Database(path)
    rows = []
    for r in results:
        row = r.to_dict()
        row["details"] = json.dumps(row["details"])
        rows.append(row)
    db["probe_results"].insert_all(rows)
    return str(path)


def stable_and_flaky() -> list[ProbeResult]:
    stable = [result("stable", i) for i in range(200)]
    flaky = [result("flaky", i, ttft=0.2 + (i % 10) * 0.4) for i in range(150)]
    flaky += [result("flaky", 200 + i, Outcome.DISCONNECT) for i in range(30)]
    flaky += [result("flaky", 300 + i, Outcome.RATE_LIMITED) for i in range(20)]
    return stable + flaky


def test_availability_rates_and_intervals_are_computed_per_network() -> None:
    report = build_report([r.to_dict() for r in stable_and_flaky()])
    by = {g.key[0]: g for g in report.groups}
    flaky = by["flaky"]
    assert flaky.runs == 200
    assert flaky.availability == pytest.approx(150 / 200)
    assert flaky.availability_excl_rate_limited == pytest.approx(150 / 180)
    assert flaky.availability_ci == pytest.approx(wilson(150, 200))
    assert flaky.disconnect_rate == pytest.approx(30 / 200)
    assert flaky.ttft_p95_s == pytest.approx(3.8)
    assert flaky.nodes == 3
    assert by["stable"].availability == 1.0


def test_verdicts_follow_the_profile_and_flag_uncertainty() -> None:
    report = build_report([r.to_dict() for r in stable_and_flaky()])
    by = {g.key[0]: g for g in report.groups}
    assert by["flaky"].sla_met is False
    missed = {v.sli for v in by["flaky"].verdicts if v.verdict.startswith("misses")}
    assert {"availability", "ttft_p95", "disconnect_rate"} <= missed
    # 200 clean runs cannot prove 99.9 %: the verdict is MEETS, but not yet certain.
    avail = next(v for v in by["stable"].verdicts if v.sli == "availability")
    assert avail.verdict == "meets?"
    assert any("more runs are needed" in n for n in report.notes)


def test_effective_cost_counts_tokens_paid_for_but_not_delivered_well() -> None:
    rows = [result("n", i).to_dict() for i in range(8)]
    rows += [result("n", 10 + i, Outcome.WRONG_OUTPUT).to_dict() for i in range(2)]
    report = build_report(rows, prices={"n": {"input": 0.0, "output": 1.0}})
    g = report.groups[0]
    assert g.list_usd_per_mtok == 1.0
    assert g.effective_usd_per_mtok == pytest.approx(1000 / 800)  # 1000 paid, 800 good


def test_tier_ladder_grouping_by_network_and_target() -> None:
    rows = [result("n", i, target="small").to_dict() for i in range(5)]
    rows += [result("n", i, Outcome.HTTP_ERROR, target="large").to_dict() for i in range(5)]
    report = build_report(rows, by=("network", "target"))
    assert [(g.key, g.availability) for g in report.groups] == [
        (("n", "large"), 0.0), (("n", "small"), 1.0)]


def test_quantile_ci_brackets_the_estimate() -> None:
    values = sorted(float(v) for v in range(1000))
    lo, hi = quantile_ci(values, 0.95)
    assert lo < 949 < hi and hi - lo < 40


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli", "report", *args],
                          capture_output=True, text=True, timeout=60)


def test_report_merges_several_agents_stores_in_every_format(tmp_path: Path) -> None:
    rows = stable_and_flaky()
    a = write_store(tmp_path / "eu.db", rows[:150])
    b = write_store(tmp_path / "us.db", rows[150:])
    out = cli("--db", a, "--db", b, "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {g["group"]["network"]: g["runs"] for g in data["groups"]} == {"flaky": 200,
                                                                         "stable": 200}
    table = cli("--db", a, "--db", b).stdout
    assert "MISSES" in table and "flaky" in table and "stable" in table
    rows_csv = list(csv.DictReader(io.StringIO(cli("--db", a, "--db", b, "--format",
                                                   "csv").stdout)))
    flaky = next(r for r in rows_csv if r["network"] == "flaky")
    assert flaky["outcome_disconnect"] == "30" and flaky["rank"] == "2"
    html_out = tmp_path / "r.html"
    assert cli("--db", a, "--format", "html", "-o", str(html_out)).returncode == 0
    assert "<table>" in html_out.read_text()
    assert "| network |" in cli("--db", a, "--format", "markdown").stdout


def test_since_filters_by_time(tmp_path: Path) -> None:
    db = write_store(tmp_path / "s.db", [result("n", i) for i in range(10)])
    out = cli("--db", db, "--since", "2026-09-22T00:00:00", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["groups"] == []  # every run was on 2026-09-21
    out = cli("--db", db, "--since", "2026-09-21T00:00:00Z", "--format", "json")
    assert json.loads(out.stdout)["groups"][0]["runs"] == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "/nonexistent/x.db"], "--db /nonexistent/x.db: no such file"),
        (["--db", "{db}", "--since", "yesterday"], "--since 'yesterday': expected a duration"),
        (["--db", "{db}", "--by", "colour"], "--by 'colour': choose from"),
        (["--db", "{db}", "--profile", "gold"], "--profile 'gold' is unknown"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    db = write_store(tmp_path / "s.db", [result("n", 0)])
    out = cli(*[a.replace("{db}", db) for a in args])
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and message in out.stderr


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite_utils.Database(path)["t"].insert({"a": 1})
    out = cli("--db", str(path))
    assert out.returncode == 2 and "not a depin-monitor store" in out.stderr


def test_profile_override_changes_verdicts() -> None:
    rows = [result("n", i, ttft=3.0).to_dict() for i in range(50)]
    relaxed = SLAProfile(name="relaxed", availability=0.9, ttft_p95_s=5.0, e2e_p99_s=60.0,
                         disconnect_rate=0.1, decode_tps_min=10.0, wrong_output_rate=0.1)
    assert build_report(rows).groups[0].sla_met is False
    assert build_report(rows, default_profile=relaxed).groups[0].sla_met is True


def test_stores_written_by_the_monitor_are_reported_from_rollups(tmp_path: Path) -> None:
    """A store from `run`/`demo` keeps daily rollups; the report reads those, with the same
    counts as the row-by-row report of the same runs."""
    from monitor.storage.store import Store

    results = stable_and_flaky()
    store = Store(tmp_path / "run.db")
    store.add_many(results)
    store.close()
    raw = write_store(tmp_path / "raw.db", results)
    rolled = json.loads(cli("--db", str(tmp_path / "run.db"), "--format", "json").stdout)
    exact = json.loads(cli("--db", raw, "--format", "json").stdout)
    assert any("rollups" in n for n in rolled["notes"])
    assert not any("rollups" in n for n in exact["notes"])
    for a, b in zip(rolled["groups"], exact["groups"], strict=True):
        assert a["group"] == b["group"] and a["runs"] == b["runs"]
        assert a["availability"] == b["availability"]
        assert a["ttft_p95_s"] == pytest.approx(b["ttft_p95_s"], rel=0.005)
        assert a["sla_met"] == b["sla_met"]


def test_report_runs_is_every_run_as_csv_for_the_provider(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`report --runs`: one CSV line a run, oldest first, over every store, with the error
    text scrubbed of the config's key values and of Bearer tokens (docs/runbooks.md)."""
    monkeypatch.setenv("RUNS_TEST_KEY", "sk-live-9f8e7d6c")
    a = write_store(tmp_path / "a.db", [
        result("flaky", 2, Outcome.HTTP_ERROR), result("stable", 0)])
    failed = dataclasses.replace(result("flaky", 1, Outcome.HTTP_ERROR), http_status=529,
                                 error="HTTP 529 overloaded; echoed sk-live-9f8e7d6c and "
                                       "Bearer abc.def")
    b = write_store(tmp_path / "b.db", [failed])
    config = tmp_path / "c.yaml"
    config.write_text("networks:\n  - {name: flaky, base_url: \"http://127.0.0.1:1/v1\", "
                      "model: m, api_key_env: RUNS_TEST_KEY}\n")
    assert depin_cli.main(["report", "--db", a, "--db", b, "-c", str(config), "--runs",
                     "--network", "flaky"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["started_at", "network", "target", "job", "location", "outcome",
                       "http_status", "error"]
    assert [r[0] for r in rows[1:]] == ["2026-09-21T14:14:20.000Z", "2026-09-21T14:15:20.000Z"]
    first = rows[1]
    assert first[1:7] == ["flaky", "small", "chat-long-v1", "eu", "http_error", "529"]
    assert "sk-live" not in first[7] and "abc.def" not in first[7]
    assert first[7].startswith("HTTP 529 overloaded; echoed ***")
