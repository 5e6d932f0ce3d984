"""Deployment files: they parse, agree with each other, and dashboards only query real series."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from monitor.analysis.sla import SLAFigure
from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.exporter.metrics import MetricsSink
from monitor.exporter.rules import MONITOR_JOB, NetworkSLO, generate
from monitor.exporter.sla_collector import SLACollector

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))


def exposed_names() -> set[str]:
    """Every series name the monitor exposes, plus the recording rules and Prometheus' own."""
    sink = MetricsSink({"n": BUILTIN_PROFILES["enterprise"]})
    sink.init_targets([("n", "t", "j")])
    sink.add_collector(SLACollector(lambda: [SLAFigure("n", 1, 1.0, 1.0, {"availability": True},
                                                       {"availability": 1.0},
                                                       {"availability": 0.0})]))
    for h in (sink.ttft, sink.duration, sink.tps, sink.gap):
        h.labels("n", "t", "j").observe(1.0)
    sink.lateness.labels("n").observe(0.1)
    sink.observe_loop_lag(0.001)
    text = generate_latest(sink.registry).decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
             if line and not line.startswith("#")}
    rules = generate([NetworkSLO("n", BUILTIN_PROFILES["enterprise"], 60)])
    names |= {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    return names | {"up"}


def test_dashboards_parse_and_query_only_existing_series() -> None:
    assert len(DASHBOARDS) >= 2
    names = exposed_names()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
        exprs += [v["definition"] for v in board["templating"]["list"] if "definition" in v]
        assert exprs, path.name
        for expr in exprs:
            for name in re.findall(r"\b(?:depin_[a-z_]+|slo:[a-z_:0-9]+|process_[a-z_]+|up)\b"
                                   r"(?=\s*[{\[)])", expr):
                assert name in names, f"{path.name}: {name} is not exposed"


def test_dashboard_panels_have_unique_ids_and_the_provisioned_datasource() -> None:
    ds = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/prometheus.yml")
                        .read_text())["datasources"][0]
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        assert {p["datasource"]["uid"] for p in board["panels"]} == {ds["uid"]}
    provider = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/depin.yml")
                              .read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_docker_compose_wires_the_stack() -> None:
    compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    services = compose["services"]
    assert {"depin-monitor", "prometheus", "alertmanager", "grafana"} <= services.keys()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / "deploy" / source).resolve().exists(), source
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == MONITOR_JOB)
    assert job["static_configs"][0]["targets"] == ["depin-monitor:9464"]
    assert "location" in prom["global"]["external_labels"]


@pytest.mark.parametrize("name", ["kubernetes/depin-monitor.yaml"])
def test_kubernetes_manifests_parse(name: str) -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / name).read_text()))
    kinds = {d["kind"] for d in docs}
    assert {"ConfigMap", "Deployment", "Service"} <= kinds
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_systemd_unit_runs_the_monitor_on_loopback() -> None:
    unit = (ROOT / "deploy/systemd/depin-monitor.service").read_text()
    assert re.search(r"^ExecStart=\S*depin-monitor run -c \S+ --listen 127\.0\.0\.1:9464$",
                     unit, re.M)
    assert "[Install]" in unit
