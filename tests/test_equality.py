"""Model equality end to end, over real reference networks on 127.0.0.1: the simulator samples
what it really serves, the job samples within its caps, the verdicts reach the store,
/metrics and the status page, and the alert's count goes on across runs."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from pathlib import Path

import httpx
import pytest
import sqlite_utils
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import parse_config
from monitor.core.equality import CONTINUE_V1, EqualityResult, Verdict
from monitor.core.errors import ConfigError
from monitor.exporter.equality import EqualityMetrics
from monitor.runtime.equality import EqualityRunner
from monitor.simulator.app import RunningNetwork
from monitor.storage.equality import VerdictWriter, differs_in_a_row, read_verdicts
from monitor.storage.schema import MIGRATIONS
from monitor.storage.store import Store
from tests.conftest import STEADY, StartSim

# Decodes in a millisecond: a run of 60 completions a network takes well under a second.
FAST = STEADY.with_overrides(ttft_s=0.001, tokens_per_s=50_000.0)
MODEL = "sim-llama-3.1-8b-instruct"


def config_text(nets: dict[str, RunningNetwork], extra: str = "", **equality: object) -> str:
    lines = ["networks:"]
    for name, net in nets.items():
        lines.append(f"  - {{name: {name}, base_url: '{net.base_url}', model: {MODEL}, "
                     "price_per_mtok: {input: 1.0, output: 2.0}}")
    settings = {"prompts": 10, "samples_per_prompt": 6, "concurrency": 16,
                "max_requests": 60, **equality}
    lines.append("equality:")
    lines += [f"  {k}: {v}" for k, v in settings.items()]
    lines.append("  compare:")
    lines += [f"    - {{network: {name}, reference: ref}}" for name in nets if name != "ref"]
    return "\n".join(lines) + "\n" + extra


async def start(start_sim: StartSim, **serves: str) -> dict[str, RunningNetwork]:
    nets = {"ref": await start_sim(FAST, seed=1)}
    for i, (name, variant) in enumerate(serves.items()):
        nets[name] = await start_sim(FAST, seed=10 + i, serves=variant)
    return nets


async def test_the_simulator_samples_what_it_serves(start_sim: StartSim) -> None:
    honest = await start_sim(FAST, seed=1)
    cheat = await start_sim(FAST, seed=1, serves="substituted")
    prompt = CONTINUE_V1.prompts[0]

    async def ask(net: RunningNetwork, **body: object) -> str:
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{net.base_url}/chat/completions", json={
                "model": MODEL, "max_tokens": 50, **body})
        assert r.status_code == 200
        return str(r.json()["choices"][0]["message"]["content"])

    messages = [{"role": "user", "content": prompt}]
    sampled = {await ask(honest, messages=messages, temperature=1.0) for _ in range(5)}
    assert len(sampled) > 1  # a sample, not a fixed answer
    assert await ask(cheat, messages=messages, temperature=1.0) not in sampled
    # anything else is answered as before: the jobs' known answers, greedy filler
    job = [{"role": "user", "content": "What is 17 + 25? Reply with the number only."}]
    assert await ask(honest, messages=job, temperature=1.0) == "42"
    greedy = await ask(honest, messages=messages, temperature=0)
    assert greedy.startswith("the network answered")


async def test_a_substituted_network_differs_and_an_honest_one_does_not(
        start_sim: StartSim, tmp_path: Path) -> None:
    nets = await start(start_sim, honest="faithful", cheat="substituted")
    config = parse_config(config_text(nets))
    store = Store(tmp_path / "runs.db")
    store.close()
    registry = CollectorRegistry()
    assert config.equality is not None
    exported = EqualityMetrics(registry, config.equality.settings)
    exported.init(config.equality.comparisons)
    runner = EqualityRunner(config, sinks=[VerdictWriter(tmp_path / "runs.db"), exported])

    first = {r.network: r for r in await runner.run_once()}
    assert first["cheat"].verdict is Verdict.DIFFERS
    assert first["cheat"].p_value is not None and first["cheat"].p_value < 0.01
    assert first["honest"].verdict is Verdict.SAME
    for r in first.values():
        assert (r.samples, r.reference_samples, r.requests, r.failed) == (60, 60, 60, 0)
        assert r.prompt_set == "continue-v1" and r.prompt_set_digest == CONTINUE_V1.digest
        # 60 requests of <= 50 tokens out at $2/Mtok and ~40 in at $1/Mtok
        assert r.spend_usd is not None and 0 < r.spend_usd <= 60 * (100 + 50 * 2) / 1e6
    metrics = generate_latest(registry).decode()
    assert 'depin_model_equality_alarm{model="sim-llama-3.1-8b-instruct",network="cheat",' \
           'reference="ref"} 0.0' in metrics  # one "differs" is not an alarm yet
    assert 'depin_model_equality_tests_total{model="sim-llama-3.1-8b-instruct",' \
           'network="cheat",reference="ref",verdict="differs"} 1.0' in metrics

    second = {r.network: r for r in await runner.run_once()}
    assert second["cheat"].consecutive_differs == 2
    metrics = generate_latest(registry).decode()
    assert 'network="cheat",reference="ref"} 1.0' in metrics.split(
        "depin_model_equality_alarm{")[2]  # the second in a row raises it
    stored = read_verdicts([tmp_path / "runs.db"])
    assert [v.network for v in stored].count("cheat") == 2
    assert differs_in_a_row(stored)[("cheat", MODEL, "ref")] == 2
    assert differs_in_a_row(stored)[("honest", MODEL, "ref")] == 0


async def test_caps_stop_sampling_and_say_not_enough_samples(start_sim: StartSim) -> None:
    nets = await start(start_sim, honest="faithful")
    text = config_text(nets, max_spend_usd=0.1)
    dear = text.replace("{input: 1.0, output: 2.0}", "{input: 1.0, output: 100.0}")
    with pytest.raises(ConfigError, match=r"can cost up to \$0\.3"):
        parse_config(dear)  # a cap that a full run could pass is refused up front ...
    # ... and a run never spends past it even so (a price raised after the check)
    config = parse_config(text)
    config = dataclasses.replace(config, networks=tuple(
        dataclasses.replace(n, price_per_mtok={"input": 1.0, "output": 100.0})
        for n in config.networks))
    (result,) = await EqualityRunner(config).run_once()
    assert result.verdict is Verdict.NOT_ENOUGH and result.p_value is None
    assert 0 < result.requests < 60
    assert result.spend_usd is not None and result.spend_usd <= 0.1
    assert "stopped at the spend cap ($0.1)" in result.error


async def test_a_network_that_fails_gives_no_verdict_and_no_secret(
        start_sim: StartSim, monkeypatch: pytest.MonkeyPatch) -> None:
    nets = {"ref": await start_sim(FAST, seed=1),
            "locked": await start_sim(FAST, seed=2, api_key="the-right-key")}
    monkeypatch.setenv("LOCKED_KEY", "sk-wrong-secret-0123456789")
    text = config_text(nets).replace(
        f"name: locked, base_url: '{nets['locked'].base_url}'",
        f"name: locked, base_url: '{nets['locked'].base_url}', api_key_env: LOCKED_KEY")
    (result,) = await EqualityRunner(parse_config(text)).run_once()
    assert result.verdict is Verdict.NOT_ENOUGH
    # the run stops once min_samples is out of reach instead of spending every request
    assert result.samples == 0 and 31 <= result.failed == result.requests < 60
    assert "auth_error" in result.error and "sk-wrong-secret" not in result.error


def test_metrics_start_with_no_verdict(tmp_path: Path) -> None:
    config = parse_config(
        "networks:\n  - {name: a, base_url: 'http://127.0.0.1:9/v1', model: m}\n"
        "  - {name: b, base_url: 'http://127.0.0.1:9/v1', model: m}\n"
        "equality: {compare: [{network: a, reference: b}]}\n")
    assert config.equality is not None
    registry = CollectorRegistry()
    EqualityMetrics(registry, config.equality.settings).init(config.equality.comparisons)
    p = registry.get_sample_value("depin_model_equality_p_value",
                                  {"network": "a", "model": "m", "reference": "b"})
    assert p is not None and math.isnan(p)
    assert registry.get_sample_value("depin_model_equality_alpha") == 0.01


def test_verdicts_survive_in_an_older_store(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)  # a store from before migration 004: no verdict table
    older = sqlite_utils.Database(conn)
    for name, step in MIGRATIONS:
        if name < "004":
            step(older)
    conn.close()
    assert read_verdicts([db]) == []
    Store(db).close()  # migrates
    result = EqualityResult("n", "small", "m", "r", 1.0, Verdict.SAME, 0.5, 0.0, 60, 60, 60,
                            0, None, "continue-v1", CONTINUE_V1.digest, 0.01, 1000)
    VerdictWriter(db).on_verdict(result)
    assert read_verdicts([db]) == [result]
