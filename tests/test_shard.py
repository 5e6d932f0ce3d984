"""`run --shard i/n`: several agents in one location split a catalog's model tiers, nothing
probed twice and nothing missed, by the same hashmod Prometheus uses; and `run --location`."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from monitor import cli
from monitor.config import parse_config
from monitor.core.shard import Shard, parse_shard
from monitor.storage.reads import open_store
from tests.conftest import StartSim, free_port

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = shutil.which("prometheus")
NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                max_size=12)


@given(st.text(max_size=12))
def test_shard_parser_accepts_i_of_n_and_refuses_the_rest_with_a_fix(text: str) -> None:
    try:
        shard = parse_shard(text)
    except ValueError as exc:
        assert "0/3" in str(exc) or "must be below n" in str(exc)
    else:
        assert 0 <= shard.index < shard.count
        assert parse_shard(str(shard)) == shard


@pytest.mark.parametrize(("text", "shard"), [("0/1", Shard(0, 1)), ("2/3", Shard(2, 3)),
                                             (" 1 / 4 ", Shard(1, 4))])
def test_shard_parser_reads_what_operators_write(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard


@pytest.mark.parametrize("text", ["3/3", "1/0", "-1/3", "1", "a/b", "1/3/5", ""])
def test_shard_parser_refuses_impossible_shards(text: str) -> None:
    with pytest.raises(ValueError):
        parse_shard(text)


@given(st.lists(st.tuples(NAMES, NAMES), min_size=1, max_size=40, unique=True),
       st.integers(min_value=1, max_value=9))
def test_every_target_belongs_to_exactly_one_shard(targets: list[tuple[str, str]],
                                                   n: int) -> None:
    for network, tier in targets:
        owners = [i for i in range(n) if Shard(i, n).owns(network, tier)]
        assert len(owners) == 1


CATALOG = """
location: eu-west-1
networks:
""" + "".join(f"""
  - name: net-{i}
    base_url: http://127.0.0.1:PORT/v1
    models: {{small: sim-small, medium: sim-medium, large: sim-large}}
    jobs: [chat-short-v1, completion-short-v1]
    interval: 60s
""" for i in range(6))


def schedule_keys(config_text: str, shard: Shard | None = None) -> Counter[str]:
    config = parse_config(config_text)
    if shard is not None:
        config = config.sharded(shard)
    return Counter(f"{t.network}/{t.name}/{j.name}" for t, j, _ in config.schedules())


def test_sharded_configs_add_up_to_the_whole_catalog_and_keep_a_tier_s_jobs_together() -> None:
    text = CATALOG.replace("PORT", "1")
    whole = schedule_keys(text)
    parts = [schedule_keys(text, Shard(i, 3)) for i in range(3)]
    assert sum(parts, Counter()) == whole  # nothing twice, nothing missed
    assert all(parts)  # 18 tiers: every agent has work
    for part in parts:
        tiers = Counter(key.rsplit("/", 1)[0] for key in part)
        assert set(tiers.values()) == {2}  # both jobs of a tier on the same agent


def test_model_equality_tests_are_split_with_their_tiers_and_find_their_reference() -> None:
    """A comparison runs on the agent that probes its network's tier; its reference tier may
    be another agent's, and is found there for sampling (not scheduled twice)."""
    text = CATALOG.replace("PORT", "1") + "equality:\n  compare:\n" + "".join(
        f"    - {{network: net-{i}, reference: net-0}}\n" for i in range(1, 6))
    whole = parse_config(text)
    assert whole.equality is not None
    keys = Counter(c.key for c in whole.equality.comparisons)
    parts = [whole.sharded(Shard(i, 3)) for i in range(3)]
    split = Counter(c.key for p in parts if p.equality for c in p.equality.comparisons)
    assert split == keys and len(keys) == 15  # 5 networks x 3 tiers, each on one agent
    for part in parts:
        for c in part.equality.comparisons if part.equality else ():
            assert Shard(parts.index(part), 3).owns(c.network, c.tier)
            reference = part.network(c.reference)  # looked up even when not probed here
            assert c.reference_tier in dict(reference.models)
    assert sum((Counter(k for k in schedule_keys(text, Shard(i, 3))) for i in range(3)),
               Counter()) == schedule_keys(text)


# -- the same function as Prometheus' hashmod relabel action ---------------------------------

@pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus (apt-get install "
                                               "prometheus)")
async def test_shards_are_what_prometheus_hashmod_computes(tmp_path: Path) -> None:
    """A real Prometheus labels scraped series with `hashmod` over (network, target): each
    series' shard is the agent `--shard` gives its tier to."""
    pairs = [(f"net-{i}", tier) for i in range(12) for tier in ("small", "medium", "large")]
    exposition = "".join(f'depin_probe_runs_total{{network="{n}",target="{t}"}} 1\n'
                         for n, t in pairs)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=exposition, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    target_port, prom_port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", target_port).start()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{
            "job_name": "shards", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
            "metric_relabel_configs": [{"source_labels": ["network", "target"],
                                        "modulus": 3, "target_label": "shard",
                                        "action": "hashmod"}]}]}))
    assert PROMETHEUS is not None
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            series: list[dict[str, str]] = []
            for _ in range(60):
                try:
                    r = await client.get(f"http://127.0.0.1:{prom_port}/api/v1/query",
                                         params={"query": "depin_probe_runs_total"})
                    series = [s["metric"] for s in r.json()["data"]["result"]]
                except (httpx.HTTPError, ValueError, KeyError):
                    series = []
                if len(series) == len(pairs):
                    break
                await asyncio.sleep(0.5)
        assert len(series) == len(pairs)
        for s in series:
            assert Shard(int(s["shard"]), 3).owns(s["network"], s["target"]), s
        assert len({s["shard"] for s in series}) == 3
    finally:
        prom.send_signal(signal.SIGTERM)
        prom.wait(timeout=10)
        await runner.cleanup()


# -- the agents themselves -------------------------------------------------------------------

async def depin(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def stored(path: Path) -> list[dict[str, object]]:
    store = open_store(path)
    try:
        return [dict(r) for r in store.db.query(
            "select network, target, job, location, outcome from probe_results")]
    finally:
        store.close()


async def test_three_shards_probe_exactly_what_one_agent_probes(
        start_sim: StartSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim = await start_sim()
    config = tmp_path / "catalog.yaml"
    config.write_text(CATALOG.replace("PORT", str(sim.port)))
    single = tmp_path / "single.db"
    shards = [tmp_path / f"shard-{i}.db" for i in range(3)]
    runs = [depin("run", "-c", str(config), "--once", "--db", str(single))]
    runs += [depin("run", "-c", str(config), "--once", "--db", str(db), "--shard", f"{i}/3",
                   "--location", "us-east-1") for i, db in enumerate(shards)]
    for code, out in await asyncio.gather(*runs):
        assert code == 0, out

    def keyed(rows: list[dict[str, object]]) -> Counter[tuple[object, ...]]:
        return Counter((r["network"], r["target"], r["job"], r["outcome"]) for r in rows)

    one = stored(single)
    parts = [stored(db) for db in shards]
    assert len(one) == 6 * 3 * 2 and {r["outcome"] for r in one} == {"ok"}
    assert sum((keyed(p) for p in parts), Counter()) == keyed(one)
    for i, part in enumerate(parts):  # each agent probed its own tiers, the hashmod's
        assert part and all(Shard(i, 3).owns(str(r["network"]), str(r["target"]))
                            for r in part)
    # --location beats the config's, on every stored run
    assert {r["location"] for p in parts for r in p} == {"us-east-1"}
    assert {r["location"] for r in one} == {"eu-west-1"}
    # and the report over the three stores is the one agent's

    def totals(*dbs: Path) -> dict[str, tuple[object, object]]:
        assert cli.main(["report", *[a for db in dbs for a in ("--db", str(db))],
                         "--format", "json"]) == 0
        report = json.loads(capsys.readouterr().out)
        return {g["group"]["network"]: (g["runs"], g["outcomes"]) for g in report["groups"]}

    assert totals(*shards) == totals(single)


@pytest.mark.parametrize(("args", "message"), [
    (["--shard", "3/3"], "--shard '3/3': the index counts from 0 and must be below n"),
    (["--shard", "x"], "--shard 'x' is not i/n; write e.g. 0/3"),
    (["--shard", "1/2"], "--shard 1/2: this agent gets none of the config's 1 model tiers"),
    (["--location", "eu west"], "--location 'eu west': use a short label"),
])
def test_bad_location_or_shard_is_one_clear_line(tmp_path: Path, args: list[str], message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "one.yaml"
    config.write_text("networks:\n  - {name: solo, base_url: 'http://127.0.0.1:1/v1', "
                      "model: m}\n")
    assert not Shard(1, 2).owns("solo", "default")  # the one tier goes to agent 0 of 2
    code = cli.main(["run", "-c", str(config), "--once", "--db", str(tmp_path / "x.db"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.db").exists()  # refused before anything was opened
