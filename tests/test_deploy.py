"""Deployment files: generated ones are current, each validates against its tool or schema,
and they agree with each other (paths, ports, commands, keys).

No Docker engine or Kubernetes cluster here, so: compose files against the Compose
Specification's schema, every command they run parsed by the real CLI (and `check`ed);
Kubernetes objects against the Kubernetes schemas (kubernetes-validate) and the Prometheus
Operator's CRD models (cloudcoil-models-prometheus-operator); the systemd unit with
`systemd-analyze`. The panel queries run on a real Prometheus in test_dashboard_queries.py.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from monitor.cli import build_parser
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARDS = {p.name: json.loads(p.read_text()) for p in (ROOT / "dashboards").glob("*.json")}
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
CATALOG_OVERRIDE = yaml.safe_load((DEPLOY / "docker-compose.catalog.yml").read_text())
PROMETHEUS_YML = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
ALERTMANAGER_YML = (DEPLOY / "alertmanager/alertmanager.yml").read_text()
K8S = list(yaml.safe_load_all((DEPLOY / "kubernetes/depin-monitor.yaml").read_text()))
PROMETHEUS_RULE = yaml.safe_load((DEPLOY / "kubernetes/prometheusrule.yaml").read_text())
SECRET = yaml.safe_load((DEPLOY / "kubernetes/secret.example.yaml").read_text())
# the catalog's networks' keys (a commented-out entry's line starts with `#`: not one)
CATALOG_KEYS = set(re.findall(r"^\s*api_key_env: (\w+)", (ROOT / "examples/networks.yaml")
                              .read_text(), re.M))
GENERATED_RULES = "prometheus/rules/catalog.yml"  # made by the operator (docs/operators.md)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (.ci/run installs it)")
    return path


def depin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env=env)


def kinds(kind: str) -> list[dict]:
    return [doc for doc in K8S if doc["kind"] == kind]


# -- dashboards ------------------------------------------------------------------------------

@pytest.mark.parametrize("module", ["dashboards.build", "deploy.kubernetes.build"])
def test_generated_files_are_current(module: str) -> None:
    proc = subprocess.run([sys.executable, "-m", module, "--check"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_four_dashboards_share_the_variables_and_the_provisioned_datasource() -> None:
    uids = {board["uid"] for board in DASHBOARDS.values()}
    assert {"depin-comparison", "depin-network-detail", "depin-sla", "depin-prober-health"} == uids
    ds = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/prometheus.yml")
                        .read_text())["datasources"][0]
    for name, board in DASHBOARDS.items():
        variables = {v["name"] for v in board["templating"]["list"]}
        assert {"network", "location"} <= variables, name
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        queried = [p for p in board["panels"] if p["type"] != "row"]
        assert {p["datasource"]["uid"] for p in queried} == {ds["uid"]}, name
        assert all(t["refId"] for p in queried for t in p["targets"]), name
    for name in ("depin-network-comparison.json", "depin-network-detail.json"):
        assert {"network", "target", "workload", "location"} <= {
            v["name"] for v in DASHBOARDS[name]["templating"]["list"]}
    detail = DASHBOARDS["depin-network-detail.json"]
    assert sum(p["type"] == "heatmap" for p in detail["panels"]) >= 2
    sla = json.dumps(DASHBOARDS["depin-sla.json"])
    for series in ("ALERTS", "depin_sla_month_attained", "slo:period_error_budget_remaining",
                   "slo:sli_error:ratio_rate1h"):
        assert series in sla


# -- compose ---------------------------------------------------------------------------------

def merged_services() -> dict[str, dict]:
    """docker-compose.yml with docker-compose.catalog.yml on top (compose's merge rules for
    the keys we use: command replaced, volumes merged by their container path)."""
    services = json.loads(json.dumps(COMPOSE["services"]))
    for name, override in CATALOG_OVERRIDE["services"].items():
        service = services[name]
        if "command" in override:
            service["command"] = override["command"]
        by_target = {v.split(":")[1]: v for v in service.get("volumes", [])}
        by_target.update({v.split(":")[1]: v for v in override.get("volumes", [])})
        service["volumes"] = list(by_target.values())
    return services


def host_path(service: dict, container_path: str) -> Path | None:
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith(".") and container_path.startswith(target):
            return (DEPLOY / source).resolve() / container_path[len(target):].lstrip("/")
    return None


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.catalog.yml"])
def test_compose_files_follow_the_compose_specification(name: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.compose-spec", str(DEPLOY / name)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("services", [COMPOSE["services"], merged_services()],
                         ids=["demo", "catalog"])
def test_compose_mounts_exist(services: dict[str, dict]) -> None:
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                continue
            if source.endswith(GENERATED_RULES):  # the operator generates it first
                assert f"deploy/{GENERATED_RULES}" in (ROOT / ".gitignore").read_text()
                assert f"> {GENERATED_RULES}" in (DEPLOY / "docker-compose.catalog.yml"
                                                  ).read_text()
                continue
            assert (DEPLOY / source).resolve().exists(), source


def test_compose_ports_agree_across_the_stack() -> None:
    services = COMPOSE["services"]
    monitor = services["depin-monitor"]
    listen_port = option(monitor["command"], "--listen").rsplit(":", 1)[1]
    assert monitor["ports"] == [f"127.0.0.1:{listen_port}:{listen_port}"]
    job = next(j for j in PROMETHEUS_YML["scrape_configs"] if j["job_name"] == "depin-monitor")
    assert job["static_configs"][0]["targets"] == [f"depin-monitor:{listen_port}"]
    assert PROMETHEUS_YML["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"]
    assert services["alertmanager"]["ports"] == ["127.0.0.1:9093:9093"]
    datasource = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/prometheus.yml")
                                .read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    sink_port = option(services["alert-log"]["command"], "--listen").rsplit(":", 1)[1]
    urls = re.findall(r"^\s+- url: (\S+)$", ALERTMANAGER_YML, re.M)
    assert urls and all(u.startswith(f"http://alert-log:{sink_port}/") for u in urls)
    # Prometheus loads the one rule file the stack mounts
    rule_mounts = [v for v in services["prometheus"]["volumes"] if "/rules/" in v]
    assert [v.split(":")[1] for v in rule_mounts] == ["/etc/prometheus/rules/depin.yml"]
    assert PROMETHEUS_YML["rule_files"] == ["rules/*.yml"]
    # Grafana opens on the landing page, which the dashboards mount provides
    grafana = services["grafana"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    home_file = host_path(grafana, home)
    assert home_file is not None and home_file.name == "depin-network-comparison.json"
    assert home_file.exists()


@pytest.mark.parametrize("services", [COMPOSE["services"], merged_services()],
                         ids=["demo", "catalog"])
def test_compose_monitor_command_is_a_valid_invocation(services: dict[str, dict]) -> None:
    monitor = services["depin-monitor"]
    argv = monitor["command"]
    args = build_parser().parse_args(argv)  # argparse exits 2 on a bad option
    assert args.listen.startswith("0.0.0.0:")  # reachable from the other containers
    if args.command == "run":
        config = host_path(monitor, args.config)
        assert config is not None and args.skip_missing_keys
        proc = depin("check", "-c", str(config))
        assert proc.returncode == 0, proc.stderr
    else:  # the demo itself runs in test_dashboard_queries.py, with this exact command
        assert args.command == "demo" and args.duration == 0
    assert args.db.startswith("/var/lib/depin-monitor/")  # the monitor-data volume
    assert "monitor-data:/var/lib/depin-monitor" in monitor["volumes"]


def test_compose_prometheus_and_alertmanager_flags_exist() -> None:
    for service, binary in (("prometheus", "prometheus"),
                            ("alertmanager", "prometheus-alertmanager")):
        help_text = subprocess.run([tool(binary), "--help"], capture_output=True, text=True,
                                   timeout=30)
        flags = help_text.stdout + help_text.stderr
        for arg in COMPOSE["services"][service]["command"]:
            name = re.escape(arg.split("=")[0])
            assert re.search(rf"{name}(?![\w.-])", flags), f"{service}: {arg}"


def test_dockerfile_runs_the_demo_by_default_as_the_user_kubernetes_expects() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert cmd == COMPOSE["services"]["depin-monitor"]["command"]
    port = option(cmd, "--listen").rsplit(":", 1)[1]
    assert f"EXPOSE {port}" in dockerfile
    uid = int(re.search(r"--uid (\d+)", dockerfile).group(1))
    for deployment in kinds("Deployment"):
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_env_example_switches_to_the_catalog_with_every_key() -> None:
    env = dict(line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env.pop("COMPOSE_FILE").split(":") == ["docker-compose.yml",
                                                  "docker-compose.catalog.yml"]
    assert set(env) == CATALOG_KEYS
    assert not any(env.values())  # a template: no key in the repository
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/.env"], cwd=ROOT)
    assert ignored.returncode == 0, "deploy/.env (the keys) must be git-ignored"


def test_rules_for_the_networks_with_keys_only(tmp_path: Path) -> None:
    """The documented step before the catalog stack: rules for what `run` will probe, so
    skipped networks do not page DepinProbesStopped."""
    env = {"PATH": "/usr/bin:/bin", "HYPERBOLIC_API_KEY": "k", "CHUTES_API_KEY": ""}
    proc = depin("rules", "-c", "examples/networks.yaml", "--skip-missing-keys", env=env)
    assert proc.returncode == 0, proc.stderr
    rules = yaml.safe_load(proc.stdout)
    assert {r["labels"]["network"] for g in rules["groups"] for r in g["rules"]
            if r.get("alert") == "DepinProbesStopped"} == {"hyperbolic", "livepeer"}  # keyless
    assert "skipping network chutes: environment variable CHUTES_API_KEY" in proc.stderr
    (tmp_path / "catalog.yml").write_text(proc.stdout)
    check = subprocess.run([tool("promtool"), "check", "rules", str(tmp_path / "catalog.yml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


# -- Alertmanager ----------------------------------------------------------------------------

def receiver_examples() -> dict[str, str]:
    """The commented, ready-to-use receiver blocks of alertmanager.yml, by kind."""
    blocks = re.findall(r"^    # (\w+_configs):\n((?:    #   .*\n)+)", ALERTMANAGER_YML, re.M)
    return {kind: f"{kind}:\n" + re.sub(r"^    # ", "", body, flags=re.M)
            for kind, body in blocks}


def test_alertmanager_has_ready_examples_that_amtool_accepts(tmp_path: Path) -> None:
    examples = receiver_examples()
    assert {"slack_configs", "pagerduty_configs", "email_configs", "webhook_configs"} <= set(
        examples)
    config = yaml.safe_load(ALERTMANAGER_YML)
    for kind, block in examples.items():
        config["receivers"][0] = {"name": "oncall", **yaml.safe_load(block)}
        path = tmp_path / f"{kind}.yml"
        path.write_text(yaml.safe_dump(config))
        proc = subprocess.run([tool("amtool"), "check-config", str(path)],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, f"{kind}:\n{proc.stdout}{proc.stderr}"


@functools.cache
def import_alert_log():
    """deploy/alertmanager/alert_log.py, a standalone script (not a package module)."""
    spec = importlib.util.spec_from_file_location("alert_log", DEPLOY / "alertmanager" /
                                                  "alert_log.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def alert_log():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), import_alert_log().Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_alert_log_prints_each_alert_and_rejects_other_posts(
        alert_log: str, capsys: pytest.CaptureFixture[str]) -> None:
    message = {"version": "4", "status": "firing", "receiver": "oncall", "alerts": [
        {"status": "firing", "startsAt": "2026-01-01T00:00:00Z",
         "labels": {"alertname": "DepinAvailabilityBudgetBurn", "severity": "page",
                    "network": "io-net", "sli": "availability"},
         "annotations": {"summary": "io-net: availability error budget burning too fast"}}]}
    assert httpx.post(f"{alert_log}/page", json=message).status_code == 200
    assert httpx.post(f"{alert_log}/page", content=b"<html>").status_code == 400
    assert httpx.post(f"{alert_log}/page", json={"alerts": "x"}).status_code == 400
    assert "1 alerts received" in httpx.get(alert_log).text
    out = capsys.readouterr().out
    assert ("PAGE firing DepinAvailabilityBudgetBurn network=io-net sli=availability "
            "receiver=oncall path=/page :: io-net: availability error budget") in out
    assert "not an Alertmanager webhook message" in out


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(st.one_of(json_values, st.fixed_dictionaries({"alerts": st.lists(json_values)}),
                 st.fixed_dictionaries({"alerts": st.lists(st.fixed_dictionaries(
                     {"labels": json_values, "annotations": json_values}))})))
def test_alert_log_never_fails_on_any_json(body: object) -> None:
    lines = import_alert_log().parse_message("/page", json.dumps(body).encode())
    assert lines is None or all(isinstance(line, str) for line in lines)


# -- Kubernetes ------------------------------------------------------------------------------

def test_kubernetes_core_objects_validate_against_the_kubernetes_schemas() -> None:
    import kubernetes_validate

    core = [doc for doc in [*K8S, SECRET] if "coreos.com" not in doc["apiVersion"]]
    assert {d["kind"] for d in core} == {"ConfigMap", "PersistentVolumeClaim", "Deployment",
                                         "Service", "Secret"}
    for doc in core:  # strict: an unknown or misspelt field fails too
        kubernetes_validate.validate(doc, "1.30", strict=True)


@pytest.mark.parametrize("doc", [*[d for d in K8S if d["kind"] == "ServiceMonitor"],
                                 PROMETHEUS_RULE], ids=["ServiceMonitor", "PrometheusRule"])
def test_prometheus_operator_objects_validate_against_the_crd_models(doc: dict) -> None:
    """The CRDs' OpenAPI schemas as pydantic models: types and enums are checked on load,
    and unknown fields (which the models drop) by comparing the round trip."""
    from cloudcoil.models.prometheus_operator import v1

    model = getattr(v1, doc["kind"]).model_validate(doc)
    assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == doc


def test_kubernetes_objects_fit_together(tmp_path: Path) -> None:
    deployments = kinds("Deployment")
    service, monitor = kinds("Service")[0], kinds("ServiceMonitor")[0]
    locations = set()
    for deployment in deployments:
        pod = deployment["spec"]["template"]
        labels, spec = pod["metadata"]["labels"], pod["spec"]
        assert deployment["spec"]["replicas"] == 1  # two would double-count runs
        assert service["spec"]["selector"].items() <= labels.items()
        assert monitor["spec"]["podTargetLabels"] == ["location"] and "location" in labels
        locations.add(labels["location"])
        config_map = next(c for c in kinds("ConfigMap")
                          if c["metadata"]["name"] == spec["volumes"][0]["configMap"]["name"])
        config = yaml.safe_load(config_map["data"]["config.yaml"])
        assert config["location"] == labels["location"]
        container = spec["containers"][0]
        args = build_parser().parse_args(container["args"])
        assert args.command == "run" and args.skip_missing_keys
        assert container["envFrom"][0]["secretRef"]["name"] == SECRET["metadata"]["name"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        path = tmp_path / f"{labels['location']}.yaml"
        path.write_text(config_map["data"]["config.yaml"])
        proc = depin("check", "-c", str(path))
        assert proc.returncode == 0, proc.stderr
    assert len(locations) == len(deployments) >= 2
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    # the job label is the Service's name: DepinMonitorDown matches up{job="depin-monitor"}
    assert service["metadata"]["name"] == "depin-monitor"
    assert set(SECRET["stringData"]) == CATALOG_KEYS
    assert not any(SECRET["stringData"].values())


def test_prometheus_rule_refuses_test_time_scales() -> None:
    proc = depin("rules", "-c", "examples/demo.yaml", "--format", "prometheusrule",
                 "--time-scale", "60")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--time-scale is for tests" in proc.stderr and "Traceback" not in proc.stderr


def test_prometheus_rule_wraps_the_generated_rules(tmp_path: Path) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus/rules/networks.yml").read_text())
    assert PROMETHEUS_RULE["spec"] == rules
    (tmp_path / "spec.yml").write_text(yaml.safe_dump(PROMETHEUS_RULE["spec"]))
    proc = subprocess.run([tool("promtool"), "check", "rules", str(tmp_path / "spec.yml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- systemd ---------------------------------------------------------------------------------

def test_systemd_unit_verifies_and_is_rated_ok(tmp_path: Path) -> None:
    unit = (DEPLOY / "systemd/depin-monitor.service").read_text()
    exec_start = re.search(r"^ExecStart=(\S+) (.*)$", unit, re.M)
    assert exec_start is not None
    args = build_parser().parse_args(exec_start.group(2).split())
    assert args.command == "run" and args.listen == "127.0.0.1:9464"
    assert args.db.startswith("/var/lib/depin-monitor/")  # StateDirectory=depin-monitor
    for directive in ("DynamicUser=yes", "StateDirectory=depin-monitor", "ProtectSystem=strict",
                      "NoNewPrivileges=yes", "CapabilityBoundingSet=\n"):
        assert directive in unit
    # verify wants ExecStart to exist: point it at this checkout's installed command
    installed = shutil.which("depin-monitor") or str(Path(sys.executable).parent /
                                                      "depin-monitor")
    copy = tmp_path / "depin-monitor.service"
    copy.write_text(unit.replace(exec_start.group(1), installed))
    analyze = tool("systemd-analyze")
    proc = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    # exposure 0 (locked down) .. 10 (exposed); systemd rates under 2.0 "OK"
    proc = subprocess.run([analyze, "security", "--offline=true", "--threshold=20", str(copy)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert re.search(r"Overall exposure level .*: 1\.\d OK", proc.stdout)


def test_the_install_steps_work_on_debian_12() -> None:
    """Debian 12 refuses a system-wide `pip install` (PEP 668): the unit's comment and the
    Debian path install into a virtualenv, and check the keys the unit will load."""
    unit = (DEPLOY / "systemd/depin-monitor.service").read_text()
    doc = (DEPLOY.parent / "docs/operators.md").read_text()
    for text in (unit, doc):
        assert "pip install depin-monitor" not in text
        assert "python3 -m venv /opt/depin-monitor" in text
        assert "--env-file /etc/depin-monitor/env" in text
    assert "EnvironmentFile=-/etc/depin-monitor/env" in unit


DEBIAN_DEFAULT = next((p for p in (Path("/usr/share/doc/prometheus/examples/prometheus.yml"),
                                   Path("/etc/prometheus/prometheus.yml")) if p.is_file()), None)


@pytest.mark.skipif(DEBIAN_DEFAULT is None or shutil.which("promtool") is None,
                    reason="needs Debian's prometheus package (its default config, promtool)")
def test_the_snippet_merges_into_debians_own_prometheus_yml(tmp_path: Path) -> None:
    """docs/operators.md's snippet, merged key by key into the package's default config as
    the doc says: a valid config that scrapes the monitor and labels its alerts' location."""
    assert DEBIAN_DEFAULT is not None
    doc = (ROOT / "docs" / "operators.md").read_text()
    block = re.search(r"merge it into Debian's own file.*?```yaml\n(.*?)```", doc, re.S)
    assert block, "docs/operators.md lost the merge snippet"
    snippet = yaml.safe_load(block.group(1))
    merged = yaml.safe_load(DEBIAN_DEFAULT.read_text())
    merged["global"].setdefault("external_labels", {}).update(
        snippet["global"]["external_labels"])
    merged["rule_files"] = (merged.get("rule_files") or []) + snippet["rule_files"]
    merged["scrape_configs"] += snippet["scrape_configs"]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(merged))
    proc = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert merged["global"]["external_labels"]["location"] == "eu-west-1"
    job = next(j for j in merged["scrape_configs"] if j["job_name"] == "depin-monitor")
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:9464"]


def test_the_runbooks_per_run_export_runs_as_written(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The DepinAvailabilityBudgetBurn runbook's `report --runs` command, on a real store."""
    from monitor import cli
    from tests.test_report import result, write_store

    runbook = (ROOT / "docs" / "runbooks.md").read_text()
    command = re.search(r"`(depin-monitor report [^`]*--runs[^`]*)`", runbook, re.S)
    assert command, "the runbook lost its per-run export"
    db = write_store(tmp_path / "results.db", [result("N", i) for i in range(3)])
    config = tmp_path / "config.yaml"
    config.write_text('networks:\n  - {name: N, base_url: "http://127.0.0.1:1/v1", model: m}\n')
    argv = (command.group(1).replace("/var/lib/depin-monitor/results.db", db)
            .replace("CONFIG", str(config)).replace("runs.csv", str(tmp_path / "runs.csv"))
            .replace("--since 6h", "").split()[1:])
    assert cli.main(argv) == 0
    lines = (tmp_path / "runs.csv").read_text().splitlines()
    assert lines[0].startswith("started_at,network,target") and len(lines) == 4
