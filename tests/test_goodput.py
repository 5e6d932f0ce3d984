"""Goodput leaves out runs refused for the buyer's own key or credits, as availability does:
the dashboards' goodput queries, exactly as committed, evaluated by promtool's PromQL engine."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPARISON = ROOT / "dashboards" / "depin-network-comparison.json"
LABELS = 'job="depin-monitor",location="eu",target="small",workload="chat-short-v1"'


def series(network: str, name: str, per_minute: int, outcome: str | None = None) -> dict:
    """A counter growing by `per_minute` each minute for an hour."""
    extra = f',outcome="{outcome}"' if outcome else ""
    return {"series": f'{name}{{{LABELS},network="{network}"{extra}}}',
            "values": f"0+{per_minute}x60"}


def counters(network: str, good: int, disconnects: int, buyer_side: int) -> list[dict]:
    runs = good + disconnects + buyer_side
    return [series(network, "depin_probe_runs_total", runs),
            series(network, "depin_probe_good_total", good),
            series(network, "depin_probe_failures_total", disconnects, "disconnect"),
            series(network, "depin_probe_failures_total", buyer_side, "auth_error"),
            series(network, "depin_probe_failures_total", 0, "quota_exhausted")]


def goodput_queries() -> dict[str, str]:
    """Each panel's goodput query, Grafana's variables filled in (an hour's range, All)."""
    board = json.loads(COMPARISON.read_text())
    out = {}
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            if "depin_probe_good_total" in target["expr"]:
                out[panel["title"]] = re.sub(
                    r"\$(\w+)", lambda m: {"__rate_interval": "5m", "__range": "1h"}.get(
                        m.group(1), ".*"), target["expr"])
    return out


def test_goodput_leaves_out_runs_refused_for_the_buyers_key(tmp_path: Path) -> None:
    """`steady`: 9 of 10 runs good, 1 disconnect. `lapsed`: half its runs refused for our own
    key, every other run good. The lapsed key is the buyer's problem: its goodput is 100 %
    like its availability, not 50 %."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (.ci/run installs it)")
    queries = goodput_queries()
    assert set(queries) == {"Networks", "Goodput"}  # the table's column and the graph
    expected = [{"labels": '{network="lapsed"}', "value": 1.0},
                {"labels": '{network="steady"}', "value": 0.9}]
    test = {"rule_files": [], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": counters("steady", good=9, disconnects=1, buyer_side=0)
        + counters("lapsed", good=5, disconnects=0, buyer_side=5),
        "promql_expr_test": [{"expr": expr, "eval_time": "60m", "exp_samples": expected}
                             for expr in queries.values()],
    }]}
    path = tmp_path / "goodput.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    out = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
