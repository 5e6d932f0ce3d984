"""The Debian path of docs/operators.md with Debian's own binaries: Prometheus started with the
flags the doc gives (/etc/default/prometheus) on deploy/prometheus/prometheus.debian.yml scrapes
`depin-monitor run` and loads the rules `depin-monitor rules` wrote; Alertmanager started with
its doc flags on deploy/alertmanager/alertmanager.yml holds the burn alerts of a location back
while DepinMonitorDown fires for it, given the `location` external label, and amtool says so.

Substituted, and only these: the loopback ports (free ones instead of 9464, 9090, 9093), the
rules directory (a temporary one), the scrape and evaluation intervals and the scrape timeout
(1s instead of 15s and 10s, so the first scrape comes at once) and the location's name.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from monitor import cli
from tests.conftest import free_port
from tests.test_e2e_prometheus import ALERTMANAGER, PROMETHEUS, ROOT, Processes, depin, wait_for

AMTOOL = shutil.which("amtool")
DOCS = (ROOT / "docs" / "operators.md").read_text()
LOCATION = "eu-west-1"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (Path(PROMETHEUS).exists() and Path(ALERTMANAGER).exists()
                            and AMTOOL), reason="needs Debian's prometheus, "
                       "prometheus-alertmanager and amtool"),
]


def doc_args(default_file: str) -> list[str]:
    """The ARGS= line docs/operators.md gives for /etc/default/<default_file>."""
    match = re.search(rf"# /etc/default/{default_file}\n(?:#[^\n]*\n)*ARGS=\"([^\"]*)\"", DOCS)
    assert match, f"docs/operators.md gives no ARGS for /etc/default/{default_file}"
    return shlex.split(match.group(1))


def on_port(args: list[str], default: int, port: int) -> list[str]:
    flags = [a.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}") for a in args]
    assert any(f"127.0.0.1:{port}" in a for a in flags), args  # the doc binds loopback
    return flags


@pytest.fixture
def procs(tmp_path: Path):  # type: ignore[no-untyped-def]
    p = Processes(tmp_path)
    try:
        yield p
    finally:
        p.stop()


async def test_debian_prometheus_scrapes_the_monitor_and_loads_its_rules(
        procs: Processes, tmp_path: Path) -> None:
    sim, monitor, prom = free_port(), free_port(), free_port()
    procs.start("sim", *depin("simulate", "--profile", "datacenter", "--port", str(sim)))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"location": LOCATION, "networks": [
        {"name": "steady", "kind": "openai", "base_url": f"http://127.0.0.1:{sim}/v1",
         "model": "sim-llama-3.1-8b-instruct", "interval": "1s", "sla": "enterprise"}]}))
    rules_dir = tmp_path / "rules"
    assert cli.main(["rules", "-c", str(config), "-o", str(rules_dir / "depin.yml")]) == 0
    procs.start("monitor", *depin("run", "-c", str(config), "--db", str(tmp_path / "r.db"),
                                  "--listen", f"127.0.0.1:{monitor}"))
    text = (ROOT / "deploy" / "prometheus" / "prometheus.debian.yml").read_text()
    for old, new in (("127.0.0.1:9464", f"127.0.0.1:{monitor}"),
                     ("127.0.0.1:9090", f"127.0.0.1:{prom}"),
                     ("/etc/prometheus/rules/", f"{rules_dir}/"),
                     ("interval: 15s", "interval: 1s"),
                     ("scrape_timeout: 10s", "scrape_timeout: 1s"),
                     ("location: local", f"location: {LOCATION}")):
        assert old in text, old
        text = text.replace(old, new)
    prom_config = tmp_path / "prometheus.yml"
    prom_config.write_text(text)
    procs.start("prometheus", PROMETHEUS, f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                *on_port(doc_args("prometheus"), 9090, prom))
    api = f"http://127.0.0.1:{prom}/api/v1"
    async with httpx.AsyncClient(timeout=5) as client:

        async def monitor_up() -> dict | None:
            targets = (await client.get(f"{api}/targets")).json()["data"]["activeTargets"]
            ours = [t for t in targets if t["labels"]["job"] == "depin-monitor"]
            return ours[0] if ours and ours[0]["health"] == "up" else None

        target = await wait_for("the monitor's target up", monitor_up, 20, procs)
        assert target["labels"]["location"] == LOCATION
        groups = (await client.get(f"{api}/rules")).json()["data"]["groups"]
        alerts = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
        assert {"depin-slo-steady-alerts", "depin-monitor-prober"} <= {g["name"] for g in groups}
        assert {"DepinAvailabilityBudgetBurn", "DepinMonitorDown"} <= alerts
        config_shown = (await client.get(f"{api}/status/config")).json()["data"]["yaml"]
        assert yaml.safe_load(config_shown)["global"]["external_labels"] == {"location": LOCATION}


def amtool(url: str, *args: str) -> str:
    assert AMTOOL is not None
    proc = subprocess.run([AMTOOL, f"--alertmanager.url={url}", *args], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


async def test_monitor_down_holds_back_its_locations_burn_alerts(
        procs: Processes, tmp_path: Path) -> None:
    port = free_port()
    procs.start("alertmanager", ALERTMANAGER,
                f"--config.file={ROOT / 'deploy' / 'alertmanager' / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'am'}",
                *on_port(doc_args("prometheus-alertmanager"), 9093, port))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=5) as client:

        async def up() -> bool:
            return (await client.get(f"{url}/-/ready")).status_code == 200

        await wait_for("Alertmanager", up, 15, procs)
    # The doc's flags leave no gossip listener on 0.0.0.0:9094 (`--cluster.listen-address=`)
    cluster = httpx.get(f"{url}/api/v2/status", timeout=5).json()["cluster"]
    assert cluster["status"] == "disabled"
    burn = ["alertname=DepinAvailabilityBudgetBurn", "severity=page", "sli=availability"]
    amtool(url, "alert", "add", "alertname=DepinMonitorDown", "severity=page", "network=all",
           "sli=prober", "job=depin-monitor", f"location={LOCATION}")
    amtool(url, "alert", "add", *burn, "network=steady", f"location={LOCATION}")
    amtool(url, "alert", "add", *burn, "network=elsewhere", "location=us-east-1")
    amtool(url, "alert", "add", *burn, "network=unlabelled")  # no external_labels.location

    def networks(*flags: str) -> set[str]:
        shown = json.loads(amtool(url, "alert", "query", *flags, "-o", "json",
                                  "alertname=DepinAvailabilityBudgetBurn"))
        return {a["labels"]["network"] for a in shown}

    # held back: the down monitor's own location only; an alert without `location` (a
    # Prometheus without the external label) goes out, and on-call gets every page. The
    # inhibitor learns of a source alert a moment after it is posted: wait for it.
    async def held_back() -> set[str] | None:
        shown = networks("--inhibited")
        return shown if shown == {"steady"} else None

    assert await wait_for("the steady burn alert held back", held_back, 20, procs) == {"steady"}
    assert networks() == {"elsewhere", "unlabelled"}
