"""A contract run where users see it: stored (migration 008, its own tables), on /metrics,
in `depin-monitor contract` and the report (every format, the JSON against its schema), and
on /api/v1/contract; with the paired comparison and the parameter that stopped being
honoured."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from pathlib import Path

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest

from monitor.analysis.contract import contract_rows, mcnemar_exact
from monitor.cli import main
from monitor.core.contract import Cell, ContractRun, ContractSettings, Grade, Param
from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.core.target import Target
from monitor.exporter.contract import ContractMetrics
from monitor.runtime.contract import check_target
from monitor.simulator.app import start_network
from monitor.simulator.profiles import PROFILES
from monitor.storage.contract import ContractWriter
from monitor.storage.reads import read_contract_runs as read_runs
from monitor.storage.store import Store
from monitor.web.api import PublicNetwork, StatusSource, add_routes
from probes.session import SessionPool

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-contract-secret-0123456789"


async def _runs(contract: str) -> tuple[ContractRun, ContractRun]:
    """A network (breaking the contract by `contract`) and its reference, checked together."""
    good = await start_network(PROFILES["datacenter"].with_overrides(
        ttft_s=0.0, p_http_5xx=0.0, api_key=KEY))
    bad = await start_network(PROFILES["datacenter"].with_overrides(
        ttft_s=0.0, p_http_5xx=0.0, contract=contract, api_key=KEY))
    pool = SessionPool()
    try:
        async def one(net_name: str, url: str, ref: str | None) -> ContractRun:
            t = Target(network=net_name, name="small", kind="openai", base_url=url,
                       model="sim-8b", api_key_env="CONTRACT_TEST_KEY")
            return await check_target(t, pool.for_target(t), ContractSettings(),
                                      reference=ref)
        return await asyncio.gather(one("bad", bad.base_url, "good"),
                                    one("good", good.base_url, None))
    finally:
        await pool.close()
        await good.stop()
        await bad.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    mp.setenv("CONTRACT_TEST_KEY", KEY)
    try:
        earlier = asyncio.run(_runs(""))
        later = asyncio.run(_runs("invented_name,stop_ignored"))
    finally:
        mp.undo()
    db = tmp_path_factory.mktemp("contract") / "runs.db"
    Store(db).close()
    writer = ContractWriter(db)
    for run in (*earlier, *later):
        writer.on_contract(run)
    return db


def test_runs_round_trip_through_their_own_tables(store: Path) -> None:
    runs = read_runs([store])
    assert len(runs) == 4 and [r.network for r in runs].count("bad") == 2
    bad = [r for r in runs if r.network == "bad"][-1]
    assert {g.grade for g in bad.grades if g.item == "one-call"} == {Grade.UNKNOWN_NAME}
    assert {c.param: c.cell for c in bad.cells}[Param.STOP] is Cell.IGNORED
    assert read_runs([store], networks=["good"])[0].network == "good"
    import sqlite3
    conn = sqlite3.connect(store)
    assert conn.execute("select count(*) from probe_results").fetchone()[0] == 0
    assert "008_contract_tables" in {r[0] for r in conn.execute("select name from _migrations")}
    conn.close()
    assert KEY not in store.read_bytes().decode("latin-1")


def test_the_paired_comparison_and_the_lost_parameter(store: Path) -> None:
    rows = {r.network: r for r in contract_rows(read_runs([store]))}
    bad, good = rows["bad"], rows["good"]
    assert good.errors == 0 and bad.errors == 6 and bad.graded == 16
    assert bad.interval is not None and bad.interval[0] > 0.1
    assert bad.regressed == (Param.STOP.value,)
    assert good.regressed == ()
    assert bad.paired is not None and bad.paired.reference == "good"
    assert (bad.paired.pairs, bad.paired.worse, bad.paired.better) == (16, 6, 0)
    assert bad.paired.p_value == pytest.approx(mcnemar_exact(6, 0)) and bad.paired.p_value < 0.05
    assert bad.finish_reasons == {"tool_calls": 12, "stop": 4}
    assert (good.rank, bad.rank) == (1, 2)  # a significant difference in tool-call errors


def test_mcnemar_exact_is_the_two_sided_binomial() -> None:
    assert mcnemar_exact(0, 0) is None
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(6, 0) == pytest.approx(2 / 64)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)


def test_metrics_count_grades_and_flag_the_parameter(store: Path) -> None:
    registry = CollectorRegistry()
    m = ContractMetrics(registry)
    m.init([("bad", "sim-8b")])
    for run in read_runs([store]):
        m.on_contract(run)
    text = generate_latest(registry).decode()
    assert 'depin_contract_tool_calls_total{model="sim-8b",network="bad"} 16.0' in text
    assert ('depin_contract_tool_call_errors_total{grade="unknown_name",model="sim-8b",'
            'network="bad"} 6.0') in text
    assert ('depin_contract_param_honoured{model="sim-8b",network="bad",param="stop"} 0.0'
            in text)
    assert ('depin_contract_param_honoured{model="sim-8b",network="good",param="stop"} 1.0'
            in text)
    assert ('depin_contract_param_cell{cell="ignored",model="sim-8b",network="bad",'
            'param="stop"} 1.0') in text
    nan = [line for line in text.splitlines() if line.startswith(
        'depin_contract_param_honoured{model="sim-8b",network="bad",param="reasoning_effort"')]
    assert nan and math.isnan(float(nan[0].split()[-1]))


@pytest.mark.parametrize("fmt", ["json", "markdown", "html", "csv", "table"])
def test_the_report_shows_the_matrix_in_every_format(store: Path, tmp_path: Path,
                                                     fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    assert main(["report", "--db", str(store), "--format", fmt, "-o", str(out)]) == 0
    text = out.read_text()
    if fmt == "json":
        data = json.loads(text)
        schema = json.loads((ROOT / "docs/report.schema.json").read_text())
        jsonschema.validate(data, schema)
        bad = next(r for r in data["contract"] if r["network"] == "bad")
        assert bad["params"]["stop"]["cell"] == "ignored"
        assert bad["grades"]["unknown_name"] == 6 and bad["regressed"] == ["stop"]
    else:
        assert "json_schema" in text and "unknown_name 6" in text
        assert ("IGNORED" in text) and ("API contract" in text or fmt == "csv")


async def test_api_serves_the_matrix_without_free_text(store: Path) -> None:
    source = StatusSource(stores=(store,), networks=tuple(
        PublicNetwork(n, "openai", (("small", "sim-8b"),), (), 60.0, None)
        for n in ("bad", "good")), profiles=dict(BUILTIN_PROFILES))
    source = dataclasses.replace(source, clock=lambda: max(
        r.started_at for r in read_runs([store])) + 60)
    app = web.Application()
    add_routes(app, source)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/api/v1/contract")
        assert r.status == 200
        body = await r.json()
        index = await (await client.get("/api/v1/")).json()
    assert "/api/v1/contract" in index["resources"]
    bad = next(n for n in body["networks"] if n["network"] == "bad")
    assert bad["params"]["stop"] == "ignored" and bad["params"]["max_tokens"] == "honoured"
    assert bad["reference"]["network"] == "good" and bad["errors"] == 6
    assert "detail" not in json.dumps(body)
