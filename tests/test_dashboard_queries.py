"""Every panel query of every dashboard, run on a real Prometheus scraping the real monitor.

The stack is deploy/'s, with real processes on loopback ports: the monitor runs the compose
stack's own command (`depin-monitor demo`: three reference networks inside its process);
Prometheus runs deploy/prometheus/prometheus.yml with 1 s scrape and evaluation intervals and
the demo's rules from `depin-monitor rules -c examples/demo.yaml --time-scale 60` (1h windows
become 1m, `for: 2m` becomes 2s); Alertmanager runs deploy/alertmanager/alertmanager.yml with
its group waits cut to 1 s, and its receivers reach the stack's alert-log receiver. So the
test also shows the default stack's alerts arriving at a receiver that exists.

Each dashboard's variables are resolved through Prometheus (`label_values`) and substituted
with real values, then with All (`.*`); Grafana's `$__rate_interval`, `$__range` and
`$__range_s` get the values Grafana would compute for a 1 s scrape interval. A query must
parse, and return data with All selected unless it is listed in NEEDS_MORE_THAN_THE_DEMO with
the reason; with the chosen values it may be empty only where that network truly has nothing
to show (no failures on the steady network), and 95 % of all queries must return data.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import free_port
from tests.test_e2e_prometheus import (
    ALERTMANAGER,
    PROMETHEUS,
    ROOT,
    Processes,
    depin,
    procs,  # noqa: F401 - the fixture
    pytestmark,  # noqa: F401 - e2e marker, skipped without Prometheus
    wait_for,
)

DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
COMPOSE = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())["services"]
SCRAPE_S = 1
RATE_INTERVAL = f"{4 * SCRAPE_S}s"  # Grafana: max(interval + scrape, 4 x scrape interval)
# (dashboard file, panel title) -> why the demo cannot give it data within minutes. Empty: it
# can give all of them; add an entry only with the reason, never to hide a broken query.
NEEDS_MORE_THAN_THE_DEMO: dict[tuple[str, str], str] = {}
MIN_SHARE_WITH_DATA = 0.95


def service_argv(service: str, **replace: str) -> list[str]:
    """A compose service's command, its container paths mapped to this checkout and the
    values after the given options (`--listen`, `--db`) replaced."""
    spec = COMPOSE[service]
    mounts = {}
    for volume in spec.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = str((ROOT / "deploy" / source).resolve())
    argv = [mounts.get(arg, arg) for arg in spec["command"]]
    for option, value in replace.items():
        argv[argv.index(option) + 1] = value
    return argv


def prometheus_config(tmp: Path, rules: Path, ports: dict[str, int]) -> Path:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval=f"{SCRAPE_S}s", evaluation_interval=f"{SCRAPE_S}s")
    config["rule_files"] = [str(rules)]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{ports['alertmanager']}"]
    for job in config["scrape_configs"]:
        job.update(scrape_interval=f"{SCRAPE_S}s", scrape_timeout=f"{SCRAPE_S}s")
        port = ports["monitor"] if job["job_name"] == "depin-monitor" else ports["prometheus"]
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def alertmanager_config(tmp: Path, sink_port: int) -> Path:
    text = (ROOT / "deploy/alertmanager/alertmanager.yml").read_text()
    assert "http://alert-log:5001/" in text
    config = yaml.safe_load(text.replace("http://alert-log:5001/",
                                         f"http://127.0.0.1:{sink_port}/"))

    def hurry(route: dict) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
        for child in route.get("routes", []):
            hurry(child)

    hurry(config["route"])
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def panels(board: dict) -> list[dict]:
    return [p for p in board["panels"] if p.get("targets")]


def substitute(expr: str, values: dict[str, str], range_s: int) -> str:
    builtins = {"__rate_interval": RATE_INTERVAL, "__range_s": str(range_s),
                "__range": f"{range_s}s", "__interval": f"{SCRAPE_S}s"}
    out = re.sub(r"\$(\w+)", lambda m: {**builtins, **values}.get(m.group(1), m.group(0)), expr)
    assert "$" not in out, f"unknown variable left in {out}"
    return out


class Prom:
    """Queries evaluated now, or, once `at` is set, at that moment: the dashboards are then
    read as an on-call engineer opening them when the page arrived would see them."""

    def __init__(self, client: httpx.AsyncClient, api: str) -> None:
        self.client, self.api = client, api
        self.at: float | None = None

    async def run(self, expr: str, *, instant: bool, span_s: int = 60) -> list:
        now = self.at or time.time()
        if instant:
            r = await self.client.get(f"{self.api}/query", params={"query": expr, "time": now})
        else:
            r = await self.client.get(f"{self.api}/query_range", params={
                "query": expr, "start": now - span_s, "end": now, "step": SCRAPE_S * 2})
        body = r.json()
        assert body["status"] == "success", f"{expr}\n-> {body.get('error')}"
        return body["data"]["result"]

    async def label_values(self, definition: str, values: dict[str, str]) -> list[str]:
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", definition)
        assert m, f"unsupported variable query {definition}"
        selector = substitute(m.group(1), values, 60)
        r = await self.client.get(f"{self.api}/label/{m.group(2)}/values",
                                  params={"match[]": selector})
        return sorted(r.json()["data"])


async def test_every_panel_query_returns_data_on_a_real_prometheus(
        procs: Processes, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    ports = {name: free_port() for name in ("monitor", "prometheus", "alertmanager", "sink")}
    rules = tmp_path / "depin.yml"
    subprocess.run(depin("rules", "-c", "examples/demo.yaml", "--time-scale", "60",
                         "-o", str(rules)), cwd=ROOT, check=True, capture_output=True)
    sink = service_argv("alert-log", **{"--listen": f"127.0.0.1:{ports['sink']}"})
    procs.start("alert-log", sys.executable, *sink[1:])
    procs.start("alertmanager", ALERTMANAGER,
                f"--config.file={alertmanager_config(tmp_path, ports['sink'])}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                "--cluster.listen-address=")
    procs.start("prometheus", PROMETHEUS,
                f"--config.file={prometheus_config(tmp_path, rules, ports)}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}")
    monitor = service_argv("depin-monitor", **{"--listen": f"127.0.0.1:{ports['monitor']}",
                                                "--db": str(tmp_path / "demo.db")})
    procs.start("monitor", *depin(*monitor))
    started = time.time()

    api = f"http://127.0.0.1:{ports['prometheus']}/api/v1"
    async with httpx.AsyncClient(timeout=10) as client:
        prom = Prom(client, api)

        async def present(expr: str) -> list:
            return await prom.run(expr, instant=True)

        # The demo's networks all have rules (examples/demo.yaml and `demo` agree) ...
        await wait_for("runs of the three demo networks",
                       lambda: _count(present("sum by (network) (depin_probe_runs_total)"), 3),
                       60, procs)
        await wait_for("SLO recording rules of every network",
                       lambda: _count(present("count by (network) (slo:objective:ratio)"), 3),
                       30, procs)
        # ... a capacity ladder found a knee (the demo climbs one a minute per network) ...
        await wait_for("a capacity ladder that broke a step",
                       lambda: present("depin_capacity_knee_streams"), 120, procs)
        # ... a budget burns (depin-flaky) and the page reaches the stack's receiver.
        await wait_for("a firing alert", lambda: present('ALERTS{alertstate="firing"}'), 90,
                       procs)
        # The panels are read at this moment: an alert that needs evidence may resolve while
        # the hundreds of queries below run, and "Alerts now" rightly shows nothing then.
        prom.at = time.time()
        delivered = await wait_for(
            "an alert delivered to alert-log",
            lambda: _async(re.search(r"PAGE firing Depin\w+ .*receiver=oncall path=/page",
                                     (tmp_path / "alert-log.log").read_text())),
            60, procs)
        assert "network=" in delivered.group(0)
        range_s = max(int(prom.at - started), 30)

        checked, empty, never = 0, [], []
        for path in DASHBOARDS:
            board = json.loads(path.read_text())
            exprs = [(panel["title"], target) for panel in panels(board)
                     for target in panel["targets"]]

            async def with_data(values: dict[str, str], exprs=exprs) -> list[bool]:
                return [bool(await prom.run(substitute(t["expr"], values, range_s),
                                            instant=t.get("instant", False)))
                        for _, t in exprs]

            # Real values, one variable after the other (a chained variable's options depend
            # on the earlier ones): the option under which most panels have data, as a user
            # looking for a network's problems would pick it; then All.
            chosen: dict[str, str] = {}
            variables = [v["name"] for v in board["templating"]["list"]]
            for var in board["templating"]["list"]:
                options = await prom.label_values(var["query"], chosen)
                assert options, f"{path.name}: variable {var['name']} has no values"
                rest = {name: ".*" for name in variables if name not in chosen}
                scores = [sum(await with_data({**rest, **chosen, var["name"]: option}))
                          for option in options]
                chosen[var["name"]] = options[scores.index(max(scores))]
            for values in (chosen, {name: ".*" for name in variables}):
                for (title, target), has_data in zip(exprs, await with_data(values),
                                                     strict=True):
                    checked += 1
                    if not has_data:
                        empty.append((path.name, title,
                                      substitute(target["expr"], values, range_s)))
                        if values is not chosen:
                            never.append((path.name, title))
            print(f"{path.name}: {len(exprs)} queries, variables {chosen}")

    # A panel may be empty for one network that truly had nothing to show (no failures on the
    # steady datacenter network), but every panel must show data with every network selected,
    # and at least 95 % of all (panel, selection) queries must return data.
    print(f"\n{checked} panel queries run on Prometheus, {checked - len(empty)} returned data")
    for entry in empty:
        print("no data:", *entry)
    unexplained = [e for e in never if e not in NEEDS_MORE_THAN_THE_DEMO]
    assert not unexplained, "panels without data even with All selected:\n" + "\n".join(
        map(str, unexplained))
    assert checked - len(empty) >= MIN_SHARE_WITH_DATA * checked
    assert (checked - len(empty)) / checked >= MIN_SHARE_WITH_DATA


async def _count(result, wanted: int) -> bool:
    return len(await result) >= wanted


async def _async(value):
    return value
