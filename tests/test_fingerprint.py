"""The fingerprint end to end, over real reference networks on 127.0.0.1: the simulator's
first tokens flip on near-ties and come with logprobs in OpenAI's wire format; discovery finds
border inputs within its caps; a model swapped mid-run is noticed at the next run, with or
without logprobs; an unchanged network raises no alarm; the state survives a restart."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from monitor.analysis.fingerprint import (
    baseline_runs,
    fingerprint_rows,
    observation,
    permutation_test,
    summary,
)
from monitor.config import parse_config
from monitor.core.errors import ConfigError
from monitor.core.fingerprint import CANDIDATES_V1, FingerprintResult, Method, Verdict
from monitor.core.result import Outcome
from monitor.exporter.fingerprint import FingerprintMetrics
from monitor.runtime.agent import (
    _fingerprint_runner,
    close_store,
    metrics_sink,
    monitor,
)
from monitor.runtime.agent import open_for_writing as open_store
from monitor.runtime.equality import EqualityRunner
from monitor.runtime.fingerprint import FingerprintRunner
from monitor.runtime.owned import cancel
from monitor.simulator.app import RunningNetwork
from monitor.simulator.firsttoken import first_token_model
from monitor.storage.fingerprint import FingerprintWriter
from monitor.storage.reads import fingerprint_history as history
from monitor.storage.reads import read_border_sets as read_sets
from monitor.storage.reads import read_fingerprints as read_results
from monitor.storage.store import Store
from probes.firsttoken import read_first_token
from tests.conftest import STEADY, StartSim

FAST = STEADY.with_overrides(ttft_s=0.0005, tokens_per_s=50_000.0)
MODEL = "sim-llama-3.1-8b-instruct"
SETTINGS = {"candidates_tried": 150, "border_inputs": 10, "reference_samples": 20,
            "samples_per_input": 8, "concurrency": 16, "max_requests": 100,
            "discovery_max_requests": 700}


def config_text(net: RunningNetwork, price: str = "", **settings: object) -> str:
    merged = {**SETTINGS, **settings}
    lines = ["networks:", f"  - {{name: sim, base_url: '{net.base_url}', model: {MODEL}"
                          f"{price}}}", "fingerprint:"]
    lines += [f"  {k}: {v}" for k, v in merged.items()]
    return "\n".join([*lines, "  networks: [{network: sim}]"]) + "\n"


async def test_first_tokens_flip_on_near_ties_and_logprobs_come_in_openai_format(
        start_sim: StartSim) -> None:
    net = await start_sim(FAST, seed=1)
    client = httpx.AsyncClient()

    async def ask(prompt: str, **extra: object) -> httpx.Response:
        return await client.post(f"{net.base_url}/chat/completions", json={
            "model": MODEL, "messages": [{"role": "user", "content": prompt}],
            "temperature": 0, "max_tokens": 1, **extra})

    firsts = {}
    for prompt in CANDIDATES_V1.prompts[:60]:
        tokens = [(await ask(prompt)).json()["choices"][0]["message"]["content"]
                  for _ in range(4)]
        firsts[prompt] = set(tokens)
    varied = [p for p, seen in firsts.items() if len(seen) > 1]
    assert 0 < len(varied) < 15  # greedy: stable on most prompts, flips on a few near-ties

    r = await ask(varied[0], logprobs=True, top_logprobs=5)
    choice = r.json()["choices"][0]
    entry = choice["logprobs"]["content"][0]
    assert entry["token"] == choice["message"]["content"]
    assert entry["bytes"] == list(entry["token"].encode())
    top = entry["top_logprobs"]
    assert len(top) == 5 and set(top[0]) == {"token", "logprob", "bytes"}
    assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
    assert top[0]["logprob"] - top[1]["logprob"] < 0.3  # a near-tie, as logprobs show it
    bad = await ask(varied[0], top_logprobs=5)
    assert bad.status_code == 400 and "logprobs" in bad.json()["error"]["message"]
    assert (await ask(varied[0])).json()["choices"][0]["logprobs"] is None
    await client.aclose()


def test_quantized_moves_near_ties_and_keeps_clear_winners() -> None:
    faithful, quantized = first_token_model(MODEL), first_token_model(MODEL, "quantized")
    moved = clear = 0
    for prompt in CANDIDATES_V1.prompts[:300]:
        a, b = faithful.logits(prompt), quantized.logits(prompt)
        top2 = np.sort(a)[-2:]
        if top2[1] - top2[0] > 1.0:
            clear += 1
            assert np.argmax(a) == np.argmax(b)
        moved += int(np.argmax(a) != np.argmax(b))
    assert moved > 0 and clear > 50


@pytest.mark.parametrize("logprobs", [False, True], ids=["tokens", "logprobs"])
async def test_a_model_swapped_mid_run_is_noticed_at_the_next_run(
        start_sim: StartSim, tmp_path: Path, logprobs: bool) -> None:
    net = await start_sim(FAST, seed=3, logprobs=logprobs, swap_to="quantized",
                          swap_at_s=1e9)
    config = parse_config(config_text(net))
    assert config.fingerprint is not None
    db = tmp_path / "runs.db"
    Store(db).close()
    registry = CollectorRegistry()
    exported = FingerprintMetrics(registry, config.fingerprint.settings)
    exported.init(config.fingerprint.targets)
    changes: list[FingerprintResult] = []
    clock = iter(1_760_000_000.0 + 86_400 * i for i in range(100))
    runner = FingerprintRunner(config, sinks=[FingerprintWriter(db), exported],
                               set_sinks=[FingerprintWriter(db)], on_change=changes.append,
                               clock=lambda: next(clock))

    (found,) = await runner.run_once()
    assert found.verdict is Verdict.DISCOVERED, found.error
    assert found.method is (Method.LOGPROBS if logprobs else Method.TOKENS)
    assert found.requests <= 700
    for _ in range(3):  # ordinary nondeterminism: no alarm
        (day,) = await runner.run_once()
        assert day.verdict is Verdict.SAME, day
    kept = len(runner.sets[("sim", MODEL)].prompts)
    assert 5 <= kept <= 10
    assert day.requests == kept * (2 if logprobs else 8)  # one output token each
    net.sim.started -= 2e9  # the network swaps its model between two runs
    (swapped,) = await runner.run_once()
    assert swapped.verdict is Verdict.CHANGED
    assert swapped.p_value is not None and swapped.p_value < 0.001
    assert changes == [swapped] and swapped.changed_since == day.started_at
    (after,) = await runner.run_once()  # the baseline starts afresh; the reference stays
    assert after.verdict is Verdict.DIFFERS

    stored = read_results([db])
    assert [r.verdict for r in stored] == [Verdict.DISCOVERED, *[Verdict.SAME] * 3,
                                           Verdict.CHANGED, Verdict.DIFFERS]
    (row,) = fingerprint_rows(stored)
    noticed = time.strftime("%Y-%m-%d", time.gmtime(swapped.started_at))
    assert summary(row) == f"the model behind this name changed on {noticed}"
    labels = {"network": "sim", "model": MODEL}
    assert registry.get_sample_value("depin_fingerprint_alarm", labels) == 1
    assert registry.get_sample_value("depin_fingerprint_last_change_timestamp_seconds",
                                     labels) == swapped.started_at
    assert 'verdict="changed"} 1.0' in generate_latest(registry).decode()


async def test_a_restarted_runner_goes_on_from_the_store(start_sim: StartSim,
                                                         tmp_path: Path) -> None:
    net = await start_sim(FAST, seed=4, logprobs=True)
    config = parse_config(config_text(net))
    db = tmp_path / "runs.db"
    Store(db).close()
    writer = FingerprintWriter(db)
    first = FingerprintRunner(config, sinks=[writer], set_sinks=[writer])
    await first.run_once()
    await first.run_once()
    again = FingerprintRunner(config, sinks=[writer], set_sinks=[writer], sets=read_sets(db),
                              history=history(db, 9))
    (result,) = await again.run_once()
    assert result.verdict is Verdict.SAME and result.set_version == 1
    assert result.baseline_runs == 1  # yesterday's run, read back from the store
    (forced,) = await again.run_once(rediscover=True)
    assert forced.verdict is Verdict.DISCOVERED and forced.set_version == 2
    assert read_sets(db)[("sim", MODEL)].version == 2


async def test_caps_are_refused_up_front_and_hold_at_run_time(start_sim: StartSim) -> None:
    net = await start_sim(FAST, seed=5)
    with pytest.raises(ConfigError, match=r"a run needs 80 requests .* max_requests is 50"):
        parse_config(config_text(net, max_requests=50))
    with pytest.raises(ConfigError, match=r"discovery_max_requests is 100; raise it"):
        parse_config(config_text(net, discovery_max_requests=100))
    dear = ", price_per_mtok: {input: 100.0, output: 100.0}"
    with pytest.raises(ConfigError, match=r"fingerprint\.discovery_max_spend_usd: a "
                                          r"discovery of 650 requests"):
        parse_config(config_text(net, dear, max_spend_usd=1.0))
    cheap = ", price_per_mtok: {input: 1.0, output: 1.0}"
    config = parse_config(config_text(net, cheap, discovery_max_spend_usd=0.05))
    (found,) = await FingerprintRunner(config).run_once()
    assert found.spend_usd is not None and found.spend_usd <= 0.05
    assert found.requests <= 700


def test_unchanged_models_raise_false_alarms_at_most_at_the_stated_rate() -> None:
    """Many runs of an unchanged model through the runner's test (the simulator's model
    decoded in process, each run on a fresh baseline of the latest runs): the share of
    "changed" stays within what alpha allows (binomial, 3 standard deviations)."""
    model = first_token_model(MODEL)
    prompts = [p for p in CANDIDATES_V1.prompts[:300]
               if np.sort(model.logits(p))[-1] - np.sort(model.logits(p))[-2] < 0.1][:10]
    assert len(prompts) == 10
    alpha, runs = 0.05, 200
    rng = np.random.default_rng(7)

    def day(n: int, top_k: int) -> dict[str, list[dict[str, float]]]:
        return {p: [dict(observation(d.token, d.top if top_k else None))
                    for d in model.greedy(p, n, rng, top_k)] for p in prompts}

    for n, top_k in ((8, 0), (2, 5)):
        history_ = [day(n, top_k) for _ in range(7)]
        alarms = 0
        for i in range(runs):
            today = day(n, top_k)
            baseline: dict[str, list[dict[str, float]]] = {}
            for run in history_[-7:]:
                for p, obs in run.items():
                    baseline.setdefault(p, []).extend(obs)
            result = permutation_test(today, baseline, permutations=199, seed=i)
            assert result is not None
            alarms += result.p_value < alpha
            history_.append(today)
        bound = runs * alpha + 3 * math.sqrt(runs * alpha * (1 - alpha))
        assert alarms <= bound, (top_k, alarms, bound)


def test_the_baseline_restarts_at_a_change() -> None:
    def result(verdict: Verdict, t: float, version: int = 1) -> FingerprintResult:
        return FingerprintResult("n", "t", "m", t, verdict, version, Method.TOKENS, 0.1, 0.5,
                                 0.1, 0.5, 10, 10, 0, 10, None, 0.001, 1,
                                 observations={"p": [{"a": 1.0}]})

    runs = [result(Verdict.DISCOVERED, 0), *(result(Verdict.SAME, t) for t in (1, 2, 3)),
            result(Verdict.CHANGED, 4), result(Verdict.DIFFERS, 5)]
    assert [r.started_at for r in baseline_runs(runs, 1, 7)] == [4, 5]
    assert [r.started_at for r in baseline_runs(runs[:4], 1, 2)] == [2, 3]
    assert baseline_runs(runs, 2, 7) == []  # another set version: none of them


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["choices", "message", "content",
                                                       "logprobs", "top_logprobs", "token",
                                                       "logprob", "usage"]), inner,
                                      max_size=4), max_leaves=20))
def test_any_answer_reads_as_an_outcome_never_an_exception(value: object) -> None:
    got = read_first_token(json.dumps(value).encode())
    assert got.outcome in set(Outcome)
    assert (got.token is not None) == (got.outcome is Outcome.OK)


def test_a_vllm_answer_reads_token_and_top_logprobs() -> None:
    # the shape of vllm/entrypoints/openai/protocol.py's ChatCompletionResponse with
    # ChatCompletionLogProbs (token, logprob, bytes, top_logprobs)
    body = (b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m",'
            b'"choices":[{"index":0,"message":{"role":"assistant","content":"Yes",'
            b'"tool_calls":[]},"logprobs":{"content":[{"token":"Yes","logprob":-0.6,'
            b'"bytes":[89,101,115],"top_logprobs":[{"token":"Yes","logprob":-0.6,'
            b'"bytes":[89,101,115]},{"token":"No","logprob":-0.8,"bytes":[78,111]}]}]},'
            b'"finish_reason":"length","stop_reason":null}],"usage":{"prompt_tokens":9,'
            b'"total_tokens":10,"completion_tokens":1}}')
    got = read_first_token(body)
    assert got.outcome is Outcome.OK and got.token == "Yes"
    assert got.top == (("Yes", -0.6), ("No", -0.8))
    assert (got.input_tokens, got.output_tokens) == (9, 1)
    assert Counter(observation("Yes", got.top)) == Counter(
        {"Yes": math.exp(-0.6), "No": math.exp(-0.8)})


async def test_run_once_fingerprints_beside_the_probes_and_a_change_wakes_equality(
        start_sim: StartSim, tmp_path: Path) -> None:
    net = await start_sim(FAST, seed=6, swap_to="substituted", swap_at_s=1e9)
    ref = await start_sim(FAST, seed=7)
    text = config_text(net).replace(
        "fingerprint:", f"  - {{name: ref, base_url: '{ref.base_url}', model: {MODEL}}}\n"
        "equality:\n  prompts: 5\n  samples_per_prompt: 4\n  concurrency: 16\n"
        "  compare: [{network: sim, reference: ref}]\nfingerprint:")
    config = parse_config(text)
    store = open_store(str(tmp_path / "runs.db"))
    try:
        await monitor(config, store, once=True, handle_signals=False)  # `run --once`
    finally:
        close_store(store)
    (found,) = read_results([tmp_path / "runs.db"])
    assert found.verdict is Verdict.DISCOVERED and found.network == "sim"

    # a change found by the fingerprint starts the equality run now, not in 6 hours
    runs = [asyncio.Event(), asyncio.Event()]  # the equality runs' first verdicts
    loop = asyncio.get_running_loop()

    def seen() -> None:
        next((e for e in runs if not e.is_set()), asyncio.Event()).set()

    class Seen:  # verdicts are delivered from a thread
        def on_verdict(self, result: object) -> None:
            loop.call_soon_threadsafe(seen)

    equality = EqualityRunner(config, sinks=[Seen()])
    runner = FingerprintRunner(config, sets=read_sets(tmp_path / "runs.db"),
                               on_change=lambda _: equality.wake())
    schedule = asyncio.create_task(equality.run())
    try:
        await asyncio.wait_for(runs[0].wait(), 30)  # the first equality run, at start
        (same,) = await runner.run_once()
        net.sim.started -= 2e9
        (changed,) = await runner.run_once()
        assert (same.verdict, changed.verdict) == (Verdict.SAME, Verdict.CHANGED)
        await asyncio.wait_for(runs[1].wait(), 30)  # the second run: at once
    finally:
        await cancel(schedule)


async def test_a_token_that_echoes_the_key_is_scrubbed_before_it_is_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-echo-secret-0123456789"

    said_so_far = []

    async def echo(request: web.Request) -> web.Response:
        # the key (without "Bearer"), one of two words so that every prompt varies, and more
        said_so_far.append(1)
        word = "abc"[len(said_so_far) % 3]
        said = request.headers["Authorization"].removeprefix("Bearer ") + f" {word} " + "x" * 500
        return web.json_response({"choices": [{"index": 0, "message": {
            "role": "assistant", "content": said}, "logprobs": None}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setenv("ECHO_KEY", key)
    try:
        config = parse_config(
            f"networks:\n  - {{name: echo, base_url: 'http://127.0.0.1:{port}/v1', model: m, "
            "api_key_env: ECHO_KEY}\nfingerprint:\n  candidates_tried: 10\n  tries: 2\n"
            "  min_border_inputs: 1\n  border_inputs: 1\n  reference_samples: 2\n"
            "  samples_per_input: 2\n  networks: [{network: echo}]\n")
        db = tmp_path / "runs.db"
        Store(db).close()
        writer = FingerprintWriter(db)
        (found,) = await FingerprintRunner(config, sinks=[writer],
                                           set_sinks=[writer]).run_once()
    finally:
        await runner.cleanup()
    assert found.verdict is Verdict.DISCOVERED  # its answers were stored ...
    (stored,) = read_sets(db).values()
    tokens = {k for obs in stored.reference.values() for o in obs for k in o}
    assert tokens <= {f"*** {w} " + "x" * 57 + "…" for w in "abc"}  # ... scrubbed and cut
    assert key not in (tmp_path / "runs.db").read_bytes().decode("latin-1")
    answered = read_first_token(b'{"choices":[{"message":{"content":"' + key.encode()
                                + b'"}}]}')
    assert answered.token == key  # the parser reads it; the probe scrubs it (above)


def test_a_restarted_monitor_exports_the_stored_change(tmp_path: Path) -> None:
    config = parse_config("networks:\n  - {name: n, base_url: 'http://127.0.0.1:9/v1', "
                          "model: m}\nfingerprint: {networks: [{network: n}]}\n")
    store = open_store(str(tmp_path / "runs.db"))
    try:
        for t, verdict in ((1.0, Verdict.SAME), (2.0, Verdict.CHANGED), (3.0, Verdict.DIFFERS)):
            FingerprintWriter(store.path).on_fingerprint(FingerprintResult(
                "n", "default", "m", t, verdict, 3, Method.TOKENS, 0.1, 0.5, 0.1, 0.5, 10, 10,
                0, 10, None, 0.001, 1))
        metrics = metrics_sink(config)
        runner = _fingerprint_runner(config, store, metrics, None, ())
        assert runner is not None and runner.history[("n", "m")][-1].verdict is Verdict.DIFFERS
        labels = {"network": "n", "model": "m"}
        get = metrics.registry.get_sample_value
        assert get("depin_fingerprint_last_change_timestamp_seconds", labels) == 2.0
        assert get("depin_fingerprint_set_version", labels) == 3
    finally:
        close_store(store)
