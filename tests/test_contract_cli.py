"""`depin-monitor contract` and `check` as a user runs them (the command's entry point, its
output and exit code), against simulated networks on 127.0.0.1 (one keeping the API contract,
one breaking it), and the config's caps."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.config import load_config
from monitor.simulator.app import RunningNetwork, start_network
from monitor.simulator.profiles import PROFILES
from monitor.storage.reads import read_contract_runs as read_runs


@dataclass
class Out:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> object:
    def run(*args: str) -> Out:
        code = main(list(args))
        got = capsys.readouterr()
        return Out(code, got.out, got.err)
    return run


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    """Two simulated networks served from a thread of their own (the command runs its own
    event loop)."""
    loop = asyncio.new_event_loop()
    nets: list[RunningNetwork] = []
    ready = threading.Event()

    async def start() -> None:
        base = PROFILES["datacenter"].with_overrides(ttft_s=0.0, p_http_5xx=0.0)
        nets.append(await start_network(base, seed=1))
        nets.append(await start_network(base.with_overrides(
            contract="args_not_json,max_tokens_overrun"), seed=2))
        ready.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield {"good": nets[0].base_url, "bad": nets[1].base_url}
    finally:
        for net in nets:
            asyncio.run_coroutine_threadsafe(net.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def write(path: Path, urls: dict[str, str], section: str, price: str = "") -> Path:
    nets = "\n".join(f"  - {{name: {name}, base_url: '{url}', model: sim-8b{price}}}"
                     for name, url in urls.items())
    path.write_text(f"networks:\n{nets}\ncontract:\n{section}")
    return path


def test_contract_grades_the_breaking_network_and_gates_on_it(
        urls: dict[str, str], tmp_path: Path, cli: Any) -> None:
    config = write(tmp_path / "c.yaml", urls, "  networks: [bad]\n  reference: good\n")
    out = cli("contract", "-c", str(config), "--fail-on-break")
    assert out.returncode == 1, out.stderr
    lines = {line.split()[1]: line for line in out.stdout.splitlines()
             if line.strip() and not line.startswith(" ")}
    assert lines["bad"].split()[0] == "2" and lines["good"].split()[0] == "1"  # ranked
    assert "invalid_json 6" in lines["bad"] and "IGNORED" in lines["bad"]
    assert "vs good: 6 worse, 0 better" in out.stdout
    data = json.loads(cli("contract", "-c", str(config), "--json").stdout)
    bad = next(r for r in data if r["network"] == "bad")
    assert bad["params"]["max_tokens"]["cell"] == "ignored"
    assert bad["grades"] == {"invalid_json": 6, "ok": 2}
    good_only = write(tmp_path / "g.yaml", urls, "  networks: [good]\n")
    assert cli("contract", "-c", str(good_only), "--fail-on-break").returncode == 0


@pytest.mark.parametrize(("section", "price", "error"), [
    ("  networks: [good]\n  max_requests: 10\n", "",
     "contract: a run needs 19 requests per network and model"),
    ("  networks: [good]\n", ", price_per_mtok: {input: 20, output: 60}",
     "contract.max_spend_usd: a run of 19 requests to good can cost up to $0.5259"),
    ("  networks: [nowhere]\n", "", "contract.networks: 'nowhere' is not an enabled network"),
    ("  networks: [good]\n  params: [temperature]\n", "", "unknown parameter 'temperature'"),
])
def test_check_refuses_caps_a_run_cannot_keep(urls: dict[str, str], tmp_path: Path, cli: Any,
                                              section: str, price: str, error: str) -> None:
    out = cli("check", "-c", str(write(tmp_path / "c.yaml", urls, section, price)))
    assert out.returncode == 2 and error in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_without_a_section_contract_says_so_in_one_line(tmp_path: Path, cli: Any) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("networks:\n  - {name: a, base_url: 'http://127.0.0.1:9/v1', model: m}\n")
    out = cli("contract", "-c", str(config))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"depin-monitor: error: {config}: no `contract:` section; "
                                  "add one with `networks:` (docs/contract.md)")


def test_run_schedules_the_checks_beside_the_canaries(urls: dict[str, str], tmp_path: Path,
                                                      cli: Any) -> None:
    config = write(tmp_path / "c.yaml", urls, "  networks: [bad]\n  reference: good\n")
    db = tmp_path / "runs.db"
    assert cli("run", "-c", str(config), "--db", str(db), "--once").returncode == 0
    runs = read_runs([db])
    assert {r.network for r in runs} == {"bad", "good"}
    bad = next(r for r in runs if r.network == "bad")
    assert bad.reference == "good" and len(bad.grades) == 8 and len(bad.cells) == 8
    conn = sqlite3.connect(db)
    canaries = conn.execute("select count(*) from probe_results").fetchone()[0]
    jobs = conn.execute("select distinct job from probe_results").fetchall()
    conn.close()
    # each canary schedule ran once, and none of the checks' requests is among them
    assert canaries == len(load_config(str(config)).schedules())
    assert "contract" not in {j for (j,) in jobs}
