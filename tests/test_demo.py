"""`depin-monitor demo` as a newcomer runs it: the table, the verdict it shows, the store."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One eight-second demo, as a newcomer runs it: (its store, what it printed)."""
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    out = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "demo", "--duration", "8", "--db", str(db),
         "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    return db, out.stdout


def test_demo_shows_flaky_losing_and_stores_every_run(demo: tuple[Path, str]) -> None:
    db, stdout = demo
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"\s*(datacenter|depin-steady|depin-flaky)\s+(\d+)\s+([\d.]+) ?%", line)
        if m:
            rows[m.group(1)] = (int(m.group(2)), float(m.group(3)))
    assert set(rows) == {"datacenter", "depin-steady", "depin-flaky"}, stdout
    assert all(runs >= 4 for runs, _ in rows.values())
    assert rows["datacenter"][1] > rows["depin-flaky"][1]  # the stable network wins
    assert "datacenter is HTTPS: TLSv1." in stdout  # the private-CA network (trustme)
    assert f"Database: {db}" in stdout
    assert f"depin-monitor report --db {db}" in stdout
    conn = sqlite3.connect(db)
    stored = dict(conn.execute("select network, count(*) from probe_results group by 1"))
    https = dict(conn.execute("select network, count(tls_version) from probe_results group by 1"))
    conn.close()
    assert stored == {name: runs for name, (runs, _) in rows.items()}  # every run is stored
    assert https["datacenter"] > 0 and https["depin-steady"] == https["depin-flaky"] == 0


def test_demo_shows_nodes_and_cost_and_its_report_the_credits(demo: tuple[Path, str]) -> None:
    """The flaky reference network churns through its nodes and names them; the demo's
    config has prices and spend, written beside the store so that its report has them too."""
    db, stdout = demo
    row = next(ln for ln in stdout.splitlines() if ln.startswith("depin-flaky "))
    nodes, cost = row.split()[8:10]
    assert int(nodes) >= 2 and cost.startswith("$")
    config = db.with_suffix(".config.yaml")
    assert f"depin-monitor report --db {db} -c {config}" in stdout
    report = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "report", "--db", str(db), "-c", str(config),
         "--format", "json"], capture_output=True, text=True, timeout=60)
    data = json.loads(report.stdout)
    flaky = next(g for g in data["groups"] if g["group"]["network"] == "depin-flaky")
    assert flaky["nodes"] >= 2 and flaky["effective_usd_per_mtok"] > flaky["list_usd_per_mtok"]
    month = next(m for m in data["months"] if m["network"] == "depin-flaky")
    assert month["spend_usd"] == 300.0 and month["credit_share"] is not None


def test_demo_catches_the_network_serving_another_model(demo: tuple[Path, str]) -> None:
    """The steady network serves another model under the claimed name: the model equality
    test against the datacenter's completions catches it within the eight seconds."""
    db, stdout = demo
    assert re.search(r"depin-steady DIFFERS: serves another model\? \(p=0\.000999", stdout), \
        stdout
    conn = sqlite3.connect(db)
    verdicts = dict(conn.execute("select network, verdict from equality_verdicts"))
    conn.close()
    assert verdicts["depin-steady"] == "differs"
    assert verdicts.get("depin-flaky") in (None, "same as reference")  # if it finished in time
