"""End to end with real processes: reference networks -> monitor -> Prometheus -> Alertmanager
-> a webhook in this test. One healthy network, one that fails every request (`down`).

The rules are the generator's, with time_scale=60 (1h windows become 1m, `for: 2m` becomes
2s) so the page alert fires within seconds. Everything listens on 127.0.0.1 free ports and
every process is stopped in `finally`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from aiohttp import web

from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.exporter.rules import NetworkSLO, render
from tests.conftest import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
ROOT = Path(__file__).resolve().parent.parent
MODEL = "sim-llama-3.1-8b-instruct"
HEALTHY, DOWN = "steady-net", "down-net"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (os.path.exists(PROMETHEUS) and os.path.exists(ALERTMANAGER)),
                       reason="needs Debian's prometheus and prometheus-alertmanager "
                              "(apt-get install prometheus prometheus-alertmanager)"),
]


class Processes:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()
        self.procs.append((name, proc))
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n" + (self.tmp / f"{name}.log").read_text()[-3000:]
                         for name, _ in self.procs)

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    p = Processes(tmp_path)
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    async def alerts(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/alerts", alerts)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/alerts", received
    finally:
        await runner.cleanup()


def depin(*args: str) -> list[str]:
    return [sys.executable, "-m", "monitor.cli", *args]


def start_monitor(procs: Processes, tmp: Path, nets: dict[str, int], port: int) -> None:
    """`depin-monitor run` on a config naming the given networks, probing every second."""
    config = {"location": "e2e", "networks": [
        {"name": name, "kind": "openai", "base_url": f"http://127.0.0.1:{p}/v1",
         "models": {"small": MODEL}, "jobs": ["chat-short-v1"], "interval": "1s",
         "sla": "enterprise"} for name, p in nets.items()]}
    path = tmp / "monitor.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    procs.start("monitor", *depin("run", "-c", str(path), "--listen", f"127.0.0.1:{port}",
                                  "--db", str(tmp / "e2e.db")))


async def wait_for(what: str, check, timeout: float, procs: Processes):
    deadline = time.perf_counter() + timeout
    last: object = None
    while time.perf_counter() < deadline:
        try:
            value = await check()
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            last = exc  # not up yet (Prometheus answers 503 text while starting)
        else:
            if value:
                return value
            last = value
        await asyncio.sleep(0.5)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})\n{procs.logs()}")


async def test_failing_network_pages_through_prometheus_and_alertmanager(
        procs: Processes, tmp_path: Path, webhook: tuple[str, list[dict]]) -> None:
    hook_url, received = webhook
    nets = {HEALTHY: free_port(), DOWN: free_port()}
    procs.start("sim-healthy", *depin("simulate", "--profile", "datacenter", "--port",
                                      str(nets[HEALTHY])))
    procs.start("sim-down", *depin("simulate", "--profile", "down", "--port", str(nets[DOWN])))
    monitor_port, prom_port, am_port = free_port(), free_port(), free_port()

    rules = tmp_path / "rules.yml"
    rules.write_text(render([NetworkSLO(n, BUILTIN_PROFILES["enterprise"], 1.0) for n in nets],
                            time_scale=60))
    am_config = tmp_path / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump({
        "route": {"receiver": "hook", "group_by": ["alertname", "network", "sli"],
                  "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
        "inhibit_rules": [{"source_matchers": ['severity="page"'],
                           "target_matchers": ['severity="ticket"'],
                           "equal": ["network", "sli"]}],
        "receivers": [{"name": "hook", "webhook_configs": [{"url": hook_url}]}],
    }))
    prom_config = tmp_path / "prometheus.yml"
    prom_config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                   "external_labels": {"location": "e2e"}},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": "depin-monitor", "static_configs": [
            {"targets": [f"127.0.0.1:{monitor_port}"]}]}],
    }))
    procs.start("alertmanager", ALERTMANAGER, f"--config.file={am_config}",
                f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=")
    procs.start("prometheus", PROMETHEUS, f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}")
    start_monitor(procs, tmp_path, nets, monitor_port)

    api = f"http://127.0.0.1:{prom_port}/api/v1"
    async with httpx.AsyncClient(timeout=5) as client:

        async def query(expr: str) -> dict[str, float]:
            r = await client.get(f"{api}/query", params={"query": expr})
            return {s["metric"].get("network", ""): float(s["value"][1])
                    for s in r.json()["data"]["result"]}

        async def runs_of_both() -> dict[str, float] | None:
            runs = await query("sum by (network) (depin_probe_runs_total)")
            return runs if all(runs.get(n, 0) >= 2 for n in nets) else None

        await wait_for("both networks' runs in Prometheus", runs_of_both, 30, procs)
        # Our series keep their own label names once stored: `workload` is the job's name,
        # `job` is Prometheus' scrape job, and nothing became `exported_job`.
        r = await client.get(f"{api}/query", params={
            "query": 'depin_probe_runs_total{workload="chat-short-v1"}'})
        stored = [s["metric"] for s in r.json()["data"]["result"]]
        assert {m["network"] for m in stored} == set(nets)
        assert all(m["job"] == "depin-monitor" and "exported_job" not in m for m in stored)
        failures = await query('sum by (network) (depin_probe_failures_total'
                               '{outcome="http_error"})')
        assert failures[DOWN] >= 2 and failures.get(HEALTHY, 0) == 0

        async def error_ratios() -> dict[str, float] | None:
            r = await query('slo:sli_error:ratio_rate5m{sli="availability"}')
            # NaN (0/0) until a window holds two scrapes with runs between them
            return r if len(r) == 2 and all(v == v for v in r.values()) else None

        ratios = await wait_for("the availability recording rule", error_ratios, 20, procs)
        assert ratios[DOWN] == 1.0
        assert ratios[HEALTHY] < 0.5

        async def page_at_alertmanager() -> list[dict]:
            r = await client.get(f"http://127.0.0.1:{am_port}/api/v2/alerts")
            return [a for a in r.json() if a["labels"].get("alertname")
                    == "DepinAvailabilityBudgetBurn" and a["labels"].get("severity") == "page"]

        (alert,) = await wait_for("the page alert at Alertmanager", page_at_alertmanager, 30,
                                  procs)
        assert alert["labels"]["network"] == DOWN
        assert alert["labels"]["location"] == "e2e"  # external_labels reach Alertmanager

    async def delivered() -> list[dict]:
        return [a for msg in received for a in msg["alerts"]
                if a["labels"]["alertname"] == "DepinAvailabilityBudgetBurn"]

    alerts = await wait_for("the webhook delivery", delivered, 15, procs)
    assert {a["labels"]["network"] for a in alerts} == {DOWN}
    assert alerts[0]["annotations"]["runbook_url"].endswith("#depinavailabilitybudgetburn")
    assert all(a["labels"]["severity"] == "page" for a in alerts)  # ticket inhibited
