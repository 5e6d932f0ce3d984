"""Several locations, one set of rules: the config's quorum in the generated rules, the
promtool scenarios with three locations, every Prometheus config under deploy/ as promtool
sees it, and Alertmanager silencing only the location whose monitor is down."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from monitor import cli
from monitor.config import parse_config
from monitor.core.errors import ConfigError
from monitor.exporter.rules import ALL_ALERTS, BURN_ALERTS, PROBES_STOPPED_ALERT, generate
from tests import promtool_locations
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROMTOOL = shutil.which("promtool")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
NETWORK = ("networks:\n  - {name: akash, base_url: 'https://a.example/v1', model: m, "
           "sla: enterprise}\n")


def tool(path: str | None, name: str) -> str:
    if path is None:
        pytest.skip(f"{name} not installed (.ci/run installs it)")
    return path


# -- the quorum in the config and the rules --------------------------------------------------

def test_quorum_defaults_to_one_location_and_reaches_the_rules(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    assert parse_config(NETWORK).quorum == 1
    config = tmp_path / "c.yaml"
    config.write_text("quorum: 3\n" + NETWORK)
    assert cli.main(["rules", "-c", str(config)]) == 0
    rules = yaml.safe_load(capsys.readouterr().out)
    burns = [r for g in rules["groups"] for r in g["rules"]
             if r.get("alert") == BURN_ALERTS["availability"]]
    assert len(burns) == 2 and all(r["expr"].endswith(") >= 3") for r in burns)
    assert all("count without (location)" in r["expr"] for r in burns)
    assert "at least 3 locations" in burns[0]["annotations"]["description"]


def test_a_quorum_below_one_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("quorum: 0\n" + NETWORK, "c.yaml")
    assert str(err.value).startswith("c.yaml: quorum: ")
    assert "greater than or equal to 1" in str(err.value)


def test_location_scenarios_cover_the_quorum_and_per_location_alerts() -> None:
    rules = generate([promtool_locations.SLO])
    fired, quiet = set(), set()
    for sc in promtool_locations.scenarios(rules):
        for _, alert, expected in sc.checks:
            (fired if expected else quiet).add(alert)
    assert {BURN_ALERTS["availability"], PROBES_STOPPED_ALERT} <= fired & quiet
    assert fired <= set(ALL_ALERTS)


def test_committed_location_scenarios_are_up_to_date() -> None:
    for path, text in promtool_locations.render_files().items():
        assert path.read_text() == text, f"{path} is stale: run python -m tests.promtool_locations"


# -- every Prometheus config under deploy/ ----------------------------------------------------

def prometheus_configs() -> list[tuple[Path, bool]]:
    """(file, agent mode) for each YAML file under deploy/ that is a Prometheus config."""
    found = []
    for path in sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")]):
        text = path.read_text()
        if "scrape_configs:" not in text and "remote_write:" not in text:
            continue  # rule files, alertmanager, compose, Kubernetes: not parsed, for speed
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
        for doc in docs:
            if "scrape_configs" in doc or "remote_write" in doc:
                agent = "remote_write" in doc and "rule_files" not in doc
                found.append((path, agent))
    return found


def test_the_configs_of_both_topologies_are_there() -> None:
    names = {path.name: agent for path, agent in prometheus_configs()}
    assert names == {"prometheus.yml": False, "agent.yml": True, "central.yml": False,
                     "central-scrape.yml": False, "prometheus.debian.yml": False}


@pytest.mark.parametrize(("path", "agent"), prometheus_configs(),
                         ids=lambda v: v.name if isinstance(v, Path) else "")
def test_promtool_accepts_every_prometheus_config_under_deploy(path: Path, agent: bool) -> None:
    args = [tool(PROMTOOL, "promtool"), "check", "config", *(["--agent"] if agent else []),
            str(path)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_central_never_labels_itself_with_a_location() -> None:
    """An external `location` on the central would be stamped on the quorum alerts, which
    count locations and so carry none."""
    for name in ("central.yml", "central-scrape.yml"):
        config = yaml.safe_load((DEPLOY / "prometheus" / name).read_text())
        assert "location" not in config["global"].get("external_labels", {}), name
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "central-scrape.yml").read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "depin-monitor")
    locations = [sc["labels"]["location"] for sc in job["static_configs"]]
    assert len(locations) == len(set(locations)) >= 2
    agent = yaml.safe_load((DEPLOY / "prometheus" / "agent.yml").read_text())
    assert agent["global"]["external_labels"]["location"]
    assert agent["scrape_configs"][0]["job_name"] == "depin-monitor"


# -- Alertmanager: a monitor down silences its own location only ------------------------------

def post_and_read(url: str, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = [{"labels": a, "startsAt": now} for a in alerts]
    httpx.post(f"{url}/api/v2/alerts", json=body, timeout=5).raise_for_status()
    deadline = time.perf_counter() + 20
    while time.perf_counter() < deadline:
        got = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
        inhibited = [a for a in got if a["status"]["inhibitedBy"]]
        if len(got) == len(alerts) and inhibited:
            return list(got)
        time.sleep(0.3)
    return list(httpx.get(f"{url}/api/v2/alerts", timeout=5).json())


def test_a_monitor_down_silences_its_own_location_only(tmp_path: Path) -> None:
    binary = tool(ALERTMANAGER, "prometheus-alertmanager")
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'am.yml'}",
                             f"--storage.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/-/ready", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        page = {"severity": "page", "network": "akash"}
        alerts = post_and_read(url, [
            {"alertname": "DepinMonitorDown", "severity": "page", "network": "all",
             "sli": "prober", "location": "us-east"},
            {"alertname": "DepinProbesStopped", **page, "sli": "probes", "location": "us-east"},
            {"alertname": "DepinProbesStopped", **page, "sli": "probes", "location": "eu-west"},
            {"alertname": "DepinAvailabilityBudgetBurn", **page, "sli": "availability"},
        ])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    state = {(a["labels"]["alertname"], a["labels"].get("location", "")):
             bool(a["status"]["inhibitedBy"]) for a in alerts}
    assert state == {("DepinMonitorDown", "us-east"): False,
                     ("DepinProbesStopped", "us-east"): True,  # the monitor is down there
                     ("DepinProbesStopped", "eu-west"): False,
                     ("DepinAvailabilityBudgetBurn", ""): False}, json.dumps(alerts)[:2000]
