"""Runs refused for the monitor's own account (auth_error, quota_exhausted), from a reference
network refusing a key or running out of credits under `depin-monitor probe`, to the network's
availability, error budget and disconnect rate left exactly as they were everywhere a buyer or
an operator reads them: the store's month SLA, the report (from rollups and from raw rows), the
status page; and they stay visible beside it. The PromQL side is in tests/promtool_cases.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.analysis.incidents import incidents_of, read_streaks
from monitor.analysis.status import daily_bars
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.exporter.sla_collector import month_reports
from monitor.storage.store import Store
from tests.test_probe_cli import cli, simulate
from tests.test_report import result, write_store

T0 = 1_790_000_000.0  # mid-month (2026-09-21)
ENTERPRISE = BUILTIN_PROFILES["enterprise"]


def network_runs() -> list[ProbeResult]:
    """What the network did: 190 ok runs and 10 that dropped mid-stream."""
    return ([result("akash", i) for i in range(190)]
            + [result("akash", 190 + i, Outcome.DISCONNECT) for i in range(10)])


def refused(i: int, outcome: Outcome, status: int) -> ProbeResult:
    """A run the network refused at once for the account: no token, no TTFT."""
    return ProbeResult(network="akash", target="small", job="chat-long-v1", model="m",
                       outcome=outcome, started_at=T0 + i * 60, http_status=status,
                       duration_s=0.05, location="eu", error=f"HTTP {status}: refused")


def refused_runs() -> list[ProbeResult]:
    """The monitor's key revoked for a while, then its credits gone."""
    return ([refused(300 + i, Outcome.AUTH_ERROR, 401) for i in range(50)]
            + [refused(400 + i, Outcome.QUOTA_EXHAUSTED, 402) for i in range(20)])


def store_of(path: Path, results: list[ProbeResult]) -> Path:
    store = Store(path)  # the monitor's own writer: rows and daily rollups
    store.add_many(results)
    store.close()
    return path


def report_json(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "report", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_store_month_sla_ignores_refused_runs(tmp_path: Path) -> None:
    clean = store_of(tmp_path / "clean.db", network_runs())
    mixed = store_of(tmp_path / "mixed.db", network_runs() + refused_runs())
    (before,) = month_reports([clean], {"akash": ENTERPRISE}, at=T0)
    (after,) = month_reports([mixed], {"akash": ENTERPRISE}, at=T0)
    assert after.runs == before.runs == 200 and after.ok == 190
    assert after.availability == before.availability == pytest.approx(0.95)
    assert after.figure().budget_remaining == before.figure().budget_remaining
    assert after.sli("disconnect_rate") == before.sli("disconnect_rate")
    assert after.buyer_side == 70 and before.buyer_side == 0


@pytest.mark.parametrize("writer", ["monitor", "raw rows"])
def test_the_report_shows_refused_runs_beside_an_unchanged_availability(
        tmp_path: Path, writer: str) -> None:
    def write(name: str, results: list[ProbeResult]) -> str:
        if writer == "monitor":
            return str(store_of(tmp_path / name, results))
        return write_store(tmp_path / name, results)

    clean = report_json("--db", write("clean.db", network_runs()), "--format", "json")
    mixed = report_json("--db", write("mixed.db", network_runs() + refused_runs()),
                        "--format", "json")
    (before,), (after,) = clean["groups"], mixed["groups"]
    for field in ("availability", "availability_ci", "availability_excl_rate_limited",
                  "disconnect_rate", "verdicts", "sla_met"):
        assert after[field] == before[field], field
    assert after["availability"] == pytest.approx(0.95)
    assert after["runs"] == 270 and after["buyer_side"] == 70 and before["buyer_side"] == 0
    assert after["outcomes"]["auth_error"] == 50 and after["outcomes"]["quota_exhausted"] == 20
    assert any("key/credits" in note for note in mixed["notes"])
    assert not any("key/credits" in note for note in clean["notes"])


def test_the_report_table_has_a_key_credits_column(tmp_path: Path) -> None:
    db = write_store(tmp_path / "mixed.db", network_runs() + refused_runs())
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "report", "--db", db,
                          "--format", "csv"], capture_output=True, text=True, timeout=60)
    header, row = out.stdout.splitlines()[:2]
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert cells["buyer_side"] == "70" and float(cells["availability"]) == pytest.approx(0.95)
    assert cells["outcome_auth_error"] == "50" and cells["outcome_quota_exhausted"] == "20"


def test_the_status_page_counts_refused_runs_apart(tmp_path: Path) -> None:
    db = store_of(tmp_path / "mixed.db", network_runs() + refused_runs())
    (bar,) = daily_bars([db], ["akash"], days=1, now=T0 + 500 * 60)["akash"]
    # the day's bar: the network's runs only; the refused ones counted beside it
    assert (bar.ok, bar.failed, bar.availability) == (190, 10, 0.95)
    assert bar.set_aside == {"auth_error": 50, "quota_exhausted": 20} and bar.runs == 270
    # the ten disconnects are one incident, which refused runs neither extend nor end
    (incident,) = incidents_of(read_streaks([db], since=T0))
    assert (incident.failures, incident.outcome, incident.ongoing) == (10, "disconnect", True)


def test_probe_reports_a_refused_key_and_spent_credits() -> None:
    right, wrong = {"SIM_KEY": "sk-sim-right-0001"}, {"SIM_KEY": "sk-sim-wrong-0002"}
    for base in simulate("--profile", "datacenter", "--set", "p_http_5xx=0",
                         "--set", "api_key=sk-sim-right-0001", "--set", "credits=1"):
        args = ["probe", "--url", base, "--model", "sim-llama-3.1-8b-instruct",
                "--api-key-env", "SIM_KEY", "--json"]
        refused = cli(*args, "--fail-on-error", env=wrong)
        assert refused.returncode == 1, refused.stderr
        (line,) = refused.stdout.splitlines()
        run = json.loads(line)
        assert (run["outcome"], run["http_status"]) == ("auth_error", 401)
        assert "Incorrect API key" in run["error"]
        assert "sk-sim-wrong" not in refused.stdout + refused.stderr

        paid = cli(*args, "--count", "2", env=right)  # one run's worth of credits
        runs = [json.loads(line) for line in paid.stdout.splitlines()]
        assert [(r["outcome"], r["http_status"]) for r in runs] == [
            ("ok", 200), ("quota_exhausted", 402)]
        assert "Insufficient credits" in runs[1]["error"]
