"""The buyer's decision from a seeded store: ranking with honest ties, the tier ladder, monthly
SLA credits, charts, and every format telling the same numbers."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from monitor.core.result import Outcome, ProbeResult
from monitor.simulator.profiles import PROFILES, Dice
from monitor.storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
T0 = dt.datetime(2026, 9, 28, tzinfo=dt.UTC).timestamp()  # runs span September and October
# What each simulator fault ends in, as the openai probe classifies it (tests/probes/).
FAULT_OUTCOMES = {None: Outcome.OK, "wrong": Outcome.WRONG_OUTPUT,
                  "http_5xx": Outcome.HTTP_ERROR, "stream_error": Outcome.HTTP_ERROR,
                  "rate_limit": Outcome.RATE_LIMITED, "malformed": Outcome.MALFORMED,
                  "eof": Outcome.DISCONNECT, "reset": Outcome.DISCONNECT,
                  "truncate": Outcome.DISCONNECT, "stall": Outcome.STALLED}


def runs_like(profile: str, network: str, n: int, seed: int, tier: str = "small",
              every_s: float = 600.0) -> list[ProbeResult]:
    """n runs of a reference profile's seeded plans, as a probe would have recorded them."""
    dice = Dice(PROFILES[profile], seed)
    out = []
    for i in range(n):
        plan = dice.plan(64)
        outcome = FAULT_OUTCOMES[plan.fault]
        done = outcome in (Outcome.OK, Outcome.WRONG_OUTPUT)
        early = outcome in (Outcome.HTTP_ERROR, Outcome.RATE_LIMITED)
        out.append(ProbeResult(
            network=network, target=tier, job="chat-long-v1", model="m", outcome=outcome,
            started_at=T0 + i * every_s, ttft_s=None if early else plan.ttft_s,
            duration_s=plan.ttft_s + 63 / plan.tokens_per_s if done else 1.0,
            tokens_per_s=plan.tokens_per_s if done else None,
            output_tokens=64 if done else None, input_tokens=30, location="eu",
            node=f"{network}-node-{i % 4}"))
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two equal steady networks (same profile, other seeds), a datacenter and a flaky one,
    1,000 runs each over a week across a month's end; the datacenter also on a large tier."""
    path = tmp_path_factory.mktemp("buyer") / "seeded.db"
    results = (runs_like("depin-steady", "steady-a", 1000, seed=1)
               + runs_like("depin-steady", "steady-b", 1000, seed=2)
               + runs_like("depin-flaky", "flaky", 1000, seed=3)
               + runs_like("datacenter", "datacenter", 1000, seed=4)
               + runs_like("depin-flaky", "datacenter", 300, seed=5, tier="large"))
    s = Store(path)
    s.add_many(results)
    s.close()
    return str(path)


CONFIG = """
sla_profiles:
  contract:
    availability: 0.99
    ttft_p95_s: 5
    credits:
      - {below: 0.99, credit: 0.10}
      - {below: 0.95, credit: 0.25}
      - {below: 0.90, credit: 1.00}
maintenance:
  - {start: "2026-10-02T00:00:00Z", end: "2026-10-02T12:00:00Z", networks: [flaky],
     reason: planned upgrade}
networks:
  - {name: steady-a, base_url: "http://127.0.0.1:1/v1", model: m, sla: contract,
     price_per_mtok: {input: 0.1, output: 0.3}, monthly_spend_usd: 1000}
  - {name: steady-b, base_url: "http://127.0.0.1:2/v1", model: m, sla: contract,
     price_per_mtok: {input: 0.1, output: 0.3}, monthly_spend_usd: 1000}
  - {name: flaky, base_url: "http://127.0.0.1:3/v1", model: m, sla: contract,
     price_per_mtok: {input: 0.02, output: 0.04}, monthly_spend_usd: 400}
  - {name: datacenter, base_url: "http://127.0.0.1:4/v1", models: {small: m, large: l},
     sla: contract, price_per_mtok: {input: 0.2, output: 0.6}}
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("config") / "buyer.yaml"
    path.write_text(CONFIG)
    return str(path)


@functools.cache
def report(*args: str) -> subprocess.CompletedProcess[str]:
    """`depin-monitor report ARGS` as a user runs it (each distinct command run once)."""
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "report", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def as_json(store: str, config: str, *args: str) -> dict:
    return json.loads(report("--db", store, "-c", config, "--format", "json", *args).stdout)


def test_steady_ranks_above_flaky_and_equal_networks_are_tied(store: str, config: str
                                                              ) -> None:
    data = as_json(store, config)
    by = {g["group"]["network"]: g for g in data["groups"]}
    assert by["steady-a"]["rank"] == by["steady-b"]["rank"]
    assert by["steady-a"]["tied_with"] == ["steady-b"]
    assert by["steady-b"]["tied_with"] == ["steady-a"]
    assert by["flaky"]["rank"] > by["steady-a"]["rank"]
    assert {b["name"] for b in by["flaky"]["beaten_by"]} >= {"steady-a", "steady-b"}
    assert [g["group"]["network"] for g in data["groups"]][-1] == "flaky"  # listed by rank
    table = report("--db", store, "-c", config).stdout
    assert re.search(r"steady-a\s.*\s\d tied\s", table), table
    assert "steady-a is tied with steady-b" in table


def test_every_format_tells_the_same_numbers(store: str, config: str) -> None:
    data = as_json(store, config)
    rows = {r["network"]: r for r in csv.DictReader(io.StringIO(
        report("--db", store, "-c", config, "--format", "csv").stdout))}
    markdown = report("--db", store, "-c", config, "--format", "markdown").stdout
    table = report("--db", store, "-c", config, "--wide").stdout
    html = report("--db", store, "-c", config, "--format", "html").stdout
    for g in data["groups"]:
        name = g["group"]["network"]
        assert float(rows[name]["availability"]) == pytest.approx(g["availability"])
        assert rows[name]["rank"] == str(g["rank"])
        assert float(rows[name]["ttft_p95_s"]) == pytest.approx(g["ttft_p95_s"])
        assert rows[name]["nodes"] == str(g["nodes"]) == "4"
        shown = f"{g['availability'] * 100:.2f}%"
        cost = f"${g['effective_usd_per_mtok']:.3f}"
        for text in (markdown, table, html):
            line = next(ln for ln in text.splitlines() if name in ln and shown in ln)
            assert cost in line, (name, line)


def test_the_tier_ladder_shows_which_model_sizes_met_the_sla(store: str, config: str) -> None:
    data = as_json(store, config)
    ladder = {(c["network"], c["tier"]): c["state"] for c in data["tier_ladder"]}
    assert ladder[("datacenter", "small")] == "met"
    assert ladder[("datacenter", "large")] == "missed"
    rows = {r["network"]: r for r in csv.DictReader(io.StringIO(
        report("--db", store, "-c", config, "--format", "csv").stdout))}
    assert (rows["datacenter"]["tiers_met"], rows["datacenter"]["tiers_missed"]) == (
        "small", "large")
    table = report("--db", store, "-c", config).stdout
    ladder_text = table[table.index("Tier ladder"):]
    assert re.search(r"datacenter\s+MISSES.*\s+MEETS", ladder_text), ladder_text


def test_monthly_credits_follow_the_schedule_with_maintenance_excluded(store: str,
                                                                       config: str) -> None:
    data = as_json(store, config)
    months = {(m["network"], m["month"]): m for m in data["months"]}
    assert {m for _, m in months} == {"2026-09", "2026-10"}
    flaky = months[("flaky", "2026-10")]
    assert flaky["excluded_runs"] == 72  # 12 h of runs every 10 min inside the window
    expected = 0.10 if flaky["availability"] >= 0.95 else (
        0.25 if flaky["availability"] >= 0.90 else 1.0)
    assert flaky["availability"] < 0.99 and flaky["credit_share"] == expected
    assert flaky["credit_usd"] == pytest.approx(400 * expected)
    steady = months[("steady-a", "2026-10")]
    assert steady["credit_usd"] == (0.0 if steady["availability"] >= 0.99 else
                                    pytest.approx(100.0))
    assert months[("datacenter", "2026-10")]["spend_usd"] is None  # no spend configured
    assert all(m["partial"] for m in data["months"])  # a week of runs


def test_the_month_ignores_runs_in_maintenance(store: str, config: str, tmp_path: Path
                                               ) -> None:
    """The same runs without the window: the flaky network's October has 72 more runs."""
    with_window = as_json(store, config)
    plain = tmp_path / "no-window.yaml"
    plain.write_text(re.sub(r"maintenance:\n(  .*\n)+", "", CONFIG))
    without = as_json(store, str(plain))

    def october(data: dict) -> dict:
        return next(m for m in data["months"] if (m["network"], m["month"]) == (
            "flaky", "2026-10"))

    assert october(without)["runs"] + october(without)["excluded_runs"] == \
        october(with_window)["runs"] + october(with_window)["excluded_runs"]
    assert october(without)["excluded_runs"] == 0
    assert october(with_window)["runs"] < october(without)["runs"]


def test_json_follows_its_documented_schema(store: str, config: str) -> None:
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for args in ((), ("--by", "network,target"), ("--by", "job,location")):
        jsonschema.validate(as_json(store, config, *args), schema)


def test_ranks_are_given_within_each_tier(store: str, config: str) -> None:
    data = as_json(store, config, "--by", "network,target")
    large = [g for g in data["groups"] if g["group"]["target"] == "large"]
    assert [g["rank"] for g in large] == [1]  # alone in its tier, not ranked with the small


# A browser fetches what a src or href names (but not an in-page #anchor or a data: URL), an
# @import or url() in CSS, or a <link>/<script src>.
FETCHES = re.compile(r"""\b(?:src|href)\s*=\s*["']?(?!#|data:)[^\s"'>]|@import|url\(\s*["']?"""
                     r"""(?!#|data:)|<link\b|<script\b[^>]*\bsrc""", re.IGNORECASE)


def test_the_html_report_holds_the_charts_and_fetches_nothing(store: str, config: str,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    report("--db", store, "-c", config, "--format", "html", "-o", str(out))
    page = out.read_text()
    charts = re.findall(r"<figure class='chart' id='([\w-]+)'>.*?</figure>", page, re.S)
    assert charts == ["availability-per-day", "ttft-cdf", "decode-rate", "outcomes",
                      "tier-ladder", "cost"]
    assert page.count("<svg") == 6
    assert FETCHES.findall(page) == []
    assert "DOCTYPE svg" not in page


@pytest.mark.parametrize("snippet", [
    "<img src='https://example.com/x.png'>", "<link rel=stylesheet href=a.css>",
    "<script src=app.js></script>", "body { background: url(http://x/y.png) }",
    "@import 'x.css';", "<a href=//cdn.example.com/a>"])
def test_the_fetch_check_catches_external_references(snippet: str) -> None:
    assert FETCHES.search(snippet)


def test_without_matplotlib_the_page_has_every_table_and_says_how_to_add_charts(
        store: str, config: str, tmp_path: Path) -> None:
    """matplotlib that cannot be imported (a broken install): the HTML report still works
    and says how to add the charts."""
    out = tmp_path / "plain.html"
    code = ("import sys; sys.modules['matplotlib'] = None; from monitor.cli import main; "
            f"sys.exit(main(['report', '--db', {store!r}, '-c', {config!r}, '--format', "
            f"'html', '-o', {str(out)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert "<svg" not in page and "pip install &#x27;depin-monitor[charts]&#x27;" in page
    assert "Tier ladder" in page and "SLA by calendar month" in page
