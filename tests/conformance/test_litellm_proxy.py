"""An independent server run for real: the LiteLLM proxy (pinned, in its own virtualenv) on
127.0.0.1 with mock-response models, probed by `depin-monitor probe -c` as a user would.

The mock models answer each standard job's reference answer (or fail, for the error case), so
the test judges the protocol and the outcomes, and proves that what it probed was LiteLLM
(its version header, its usage chunk that keeps a choice) and not one of our own servers.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.core.contract import TOOLS_V1, ContractRun, ContractSettings, Grade
from monitor.core.jobs import get_job
from monitor.core.target import Target
from monitor.runtime.contract import check_target
from monitor.simulator.app import start_network
from monitor.simulator.profiles import PROFILES
from probes.session import SessionPool
from tests.conformance import litellm_env
from tests.conftest import free_port

STARTUP_S = 90.0


@dataclass(frozen=True)
class Proxy:
    url: str  # the OpenAI-compatible base, with /v1
    key: str  # the master key, sent as Bearer
    sim_port: int  # model `sim-tools` forwards to a simulator a test starts on this port


def _config(path: Path, sim_port: int) -> None:
    models = {"mock-short": get_job("chat-short-v1").reference_answer,
              "mock-long": get_job("chat-long-v1").reference_answer,
              # LiteLLM's own failure mock: raised as its stream starts
              "mock-broken": "Exception: mock_streaming_error"}
    lines = ["model_list:"]
    for name, answer in models.items():
        lines += [f"  - model_name: {name}", "    litellm_params:",
                  f"      model: openai/{name}", "      api_key: sk-unused",
                  f"      mock_response: {json.dumps(answer)}"]
    # A real upstream: the simulator (started by the test that uses it) behind the proxy.
    # (a model name without "llama": LiteLLM would count its tokens with a tokenizer it
    # fetches from Hugging Face, retrying for 24 s offline)
    lines += ["  - model_name: sim-tools", "    litellm_params:",
              "      model: openai/sim-contract",
              f"      api_base: http://127.0.0.1:{sim_port}/v1", "      api_key: sk-unused"]
    lines += ["litellm_settings:", "  telemetry: false",
              "general_settings:", "  master_key: os.environ/LITELLM_MASTER_KEY"]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def litellm_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    try:
        exe = litellm_env.ensure()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        if os.environ.get("DEPIN_MONITOR_CI") == "1":
            raise
        pytest.skip(f"LiteLLM {litellm_env.LITELLM_VERSION} could not be installed: {exc}")
    work = tmp_path_factory.mktemp("litellm")
    sim_port = free_port()
    _config(work / "config.yaml", sim_port)
    key = "sk-" + secrets.token_hex(24)
    port = free_port()
    env = {**os.environ, "LITELLM_MASTER_KEY": key,
           "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price list from GitHub
           "LITELLM_TELEMETRY": "False", "NO_DOCS": "True", "HF_HUB_OFFLINE": "1"}
    log = (work / "litellm.log").open("w")
    proc = subprocess.Popen([str(exe), "--config", str(work / "config.yaml"),
                             "--host", "127.0.0.1", "--port", str(port)],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/health/liveliness", proc, work / "litellm.log")
        yield Proxy(f"http://127.0.0.1:{port}/v1", key, sim_port)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the proxy and any workers it forked
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"litellm exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"litellm not ready in {STARTUP_S:g} s:\n{log.read_text()[-2000:]}")


def test_chat_jobs_through_depin_monitor_probe(litellm_proxy: Proxy, tmp_path: Path) -> None:
    config = tmp_path / "litellm.yaml"
    networks = [("litellm-short", "mock-short", "chat-short-v1"),
                ("litellm-long", "mock-long", "chat-long-v1"),
                ("litellm-broken", "mock-broken", "chat-short-v1")]
    config.write_text("networks:\n" + "".join(
        f"  - {{name: {net}, kind: openai, base_url: '{litellm_proxy.url}', model: {model},"
        f" api_key_env: LITELLM_TEST_KEY, jobs: [{job}]}}\n" for net, model, job in networks))
    proc = subprocess.run([sys.executable, "-m", "monitor.cli", "probe", "-c", str(config),
                           "--json"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LITELLM_TEST_KEY": litellm_proxy.key})
    assert proc.returncode == 0, proc.stderr
    assert litellm_proxy.key not in proc.stdout + proc.stderr
    runs = {r["network"]: r for r in map(json.loads, proc.stdout.splitlines())}
    for net in ("litellm-short", "litellm-long"):
        r = runs[net]
        assert r["outcome"] == "ok", r["error"]
        assert r["token_source"] == "usage" and r["output_tokens"] > 0
        assert r["served_model"] in ("mock-short", "mock-long")
        assert 0 < r["ttfb_s"] <= r["ttft_s"] <= r["duration_s"]
    # The long answer streams in many chunks: a decode rate, from more than one chunk.
    assert runs["litellm-long"]["tokens_per_s"] > 0
    broken = runs["litellm-broken"]
    assert (broken["outcome"], broken["http_status"]) == ("http_error", 529)
    assert "mock error" in broken["error"]


def test_the_stream_is_litellms(litellm_proxy: Proxy) -> None:
    body = json.dumps({"model": "mock-short", "stream": True, "max_tokens": 16,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": "What is 17 + 25?"}]}).encode()
    req = urllib.request.Request(f"{litellm_proxy.url}/chat/completions", data=body, headers={
        "Authorization": f"Bearer {litellm_proxy.key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        version = resp.headers["x-litellm-version"]
        events = [line[len(b"data: "):] for line in resp.read().splitlines()
                  if line.startswith(b"data: ")]
    assert version == litellm_env.LITELLM_VERSION
    assert events[-1] == b"[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    # LiteLLM's shape, which the conformance corpus replays: role and text in the first chunk,
    # and a final usage chunk that keeps a choice with an empty delta.
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "42"}
    assert chunks[-1]["choices"] == [{"index": 0, "delta": {}}]
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_tool_call_suite_through_the_proxy_is_graded_ok(litellm_proxy: Proxy) -> None:
    # The proxy forwards `sim-tools` to a simulator (tool calls done right, streamed and not)
    # and re-streams its answer in its own shape; every suite item must still grade ok.
    async def check() -> ContractRun:
        net = await start_network(PROFILES["datacenter"].with_overrides(
            ttft_s=0.0, p_http_5xx=0.0), port=litellm_proxy.sim_port)
        target = Target(network="litellm", name="small", kind="openai",
                        base_url=litellm_proxy.url, model="sim-tools",
                        api_key_env="LITELLM_TOOLS_TEST_KEY")
        pool = SessionPool()
        try:
            return await check_target(target, pool.for_target(target),
                                      ContractSettings(params=()))
        finally:
            await pool.close()
            await net.stop()

    os.environ["LITELLM_TOOLS_TEST_KEY"] = litellm_proxy.key
    try:
        run = asyncio.run(check())
    finally:
        del os.environ["LITELLM_TOOLS_TEST_KEY"]
    assert {(g.item, g.stream) for g in run.grades} == {
        (i.name, s) for i in TOOLS_V1.items for s in (False, True)}
    for g in run.grades:
        assert (g.outcome, g.grade) == ("ok", Grade.OK), (g.item, g.stream, g.detail)
    assert litellm_proxy.key not in repr(run)
    finish = {(g.item, g.finish_reason) for g in run.grades}
    assert ("parallel", "tool_calls") in finish and ("no-call", "stop") in finish
