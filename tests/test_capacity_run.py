"""Capacity ladders in `depin-monitor run` as a user runs it (a subprocess) against a reference
network with a known capacity: the ladder is stored with its runs, exported as
depin_capacity_* (promtool-valid), its runs kept out of the canaries' series and store rows,
and the canaries of the network held while it climbs."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.storage.capacity import read_ladder_runs, read_ladders
from tests.conftest import StartSim, free_port
from tests.test_capacity_ladder import FAST
from tests.test_run import finish, start

Key = frozenset[tuple[str, str]]


def key(labels: dict[str, str], **more: str) -> Key:
    return frozenset({**labels, **more}.items())


def samples(text: str) -> dict[tuple[str, Key], float]:
    """Every sample of a /metrics page by (name, labels)."""
    return {(s.name, key(s.labels)): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def write_config(tmp: Path, base_url: str) -> Path:
    config = {
        "sla_profiles": {"load": {"ttft_p95_s": 0.2, "availability": 0.99,
                                  "decode_tps_min": 20,
                                  "capacity": {"streams": 4, "ladders": 0.5}}},
        "jobs": [{"name": "count-v1", "user": "Count upward from 1.", "max_tokens": 20,
                  "check": {"min_length": 1}}],
        "networks": [{"name": "capped", "base_url": base_url, "models": {"small": "m"},
                      "jobs": ["chat-short-v1"], "interval": "200ms", "sla": "load",
                      "capacity": {"interval": "2s", "job": "count-v1", "ladder": [1, 2, 4, 8],
                                   "step_duration": "1s", "requests_per_stream": 1}}]}
    path = tmp / "monitor.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def test_run_climbs_stores_and_exports_ladders(tmp_path: Path, start_sim: StartSim) -> None:
    net = await start_sim(FAST, nodes=1, slots_per_node=4, queue_per_node=16)  # capacity 4
    db, port = tmp_path / "r.db", free_port()
    proc = await start("-v", "run", "-c", str(write_config(tmp_path, net.base_url)), "--db",
                       str(db), "--listen", f"127.0.0.1:{port}")
    metrics = ""
    try:
        async with httpx.AsyncClient() as client:
            async def scrape() -> str:
                return (await client.get(f"http://127.0.0.1:{port}/metrics")).text

            async def a_knee() -> bool:
                nonlocal metrics
                try:
                    metrics = await scrape()
                except httpx.TransportError:
                    return False
                found = re.search(r'depin_capacity_ladders_total\{[^}]*stopped="knee"[^}]*\} '
                                  r'(\d+)', metrics)
                return bool(found) and float(found.group(1)) >= 1

            deadline = asyncio.get_running_loop().time() + 40
            while not await a_knee():
                assert asyncio.get_running_loop().time() < deadline, metrics[-3000:]
                await asyncio.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
    code, err = await finish(proc)
    assert code == 0, err
    values = samples(metrics)
    tier = {"network": "capped", "target": "small", "workload": "count-v1"}
    assert values["depin_capacity_sustained_streams", key(tier)] == 4
    assert values["depin_capacity_knee_streams", key(tier)] == 8
    assert values["depin_capacity_step_held", key(tier, streams="8")] == 0
    assert values["depin_capacity_step_held", key(tier, streams="4")] == 1
    assert values["depin_capacity_step_runs", key(tier, streams="8")] == 8
    assert values["depin_capacity_objective_streams", key({"network": "capped"})] == 4
    # a step's throughput grows with the streams up to the capacity, then stops growing
    rates = [values["depin_capacity_step_output_tokens_per_second", key(tier, streams=str(n))]
             for n in (1, 2, 4, 8)]
    assert rates[0] * 1.5 < rates[1] and rates[1] * 1.5 < rates[2] and rates[3] < rates[2] * 1.2
    assert not [name for name, labels in values if name.startswith("depin_probe_")
                and ("workload", "count-v1") in labels]  # the canaries' series never see it
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=metrics,
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
    assert "capacity capped/small: sustained 4 streams; stopped: knee" in err

    ladders = read_ladders([db])
    assert ladders and all(ladder.sustained == 4 for ladder in ladders)
    conn = sqlite3.connect(db)
    try:
        canaries = conn.execute("select job, started_at from probe_results").fetchall()
    finally:
        conn.close()
    assert canaries and {job for job, _ in canaries} == {"chat-short-v1"}
    for ladder in ladders:
        runs = read_ladder_runs(db, ladder.id)
        assert len(runs) == sum(s.runs for s in ladder.steps) == ladder.requests
        assert {r.job for _, r in runs} == {"count-v1"}
        first = min(r.started_at for _, r in runs)
        last = max(r.started_at + (r.duration_s or 0) for _, r in runs)
        held = [t for _, t in canaries if first + 0.05 < t < last - 0.05]
        assert held == [], "a canary ran while the ladder climbed"
