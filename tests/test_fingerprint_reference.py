"""The fingerprint against a reference network serving the same model, over simulator networks
on 127.0.0.1: in each run the same border inputs are sampled from the reference at the same
time, within the run's caps; a network serving the reference's model is "same", one serving
its quantized variant "differs from reference" within one run; the reference used is stored
(migration 011), reported and served by the API; false alarms stay within alpha."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from monitor.analysis.fingerprint import (
    HEADERS,
    fingerprint_rows,
    observation,
    permutation_test,
    row_cells,
    row_json,
    section_markdown,
)
from monitor.config import parse_config
from monitor.core.errors import ConfigError
from monitor.core.fingerprint import CANDIDATES_V1, FingerprintResult, Method, Verdict
from monitor.runtime.fingerprint import FingerprintRunner
from monitor.simulator.app import RunningNetwork
from monitor.simulator.firsttoken import first_token_model
from monitor.storage import fingerprint as fp_store
from monitor.storage.fingerprint import FingerprintWriter
from monitor.storage.reads import read_fingerprints as read_results
from monitor.storage.store import Store
from tests.conftest import STEADY, StartSim

FAST = STEADY.with_overrides(ttft_s=0.0005, tokens_per_s=50_000.0)
MODEL = "sim-llama-3.1-8b-instruct"
SETTINGS = {"candidates_tried": 150, "border_inputs": 10, "reference_samples": 20,
            "samples_per_input": 8, "concurrency": 16, "max_requests": 160,
            "discovery_max_requests": 700}


def config_text(nets: dict[str, RunningNetwork], entries: str, price: str = "",
                **settings: object) -> str:
    lines = ["networks:"]
    lines += [f"  - {{name: {name}, base_url: '{net.base_url}', model: {MODEL}{price}}}"
              for name, net in nets.items()]
    lines.append("fingerprint:")
    lines += [f"  {k}: {v}" for k, v in {**SETTINGS, **settings}.items()]
    return "\n".join([*lines, f"  networks: {entries}"]) + "\n"


@pytest.mark.parametrize("logprobs", [False, True], ids=["tokens", "logprobs"])
async def test_the_quantized_copy_differs_from_the_reference_network_within_one_run(
        start_sim: StartSim, tmp_path: Path, logprobs: bool) -> None:
    nets = {"ref": await start_sim(FAST, seed=11, logprobs=logprobs),
            "twin": await start_sim(FAST, seed=12, logprobs=logprobs),
            "quant": await start_sim(FAST, seed=13, logprobs=logprobs, serves="quantized")}
    # Against a live reference each side has only a run's samples (not the 20 a stored
    # reference has): 16 an input (4 with logprobs) tell the quantized copy in every run
    # measured, 8 (2) in half of them (docs/fingerprint.md).
    per_input = 4 if logprobs else 16
    config = parse_config(config_text(
        nets, "[{network: twin, reference: ref}, {network: quant, reference: ref}]",
        samples_per_input=16, logprob_samples=4, max_requests=320))
    db = tmp_path / "runs.db"
    Store(db).close()
    writer = FingerprintWriter(db)
    runner = FingerprintRunner(config, sinks=[writer], set_sinks=[writer])
    found = await runner.run_once()  # each network's own border inputs
    assert [r.verdict for r in found] == [Verdict.DISCOVERED] * 2
    assert all(r.reference_network is None for r in found)  # a discovery samples no reference
    asked_before = nets["ref"].sim.requests

    twin, quant = await runner.run_once()  # one run
    assert twin.verdict is Verdict.SAME, twin
    assert quant.verdict is Verdict.DIFFERS, quant  # its own baseline holds; the reference not
    assert quant.reference_p_value is not None and quant.reference_p_value < 0.001
    assert (twin.reference_network, quant.reference_network) == ("ref", "ref")
    for result in (twin, quant):
        kept = len(runner.sets[(result.network, MODEL)].prompts)
        assert result.samples == kept * per_input
        assert result.requests == 2 * kept * per_input <= 320  # the reference's counted too
    assert nets["ref"].sim.requests - asked_before == twin.requests // 2 + quant.requests // 2

    stored = {r.network: r for r in read_results([db]) if r.verdict is not Verdict.DISCOVERED}
    assert {n: r.reference_network for n, r in stored.items()} == {"twin": "ref",
                                                                  "quant": "ref"}
    rows = {r.network: r for r in fingerprint_rows(list(stored.values()))}
    assert row_cells(rows["quant"])[HEADERS.index("reference")] == "ref"
    assert row_json(rows["quant"])["reference_network"] == "ref"
    schema = json.loads((Path(__file__).parent.parent / "docs/report.schema.json").read_text())
    jsonschema.validate([row_json(r) for r in rows.values()],
                        {**schema["properties"]["fingerprint"], "$defs": schema["$defs"]})
    assert "differs from reference" in section_markdown(list(rows.values()))


async def test_caps_count_the_reference_and_check_refuses_caps_that_cannot_hold_both(
        start_sim: StartSim) -> None:
    nets = {"ref": await start_sim(FAST, seed=21, logprobs=False),
            "net": await start_sim(FAST, seed=22, logprobs=False)}
    entry = "[{network: net, reference: ref}]"
    with pytest.raises(ConfigError, match=r"a run with a reference network needs 160 "
                                          r"requests .* max_requests is 100"):
        parse_config(config_text(nets, entry, max_requests=100))
    parse_config(config_text(nets, "[{network: net}]", max_requests=100))  # alone it fits
    dear = ", price_per_mtok: {input: 10.0, output: 10.0}"
    with pytest.raises(ConfigError, match=r"fingerprint\.max_spend_usd: a run of 160 requests "
                                          r"to net and its reference ref can cost up to"):
        parse_config(config_text(nets, entry, dear, max_spend_usd=0.02,
                                 discovery_max_spend_usd=1.0))
    parse_config(config_text(nets, "[{network: net}]", dear, max_spend_usd=0.02,
                             discovery_max_spend_usd=1.0))
    for bad, why in (("[{network: net, reference: nope}]", r"reference: 'nope' is not an "
                      r"enabled network"),
                     ("[{network: net, reference: net}]", r"cannot be its own reference")):
        with pytest.raises(ConfigError, match=why):
            parse_config(config_text(nets, bad))

    # at run time the caps hold over both networks together
    config = parse_config(config_text(nets, entry))
    runner = FingerprintRunner(config)
    await runner.run_once()
    assert config.fingerprint is not None
    runner.settings = dataclasses.replace(config.fingerprint.settings, max_requests=30)
    before = nets["net"].sim.requests + nets["ref"].sim.requests
    (run,) = await runner.run_once()
    assert run.requests == 30 == nets["net"].sim.requests + nets["ref"].sim.requests - before
    assert run.verdict is Verdict.NOT_ENOUGH and "request cap (30)" in run.error


def test_a_network_and_its_same_model_reference_raise_false_alarms_at_most_at_alpha() -> None:
    """Many runs of one model sampled twice at the same time (the network and its reference,
    each with its own batch jitter), tested as a run tests them: the share of "differs from
    reference" stays within what alpha allows (binomial, 3 standard deviations)."""
    model = first_token_model(MODEL)
    prompts = [p for p in CANDIDATES_V1.prompts[:300]
               if np.sort(model.logits(p))[-1] - np.sort(model.logits(p))[-2] < 0.1][:10]
    alpha, runs = 0.05, 200
    rng = np.random.default_rng(11)

    def side(n: int, top_k: int) -> dict[str, list[dict[str, float]]]:
        return {p: [dict(observation(d.token, d.top if top_k else None))
                    for d in model.greedy(p, n, rng, top_k)] for p in prompts}

    for n, top_k in ((8, 0), (2, 5)):
        alarms = 0
        for i in range(runs):
            result = permutation_test(side(n, top_k), side(n, top_k), permutations=199,
                                      seed=i)
            assert result is not None
            alarms += result.p_value < alpha
        bound = runs * alpha + 3 * math.sqrt(runs * alpha * (1 - alpha))
        assert alarms <= bound, (top_k, alarms, bound)


def test_runs_stored_before_migration_011_read_with_the_sets_reference(
        tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    Store(db).close()
    conn = sqlite3.connect(db)  # the store as a version before migration 011 left it
    conn.execute(f"alter table {fp_store.VERDICTS} drop column reference_network")
    conn.execute("delete from _migrations where name = '011_fingerprint_reference'")
    conn.execute(f"insert into {fp_store.VERDICTS} (network, tier, model, started_at, verdict,"
                 " set_version, method, samples, requests, failed, output_tokens, alpha, "
                 "baseline_runs, error) values ('n', 'default', 'm', 1.0e9, 'same', 2, "
                 "'tokens', 10, 10, 0, 10, 0.001, 1, '')")
    conn.commit()
    conn.close()
    (old,) = read_results([db])  # read-only, not migrated
    assert old.reference_network is None and old.verdict is Verdict.SAME
    (row,) = fingerprint_rows([old])
    assert row_cells(row)[HEADERS.index("reference")] == "set v2"

    Store(db).close()  # migrates: 011 adds the column, the old row keeps NULL
    FingerprintWriter(db).on_fingerprint(FingerprintResult(
        "n", "default", "m", 2.0e9, Verdict.DIFFERS, 2, Method.TOKENS, 0.1, 0.5, 0.4, 0.0005,
        10, 20, 0, 20, None, 0.001, 1, reference_network="ref"))
    assert [r.reference_network for r in read_results([db])] == [None, "ref"]
