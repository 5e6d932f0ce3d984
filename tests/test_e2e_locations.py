"""End to end across locations, with real processes in network namespaces this test makes.

    hub:      two reference networks (net-1 on 10.77.100.1, net-2 on 10.77.100.2) and the
              central Prometheus (10.77.100.10, --web.enable-remote-write-receiver), loaded
              with the rules `depin-monitor rules` makes for the agents' config (quorum 2)
    eu-west:  `depin-monitor run --location eu-west` + Prometheus in agent mode
    us-east:  the same config, `--location us-east` + its own agent

Each location reaches the hub over its own veth pair and routes; the agents are configured from
deploy/prometheus/agent.yml and the central from deploy/prometheus/central.yml (addresses and
intervals changed, nothing else). Rules run with time_scale=60: a 1h/5m burn is a 1m/5s one.

The story: both locations show up on the central; cutting eu-west's route to net-1 fails net-1
from eu-west only and pages nobody; cutting us-east's route too fires the quorum page; stopping
us-east's monitor fires DepinProbesStopped for us-east only. Namespaces and processes are
removed whatever happens (tests/netns.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests import netns
from tests.test_e2e_prometheus import Processes

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "prometheus"
EU, US = "eu-west", "us-east"
NETS = {"net-1": "10.77.100.1", "net-2": "10.77.100.2"}
CENTRAL = "10.77.100.10"
SIM_PORT, PROM_PORT, MONITOR_PORT, AGENT_PORT = 8000, 9090, 9464, 9091
UPLINKS = {EU: ("10.77.1.1", "10.77.1.2"), US: ("10.77.2.1", "10.77.2.2")}  # (hub, location)
TIME_SCALE = 60

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(netns.unavailable() is not None, reason=netns.unavailable() or ""),
    pytest.mark.skipif(not Path(PROMETHEUS).exists(),
                       reason="needs Debian's prometheus (apt-get install prometheus)"),
]

Query = Callable[[str], list[dict[str, Any]]]


def agent_mode_flag() -> str:
    """`--agent` (Prometheus 2.43+), else the feature flag of 2.32-2.42 (Debian 12's 2.42)."""
    help_text = subprocess.run([PROMETHEUS, "--help"], capture_output=True, text=True,
                               timeout=30)
    flags = help_text.stdout + help_text.stderr
    return "--agent" if re.search(r"^\s+--agent\s", flags, re.M) else "--enable-feature=agent"


def depin(*args: str) -> list[str]:
    return [sys.executable, "-m", "monitor.cli", *args]


class World:
    """The namespaces, their processes, and a query function for the central Prometheus."""

    def __init__(self, lab: netns.Lab, procs: Processes, tmp: Path) -> None:
        self.lab, self.procs, self.tmp = lab, procs, tmp
        self.hub = lab.namespace("hub")
        self.places = {loc: lab.namespace(loc.split("-")[0]) for loc in (EU, US)}
        for addr in (*NETS.values(), CENTRAL):
            netns.ip("-n", self.hub, "addr", "add", f"{addr}/32", "dev", "lo")
        for loc, ns in self.places.items():
            hub_end, loc_end = UPLINKS[loc]
            lab.link(self.hub, hub_end, ns, loc_end)
            for addr in (*NETS.values(), CENTRAL):
                netns.ip("-n", ns, "route", "add", f"{addr}/32", "via", hub_end)
        self.in_hub = lab.caller(self.hub)
        self.monitors: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, ns: str, *argv: str) -> subprocess.Popen[bytes]:
        return self.procs.start(name, *self.lab.exec_argv(ns, *argv))

    def cut(self, loc: str, net: str) -> None:
        """The location loses its route to the network: connect() fails at once."""
        netns.ip("-n", self.places[loc], "route", "replace", "unreachable", f"{NETS[net]}/32")

    def query(self, expr: str) -> list[dict[str, Any]]:
        def get() -> list[dict[str, Any]]:
            r = httpx.get(f"http://{CENTRAL}:{PROM_PORT}/api/v1/query", params={"query": expr},
                          timeout=5)
            r.raise_for_status()
            result: list[dict[str, Any]] = r.json()["data"]["result"]
            return result
        return self.in_hub(get)

    def alerts(self, name: str, state: str | None = None) -> list[dict[str, Any]]:
        def get() -> list[dict[str, Any]]:
            r = httpx.get(f"http://{CENTRAL}:{PROM_PORT}/api/v1/alerts", timeout=5)
            r.raise_for_status()
            return [a for a in r.json()["data"]["alerts"] if a["labels"]["alertname"] == name
                    and (state is None or a["state"] == state)]
        return self.in_hub(get)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        deadline = time.perf_counter() + timeout
        last: object = None
        while time.perf_counter() < deadline:
            try:
                value = check()
            except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
                last = exc  # not up yet
            else:
                if value:
                    return value
                last = value
            time.sleep(0.5)
        pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})\n"
                    f"{self.procs.logs()}")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    netns.sweep_leftovers()
    lab = netns.Lab()
    procs = Processes(tmp_path)
    try:
        yield World(lab, procs, tmp_path)
    finally:
        procs.stop()
        lab.close()


def write_configs(tmp: Path) -> tuple[Path, Path, dict[str, Path]]:
    """(monitor config, central config, agent config by location), from deploy/'s files."""
    monitor = tmp / "monitor.yaml"
    # A job with a 5 s deadline: the run in flight on a kept-alive connection when a route is
    # cut hangs until its deadline (as it would for real); the next runs are connect_errors.
    # (A run takes ~0.2 s: 5 s leaves room for a machine busy with other tests.)
    job = {"name": "e2e-chat-v1", "user": "Name three colours.", "max_tokens": 8,
           "deadline_s": "5s", "stall_s": "3s", "check": {"min_length": 1}}
    monitor.write_text(yaml.safe_dump({"quorum": 2, "jobs": [job], "networks": [
        {"name": name, "kind": "openai", "base_url": f"http://{addr}:{SIM_PORT}/v1",
         "models": {"small": "sim-llama-3.1-8b-instruct"}, "jobs": [job["name"]],
         "interval": "1s", "sla": "enterprise"} for name, addr in NETS.items()]},
        sort_keys=False))
    rules = tmp / "rules.yml"
    proc = subprocess.run(depin("rules", "-c", str(monitor), "--time-scale", str(TIME_SCALE),
                                "-o", str(rules)), capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr

    central = yaml.safe_load((DEPLOY / "central.yml").read_text())
    assert "location" not in central["global"]["external_labels"]
    central["global"]["evaluation_interval"] = "1s"
    central["rule_files"] = [str(rules)]
    central.pop("alerting")
    central["scrape_configs"] = []
    central_path = tmp / "central.yml"
    central_path.write_text(yaml.safe_dump(central))

    agents = {}
    template = yaml.safe_load((DEPLOY / "agent.yml").read_text())
    for loc in (EU, US):
        agent = yaml.safe_load(yaml.safe_dump(template))
        agent["global"]["scrape_interval"] = "1s"
        agent["global"]["external_labels"]["location"] = loc
        for job in agent["scrape_configs"]:
            job.pop("scrape_interval", None)
            job["scrape_timeout"] = "900ms"
            port = MONITOR_PORT if job["job_name"] == "depin-monitor" else AGENT_PORT
            job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
        (writer,) = agent["remote_write"]
        assert writer["url"].endswith("/api/v1/write")  # the receiver's endpoint
        writer["url"] = f"http://{CENTRAL}:{PROM_PORT}/api/v1/write"
        writer["queue_config"]["batch_send_deadline"] = "500ms"
        agents[loc] = tmp / f"agent-{loc}.yml"
        agents[loc].write_text(yaml.safe_dump(agent))
    return monitor, central_path, agents


def start_everything(w: World) -> None:
    monitor_config, central_config, agents = write_configs(w.tmp)
    for name, addr in NETS.items():
        w.start(f"sim-{name}", w.hub, *depin("simulate", "--profile", "datacenter", "--set",
                                             "p_http_5xx=0", "--host", addr,
                                             "--port", str(SIM_PORT)))
    w.start("central", w.hub, PROMETHEUS, f"--config.file={central_config}",
            f"--storage.tsdb.path={w.tmp / 'central-tsdb'}",
            f"--web.listen-address={CENTRAL}:{PROM_PORT}", "--web.enable-remote-write-receiver")
    w.wait_for("the central Prometheus", lambda: w.query("vector(1)"), 30)
    for addr in NETS.values():  # a monitor starting first would record connect_errors
        w.wait_for(f"the reference network on {addr}", lambda a=addr: w.in_hub(
            lambda: httpx.get(f"http://{a}:{SIM_PORT}/health", timeout=2).is_success), 30)
    agent_mode = agent_mode_flag()
    for loc, ns in w.places.items():
        w.monitors[loc] = w.start(
            f"monitor-{loc}", ns, *depin("run", "-c", str(monitor_config), "--location", loc,
                                         "--listen", f"127.0.0.1:{MONITOR_PORT}",
                                         "--db", str(w.tmp / f"{loc}.db")))
        w.start(f"agent-{loc}", ns, PROMETHEUS, agent_mode, f"--config.file={agents[loc]}",
                f"--storage.agent.path={w.tmp / f'agent-{loc}'}",
                f"--web.listen-address=127.0.0.1:{AGENT_PORT}")


def by(results: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1])
            for r in results}


def ratio_5m(w: World, net: str) -> dict[str, float]:
    """Each location's 5m (here 5s) availability error ratio of a network."""
    results = w.query(f'location:slo_sli_error:ratio_rate5m{{network="{net}",'
                      'sli="availability"}')
    return {loc: v for (loc,), v in by(results, "location").items() if v == v}  # not NaN


def test_two_locations_agree_before_a_page_and_each_reports_its_own_stop(
        world: World) -> None:
    w = world
    start_everything(w)

    # Both locations on the central, from one PromQL query.
    def runs_by_location() -> dict[tuple[str, ...], float] | None:
        runs = by(w.query("sum by (location, network) (depin_probe_runs_total)"),
                  "location", "network")
        wanted = {(loc, net) for loc in (EU, US) for net in NETS}
        return runs if wanted <= runs.keys() and all(runs[k] >= 3 for k in wanted) else None

    w.wait_for("runs from both locations on the central", runs_by_location, 60)
    w.wait_for("error ratios of every location", lambda: all(
        set(ratio_5m(w, net)) == {EU, US} for net in NETS), 30)

    # eu-west loses its route to net-1: net-1 fails from eu-west only, and nobody is paged.
    w.cut(EU, "net-1")
    w.wait_for("eu-west's view of net-1 failing", lambda: ratio_5m(w, "net-1").get(EU, 0) > 0.5,
               30)
    # eu-west burns at page level in both windows: one location alone would page without the
    # quorum (the `for:` is 2 s; the rule is evaluated every second)
    burning = ('location:slo_sli_error:ratio_rate1h{network="net-1",sli="availability",'
               'location="eu-west"} > 0.0144')
    w.wait_for("eu-west's 1h (1m) window over the page threshold", lambda: w.query(burning), 30)
    quiet_until = time.perf_counter() + 6
    while time.perf_counter() < quiet_until:
        assert w.alerts("DepinAvailabilityBudgetBurn") == []  # neither pending nor firing
        time.sleep(0.5)
    # both locations' 5m (here 5s) ratios, read together: one can be missing a moment when an
    # agent's remote write lags on a busy machine (its window then holds no runs)
    def both_ratios() -> tuple[dict[str, float], dict[str, float]] | None:
        got = ratio_5m(w, "net-1"), ratio_5m(w, "net-2")
        return got if all(set(ratios) == {EU, US} for ratios in got) else None

    net1, net2 = w.wait_for("both locations' ratios of both networks", both_ratios, 30)
    assert net1[EU] > 0.5 and net1[US] == 0.0
    assert net2 == {EU: 0.0, US: 0.0}
    failures = by(w.query("sum by (location, network, outcome) (depin_probe_failures_total)"),
                  "location", "network", "outcome")
    assert failures.get((EU, "net-1", "connect_error"), 0) > 0
    assert not any(v for (loc, _, _), v in failures.items() if loc == US), failures

    # us-east loses it too: two locations agree, the quorum pages for net-1 (and only net-1).
    w.cut(US, "net-1")
    pages = w.wait_for("the quorum page for net-1", lambda: [
        a for a in w.alerts("DepinAvailabilityBudgetBurn", "firing")
        if a["labels"]["severity"] == "page"], 40)
    assert [a["labels"]["network"] for a in pages] == ["net-1"]
    assert float(pages[0]["value"]) == 2.0  # how many locations agree
    assert "location" not in pages[0]["labels"]

    # us-east's monitor stops: probes stopped there, for each network, and nowhere else.
    w.monitors[US].terminate()
    w.monitors[US].wait(timeout=30)

    def stopped() -> set[tuple[str, str]] | None:
        firing = {(a["labels"]["location"], a["labels"]["network"])
                  for a in w.alerts("DepinProbesStopped", "firing")}
        return firing if {(US, net) for net in NETS} <= firing else None

    assert w.wait_for("DepinProbesStopped for us-east", stopped, 40) == {(US, n) for n in NETS}
    down = w.wait_for("DepinMonitorDown for us-east",
                      lambda: w.alerts("DepinMonitorDown", "firing"), 30)
    assert {a["labels"]["location"] for a in down} == {US}
    assert {a["labels"]["location"] for a in w.alerts("DepinProbesStopped")} == {US}
