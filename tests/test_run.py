"""`depin-monitor run` as a user runs it (a subprocess) against a loopback OpenAI server:
--once stores every schedule's run; SIGTERM loses nothing; SIGKILL loses at most the bound."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from monitor.storage.files import integrity_ok
from monitor.storage.store import FLUSH_INTERVAL_S
from tests.conftest import free_port
from tests.fakes_openai import FakeOpenAI, fake_openai

# What a SIGKILL may lose (docs/operations.md): results of the last flush interval plus the
# batch being committed, under 1 s.
CRASH_BOUND_S = 2 * FLUSH_INTERVAL_S


def write_config(tmp: Path, fake: FakeOpenAI, networks: list[str], interval: str = "60s"
                 ) -> Path:
    config = {"location": "test-lab", "networks": [
        {"name": name, "kind": "openai", "base_url": fake.base_url(name),
         "models": {"small": "fake-8b"}, "jobs": ["chat-short-v1"], "interval": interval,
         "concurrency": 2, "sla": "enterprise"} for name in networks]}
    path = tmp / "monitor.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def start(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)


async def finish(proc: asyncio.subprocess.Process, timeout: float = 30) -> tuple[int, str]:
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def wait_until(check, timeout: float = 20) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        assert time.perf_counter() < deadline, "timed out"
        await asyncio.sleep(0.02)


def rows(db: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("select * from probe_results order by started_at").fetchall()
    finally:
        conn.close()


async def test_once_runs_every_schedule_once_and_stores_it(tmp_path: Path) -> None:
    async with fake_openai() as fake:
        config = write_config(tmp_path, fake, ["alpha", "beta", "gamma"])
        db = tmp_path / "r.db"
        code, err = await finish(await start("-v", "run", "-c", str(config), "--db", str(db),
                                             "--once"))
        assert code == 0, err
        assert fake.received == 3
    stored = rows(db)
    assert sorted(r["network"] for r in stored) == ["alpha", "beta", "gamma"]
    for r in stored:
        assert r["outcome"] == "ok" and r["location"] == "test-lab"
        assert r["ttft_s"] > 0 and r["output_tokens"] == 2
        assert 0 <= r["started_at"] - r["scheduled_at"] < 1.0  # lateness is visible
    assert "total runs=3 ok=3" in err


async def test_sigterm_stops_gracefully_and_loses_nothing(tmp_path: Path) -> None:
    async with fake_openai(delay_s=0.3) as fake:
        config = write_config(tmp_path, fake, ["alpha", "beta", "gamma"], interval="100ms")
        db = tmp_path / "r.db"
        port = free_port()
        proc = await start("run", "-c", str(config), "--db", str(db),
                           "--listen", f"127.0.0.1:{port}")
        try:
            await wait_until(lambda: len(fake.completed) >= 6)
            async with httpx.AsyncClient() as client:
                ready = await client.get(f"http://127.0.0.1:{port}/readyz")
                metrics = await client.get(f"http://127.0.0.1:{port}/metrics")
                nets = (await client.get(f"http://127.0.0.1:{port}/api/v1/networks")).json()
            assert ready.status_code == 200
            # just started: each network's 1h page window holds a few of its 36,000 runs
            assert re.search(r"^alpha: warming up: \d+ of 36000 runs \(1h page window\)$",
                             ready.text, re.M), ready.text
            warming = {n["name"]: n["warming_up"] for n in nets["networks"]}
            assert warming["alpha"]["needed"] == 36000 and 0 < warming["alpha"]["runs"] < 36000
            series = 'network="alpha",target="small",workload="chat-short-v1"'
            assert f"depin_probe_runs_total{{{series}}}" in metrics.text
            await wait_until(lambda: fake.received > len(fake.completed))  # runs in flight
        finally:
            proc.send_signal(signal.SIGTERM)
        code, err = await finish(proc)
        assert code == 0, err
        assert fake.received == len(fake.completed)  # in-flight runs were allowed to finish
    stored = rows(db)
    assert len(stored) == fake.received  # every run that was started is in the store
    assert {r["outcome"] for r in stored} == {"ok"}
    assert integrity_ok(db)


async def test_sigkill_loses_at_most_the_documented_bound(tmp_path: Path) -> None:
    async with fake_openai(delay_s=0.05) as fake:
        config = write_config(tmp_path, fake, [f"n{i}" for i in range(6)], interval="50ms")
        db = tmp_path / "r.db"
        proc = await start("run", "-c", str(config), "--db", str(db), "--listen", "off")
        await wait_until(lambda: len(fake.completed) >= 100)
        await asyncio.sleep(1.2)
        killed_at = time.perf_counter()
        proc.kill()
        await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        completed_total = len(fake.completed)
        safe = fake.completed_before(killed_at - CRASH_BOUND_S)
    assert integrity_ok(db)  # the file opens cleanly after the crash
    stored = rows(db)
    assert safe >= 100
    # every run finished more than the bound before the kill is in the store ...
    assert len(stored) >= safe, (len(stored), safe, completed_total)
    # ... and nothing is made up
    assert len(stored) <= completed_total


async def test_run_without_a_reachable_network_records_connect_errors(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"networks": [
        {"name": "gone", "base_url": f"http://127.0.0.1:{port}/v1", "model": "m"}]}))
    db = tmp_path / "r.db"
    code, err = await finish(await start("run", "-c", str(config), "--db", str(db), "--once"))
    assert code == 0, err
    assert [r["outcome"] for r in rows(db)] == ["connect_error"]


@pytest.mark.parametrize("args", [["--db", "/proc/nope/x.db"], ["--listen", "nonsense"]])
async def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    async with fake_openai() as fake:
        config = write_config(tmp_path, fake, ["alpha"])
        code, err = await finish(await start("run", "-c", str(config), *args))
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
