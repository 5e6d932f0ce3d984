"""The Kubernetes manifests, generated so that they never drift from the catalog and the rules.

    python -m deploy.kubernetes.build            # rewrite deploy/kubernetes/*.yaml
    python -m deploy.kubernetes.build --check    # exit 1 if a committed file is out of date

depin-monitor.yaml: per location a ConfigMap (examples/networks.yaml with that `location`), a
PersistentVolumeClaim for its SQLite store and a Deployment pinned to that region's nodes;
one Service over all of them and a ServiceMonitor for the Prometheus Operator, which copies
each pod's `location` label onto its series. prometheusrule.yaml: `depin-monitor rules
--format prometheusrule` for the catalog. secret.example.yaml (hand-written) is the keys'
template. One replica per location: two would probe twice and double-count runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from deploy import generated

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "deploy" / "kubernetes"
CATALOG = "examples/networks.yaml"
NAME = "depin-monitor"
IMAGE = "depin-monitor:0.1.0"  # build and push deploy/Dockerfile; set your registry here
PORT = 9464
# location -> the node label value that puts its probes there (topology.kubernetes.io/region)
LOCATIONS = {"eu-west-1": "eu-west-1", "us-east-1": "us-east-1"}
SECRET = "depin-monitor-keys"  # secret.example.yaml
LABELS = {"app.kubernetes.io/name": NAME}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the config, PromQL) as literal blocks, readable in review."""


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def config_map(location: str) -> dict:
    catalog = (ROOT / CATALOG).read_text()
    config, count = re.subn(r"^location: .*$", f"location: {location}", catalog, flags=re.M)
    assert count == 1, f"{CATALOG}: expected one top-level `location:`"
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{NAME}-{location}", "labels": LABELS},
            "data": {"config.yaml": config}}


def volume_claim(location: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"{NAME}-{location}", "labels": LABELS},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "2Gi"}}}}


def deployment(location: str, region: str) -> dict:
    labels = {**LABELS, "location": location}
    container = {
        "name": NAME,
        "image": IMAGE,
        "args": ["run", "-c", "/etc/depin-monitor/config.yaml", "--listen", f"0.0.0.0:{PORT}",
                 "--db", "/var/lib/depin-monitor/results.db", "--skip-missing-keys"],
        "envFrom": [{"secretRef": {"name": SECRET}}],
        "ports": [{"name": "metrics", "containerPort": PORT}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"},
                          "periodSeconds": 20},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"},
                           "periodSeconds": 10},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"memory": "512Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/depin-monitor", "readOnly": True},
            {"name": "data", "mountPath": "/var/lib/depin-monitor"},
            {"name": "tmp", "mountPath": "/tmp"},  # SQLite's temporary files
        ],
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"{NAME}-{location}", "labels": labels},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # never two writers on one store
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"topology.kubernetes.io/region": region},
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                        "runAsGroup": 10001, "fsGroup": 10001,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    # the default --grace (10 s) lets runs in flight finish and be stored
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{NAME}-{location}"}},
                        {"name": "data",
                         "persistentVolumeClaim": {"claimName": f"{NAME}-{location}"}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def service() -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NAME, "labels": LABELS},
            "spec": {"selector": LABELS,
                     "ports": [{"name": "metrics", "port": PORT, "targetPort": "metrics"}]}}


def service_monitor() -> dict:
    # The job label is the Service's name, depin-monitor: DepinMonitorDown matches on it.
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": NAME, "labels": LABELS},
            "spec": {"selector": {"matchLabels": LABELS},
                     "podTargetLabels": ["location"],
                     "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s",
                                    "scrapeTimeout": "10s"}]}}


def manifests() -> dict[str, str]:
    docs: list[dict] = []
    for location, region in LOCATIONS.items():
        docs += [config_map(location), volume_claim(location), deployment(location, region)]
    docs += [service(), service_monitor()]
    header = ("# Generated by `python -m deploy.kubernetes.build` from examples/networks.yaml. "
              "Do not edit: regenerate.\n"
              f"# Keys first: edit and apply secret.example.yaml ({SECRET}).\n"
              "#   kubectl apply -f deploy/kubernetes/\n")
    body = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, width=100)
    rules = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "rules", "-c", CATALOG, "--format",
         "prometheusrule"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return {"depin-monitor.yaml": header + body, "prometheusrule.yaml": rules}


def main(argv: Sequence[str] | None = None) -> int:
    return generated.main(manifests, OUT_DIR, __doc__, "python -m deploy.kubernetes.build", argv)


if __name__ == "__main__":
    sys.exit(main())
