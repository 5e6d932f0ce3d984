"""Generated Prometheus rules: their content, promtool's verdict, and that committed files match."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitor import cli
from monitor.config import load_config
from monitor.core.slaprofile import BUILTIN_PROFILES, SLAProfile
from monitor.core.times import format_duration as duration
from monitor.core.times import parse_duration as seconds_of
from monitor.exporter.metrics import le_label
from monitor.exporter.rules import (
    ALL_ALERTS,
    BURN_ALERTS,
    CATALOG_ALERT,
    FINGERPRINT_ALERT,
    MODEL_EQUALITY_ALERT,
    NetworkSLO,
    generate,
    render,
    slos_from_config,
)
from tests import promtool_cases, promtool_evidence, promtool_locations

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None,
                                    reason="promtool not installed (apt-get install prometheus)")
ODD = SLAProfile(name="odd", availability=0.995, ttft_p95_s=1.7, e2e_p99_s=45.0,
                 disconnect_rate=0.002, decode_tps_min=12.5, wrong_output_rate=None)


def rules_of(groups: dict) -> list[dict]:
    return [r for g in groups["groups"] for r in g["rules"]]


def test_recording_rules_use_sloth_names_at_every_alert_window() -> None:
    rules = rules_of(generate([NetworkSLO("akash", BUILTIN_PROFILES["enterprise"], 60)]))
    names = {(r["record"], r["labels"]["sli"]) for r in rules if "record" in r}
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert (f"slo:sli_error:ratio_rate{window}", "availability") in names
    for meta in ("slo:objective:ratio", "slo:error_budget:ratio",
                 "slo:period_error_budget_remaining:ratio", "slo:current_burn_rate:ratio"):
        assert (meta, "disconnect_rate") in names
    objective = next(r for r in rules if r.get("record") == "slo:objective:ratio"
                     and r["labels"]["sli"] == "availability")
    assert objective["expr"] == "0.999"
    assert objective["labels"]["sloth_service"] == "akash"


def test_latency_slis_read_the_threshold_bucket_exactly_as_exposed() -> None:
    rules = rules_of(generate([NetworkSLO("n", ODD, 30)]))
    exprs = "\n".join(r["expr"] for r in rules if "record" in r)
    assert f'depin_probe_ttft_seconds_bucket{{network="n",le="{le_label(1.7)}"}}' in exprs
    assert 'depin_probe_duration_seconds_bucket{network="n",le="45.0"}' in exprs
    assert 'depin_probe_tokens_per_second_bucket{network="n",le="12.5"}' in exprs
    assert "wrong_output_rate" not in exprs  # a disabled SLI gets no rules


def test_burn_rate_alerts_follow_the_workbook() -> None:
    rules = rules_of(generate([NetworkSLO("akash", BUILTIN_PROFILES["enterprise"], 60)]))
    page, ticket = (r for r in rules if r.get("alert") == BURN_ALERTS["availability"])
    assert page["labels"] == {"severity": "page", "network": "akash", "sli": "availability"}
    # 14.4 x 0.1 % over 1h and 5m, 6 x 0.1 % over 6h and 30m
    assert re.search(r"ratio_rate1h\{[^}]*\} > 0\.0144\s+and\s+\S*ratio_rate5m\{[^}]*\} > "
                     r"0\.0144", page["expr"])
    assert "ratio_rate6h" in page["expr"] and "> 0.006" in page["expr"]
    assert "ratio_rate1d" in ticket["expr"] and "> 0.003" in ticket["expr"]
    assert "ratio_rate3d" in ticket["expr"] and "> 0.001" in ticket["expr"]
    for rule in rules:
        if "alert" in rule:
            # the catalog, model equality and fingerprint alerts take `network` from their
            # series (tests/promtool_cases.py)
            from_series = rule["alert"] in (CATALOG_ALERT, MODEL_EQUALITY_ALERT,
                                            FINGERPRINT_ALERT)
            static = {"severity", "sli"} | (set() if from_series else {"network"})
            assert static <= rule["labels"].keys()
            assert {"summary", "runbook_url"} <= rule["annotations"].keys()


def test_every_runbook_link_has_its_section() -> None:
    text = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", text, re.M)}
    rules = rules_of(generate([NetworkSLO("akash", BUILTIN_PROFILES["enterprise"], 60)]))
    for rule in rules:
        if "alert" in rule:
            assert rule["annotations"]["runbook_url"].split("#")[1] in anchors, rule["alert"]


def test_probes_stopped_waits_several_intervals() -> None:
    rules = rules_of(generate([NetworkSLO("slow", BUILTIN_PROFILES["standard"], 900)]))
    stopped = next(r for r in rules if r.get("alert") == "DepinProbesStopped")
    assert stopped["expr"].endswith("> 2700.0")  # 3 x 15 min
    assert stopped["for"] == "15m"


def test_time_scale_shrinks_windows_for_tests() -> None:
    text = render([NetworkSLO("n", BUILTIN_PROFILES["enterprise"], 2)], time_scale=60)
    assert "[1m]" in text and "[5s]" in text  # 1h -> 1m, 5m -> 5s
    assert "slo:sli_error:ratio_rate1h" in text  # names keep their nominal window
    assert "for: 2s" in text
    assert duration(0.5) == "500ms" and duration(86400) == "1d" and duration(90) == "90s"
    assert seconds_of("15m") == 900 and seconds_of("250ms") == 0.25 and seconds_of(60) == 60


def test_promtool_scenarios_cover_every_alert_firing_and_not() -> None:
    rules = generate([promtool_cases.SLO])
    fired, quiet = set(), set()
    for sc in promtool_cases.scenarios(rules):
        for _, alert, expected in sc.checks:
            (fired if expected else quiet).add(alert)
    assert set(ALL_ALERTS) <= fired
    assert set(ALL_ALERTS) <= quiet


def test_committed_promtool_files_are_up_to_date() -> None:
    for module in (promtool_cases, promtool_evidence):
        for path, text in module.render_files().items():
            assert path.read_text() == text, \
                f"{path} is stale: run python -m {module.__name__}"


def test_a_page_needs_the_minimum_failures_of_its_window() -> None:
    """One run a minute at 99.9 %: the 1h page needs 4 failures, the 6h one 6; ten runs a
    minute: 7 and 15. The counts it reads are recorded per location and long window."""
    def page_expr(slo: NetworkSLO) -> str:
        rules = rules_of(generate([slo]))
        return next(r["expr"] for r in rules if r.get("alert") == BURN_ALERTS["availability"]
                    and r["labels"]["severity"] == "page")

    low = page_expr(NetworkSLO("n", BUILTIN_PROFILES["enterprise"], 60))
    assert re.search(r'location:slo_sli_error:increase1h\{[^}]*\} > 3\.5\b', low)
    assert re.search(r'location:slo_sli_error:increase6h\{[^}]*\} > 5\.5\b', low)
    busy = page_expr(NetworkSLO("n", BUILTIN_PROFILES["enterprise"], 60, runs_per_interval=10))
    assert "increase1h" in busy and "> 6.5" in busy and "> 14.5" in busy
    records = {(r["record"], r["labels"]["sli"]) for r in rules_of(generate(
        [NetworkSLO("n", BUILTIN_PROFILES["enterprise"], 60)])) if "record" in r}
    for window in ("1h", "6h", "1d", "3d"):
        for sli in BURN_ALERTS:
            assert (f"location:slo_sli_error:increase{window}", sli) in records
            assert (f"location:slo_sli_events:increase{window}", sli) in records


def test_the_runs_a_window_holds_come_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("""
networks:
  - {name: n, base_url: "http://127.0.0.1:1/v1", models: {small: a, large: b},
     jobs: [chat-short-v1, chat-long-v1], interval: 30s, sla: enterprise}
""")
    (slo,) = slos_from_config(load_config(str(config)))
    assert slo.runs_per_interval == 4
    assert slo.runs_in(3600) == 480


def example_configs() -> list[Path]:
    return sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("config", example_configs(), ids=lambda p: p.name)
def test_committed_example_rules_match_the_generator(config: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    committed = DEPLOY / "prometheus" / "rules" / f"{config.stem}.yml"
    code = cli.main(["rules", "-c", str(config.relative_to(ROOT)), "--check", str(committed)])
    assert code == 0, capsys.readouterr().err


def test_rules_command_writes_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = example_configs()[0]
    out = tmp_path / "rules.yml"
    assert cli.main(["rules", "-c", str(config), "-o", str(out)]) == 0
    assert "recording rules" in capsys.readouterr().err
    assert yaml.safe_load(out.read_text())["groups"]
    assert cli.main(["rules", "-c", str(config), "--check", str(out)]) == 0
    out.write_text(out.read_text() + "# edited\n")
    assert cli.main(["rules", "-c", str(config), "--check", str(out)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert cli.main(["rules", "-c", str(config), "--time-scale", "0"]) == 2


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


@needs_promtool
def test_promtool_check_rules_accepts_every_rule_file(tmp_path: Path) -> None:
    files = [*sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")),
             DEPLOY / "prometheus" / "tests" / promtool_cases.RULES_FILE,
             DEPLOY / "prometheus" / "tests" / promtool_evidence.RULES_FILE]
    odd = tmp_path / "odd.yml"
    odd.write_text(render([NetworkSLO("odd-net", ODD, 30)], time_scale=60))
    proc = promtool("check", "rules", *map(str, files), str(odd))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_promtool_test_rules_passes() -> None:
    files = sorted((DEPLOY / "prometheus" / "tests").glob("*.test.yml"))
    assert len(files) == (len(promtool_cases.TEST_FILES) + len(promtool_locations.TEST_FILES)
                          + len(promtool_evidence.TEST_FILES))
    # one promtool per file, in parallel: the scenarios evaluate ~100 rules every minute
    procs = [subprocess.Popen([str(PROMTOOL), "test", "rules", str(f)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for f in files]
    for f, proc in zip(files, procs, strict=True):
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{f.name}:\n{out}"
        assert "SUCCESS" in out


@needs_promtool
@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.debian.yml"])
def test_promtool_check_config_accepts_prometheus_yml(config: str) -> None:
    proc = promtool("check", "config", f"deploy/prometheus/{config}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(AMTOOL is None, reason="amtool not installed (apt-get install "
                    "prometheus-alertmanager)")
def test_amtool_accepts_alertmanager_yml() -> None:
    assert AMTOOL is not None
    proc = subprocess.run([AMTOOL, "check-config", "deploy/alertmanager/alertmanager.yml"],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(AMTOOL is None, reason="amtool not installed")
def test_alertmanager_routes_pages_and_inhibits_tickets() -> None:
    assert AMTOOL is not None
    config = "--config.file=deploy/alertmanager/alertmanager.yml"

    def route(*labels: str) -> str:
        proc = subprocess.run([AMTOOL, "config", "routes", "test", config, *labels],
                              capture_output=True, text=True, timeout=30, cwd=ROOT)
        return proc.stdout.strip()

    assert route("severity=page", "network=hyperbolic", "sli=availability") == "oncall"
    assert route("severity=page", "network=io-net", "sli=availability") == "partner-desk"
    assert route("severity=ticket", "network=io-net", "sli=ttft_p95") == "tickets"
    assert route("alertname=DepinProbeMisconfigured", "severity=ticket", "network=io-net",
                 "sli=probes", "outcome=auth_error") == "monitor-operator"
    am = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    assert {"source_matchers": ['severity="page"'], "target_matchers": ['severity="ticket"'],
            "equal": ["network", "sli"]} in am["inhibit_rules"]


def runbook_links(text: str) -> set[str]:
    return {r["annotations"]["runbook_url"].split("#")[0]
            for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "alert" in r}


RUNBOOK_CONFIG = """
alerting: {runbook_url: "https://wiki.example.com/oncall/depin-runbooks"}
networks: [{name: n, base_url: "http://127.0.0.1:1/v1", model: m, sla: standard}]
"""


def test_alerts_link_to_the_operators_runbooks(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(RUNBOOK_CONFIG)
    assert cli.main(["rules", "-c", str(config)]) == 0
    out = capsys.readouterr()
    assert runbook_links(out.out) == {"https://wiki.example.com/oncall/depin-runbooks"}
    assert "warning" not in out.err and "placeholder" not in out.out
    assert cli.main(["rules", "-c", str(config), "--runbook-base",
                     "https://git.example.com/ops/runbooks.md"]) == 0
    assert runbook_links(capsys.readouterr().out) == {"https://git.example.com/ops/runbooks.md"}
    assert cli.main(["check", "-c", str(config)]) == 0
    assert "runbook_url" not in capsys.readouterr().out


def test_without_a_runbook_url_the_alerts_say_it_is_a_placeholder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(RUNBOOK_CONFIG.replace("alerting:", "# alerting:"))
    assert cli.main(["rules", "-c", str(config)]) == 0
    out = capsys.readouterr()
    assert runbook_links(out.out) == {"https://runbooks.example.invalid/depin-monitor/runbooks.md"}
    assert "is a placeholder" in out.out.splitlines()[1]  # the file says so to whoever copies it
    assert "alerting.runbook_url is not set" in out.err
    assert cli.main(["check", "-c", str(config)]) == 0
    assert "warning: alerting.runbook_url is not set" in capsys.readouterr().out


@pytest.mark.parametrize("shipped", sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")),
                         ids=lambda p: p.name)
def test_shipped_rules_link_to_no_one_elses_site(shipped: Path) -> None:
    """The rules under deploy/ are copied by operators: their links are the placeholder they
    must replace (the files say so), never a page someone else owns."""
    text = shipped.read_text()
    assert runbook_links(text) == {"https://runbooks.example.invalid/depin-monitor/runbooks.md"}
    assert "is a placeholder" in text


SLOW_CONFIG = """
networks:
  - {name: slow, base_url: "http://127.0.0.1:1/v1", model: m, interval: 60s, sla: enterprise}
  - {name: busy, base_url: "http://127.0.0.1:1/v1", models: {small: a, large: b},
     jobs: [chat-short-v1, chat-long-v1, json-v1, completion-short-v1, needle-8k-v1],
     interval: 60s, sla: enterprise}
"""


@pytest.mark.parametrize("command", ["check", "rules"])
def test_a_probe_rate_that_cannot_resolve_the_page_is_named_on_stderr(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One run a minute against 99.9 %: the page cannot tell a network at its objective from
    one burning at 14.4x in an hour; ten runs a minute can. A warning, not a failure."""
    config = tmp_path / "c.yaml"
    config.write_text(SLOW_CONFIG)
    assert cli.main([command, "-c", str(config)]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "cannot tell" in line]
    assert {line.split("network ")[1].split(",")[0] for line in warned} == {"slow"}
    (avail,) = [line for line in warned if "availability (objective 99.9 %)" in line]
    assert "60 runs in 1h" in avail and "needs 4 failures in 1h" in avail
    assert "417 runs in 1h would: an interval of 8s (1 jobs x tiers), or 7 jobs x tiers " \
           "every 1m" in avail
    assert any("disconnect rate" in line for line in warned)
    assert not any("TTFT" in line for line in warned)  # a 5 % budget resolves at 60 runs
