"""`depin-monitor demo` as a newcomer runs it: the table, the verdict it shows, the store."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path


def test_demo_shows_flaky_losing_and_stores_every_run(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    out = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "demo", "--duration", "8", "--db", str(db),
         "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    rows = {}
    for line in out.stdout.splitlines():
        m = re.match(r"\s*(datacenter|depin-steady|depin-flaky)\s+(\d+)\s+([\d.]+) ?%", line)
        if m:
            rows[m.group(1)] = (int(m.group(2)), float(m.group(3)))
    assert set(rows) == {"datacenter", "depin-steady", "depin-flaky"}, out.stdout
    assert all(runs >= 4 for runs, _ in rows.values())
    assert rows["datacenter"][1] > rows["depin-flaky"][1]  # the stable network wins
    assert "datacenter is HTTPS: TLSv1." in out.stdout  # the private-CA network (trustme)
    assert f"Database: {db}" in out.stdout
    assert f"depin-monitor report --db {db}" in out.stdout
    conn = sqlite3.connect(db)
    stored = dict(conn.execute("select network, count(*) from probe_results group by 1"))
    https = dict(conn.execute("select network, count(tls_version) from probe_results group by 1"))
    conn.close()
    assert stored == {name: runs for name, (runs, _) in rows.items()}  # every run is stored
    assert https["datacenter"] > 0 and https["depin-steady"] == https["depin-flaky"] == 0
    # the steady network serves another model under the claimed name: caught in seconds
    assert re.search(r"depin-steady DIFFERS: serves another model\? \(p=0\.000999", out.stdout), \
        out.stdout
    verdicts = dict(sqlite3.connect(db).execute(
        "select network, verdict from equality_verdicts where network = 'depin-steady'"))
    assert verdicts == {"depin-steady": "differs"}
