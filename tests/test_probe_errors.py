"""No run is lost: a probe that raises (a bug) still yields a stored and exported `malformed` run,
counted in depin_monitor_probe_errors_total, with its API key redacted; and a stream that breaks
the protocol is a `malformed` row in `depin-monitor probe`, never a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from aiohttp import web

from monitor.cli.commands.probe import probe_all
from monitor.config import load_config
from monitor.core.jobs import get_job
from monitor.core.result import Outcome
from monitor.core.target import Target
from monitor.runtime.agent import monitor
from monitor.storage.store import Store
from probes import PROBES, ProbeKind
from tests.probes.capture import capture_server

SECRET = "sk-probe-error-secret-9876"


async def raising_probe(target: Target, job: object, session: object) -> object:
    raise AttributeError(f"'str' object has no attribute 'get' (key {target.api_key()})")


@pytest.fixture
def buggy_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kind `openai` replaced by a probe with a bug: it raises, with the key in its message."""
    monkeypatch.setitem(PROBES, "openai", ProbeKind("openai", raising_probe,
                                                    PROBES["openai"].requests, "-"))
    monkeypatch.setenv("BUGGY_KEY", SECRET)


def write_config(tmp: Path) -> Path:
    config = {"location": "lab", "networks": [
        {"name": "buggy", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
         "api_key_env": "BUGGY_KEY", "models": {"small": "m"}, "jobs": ["chat-short-v1"],
         "interval": "1s"}]}
    path = tmp / "monitor.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_a_probe_that_raises_is_stored_and_exported(tmp_path: Path, buggy_openai,
                                                          caplog) -> None:
    config = load_config(str(write_config(tmp_path)))
    store = Store(str(tmp_path / "r.db"))
    scraped: dict[str, str] = {}

    def ready(scheduler, port) -> None:
        async def scrape_after_first_run() -> None:
            while scheduler.runs < 1:
                await asyncio.sleep(0.02)
            async with httpx.AsyncClient() as client:
                scraped["metrics"] = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            scheduler.stop()
        asyncio.get_running_loop().create_task(scrape_after_first_run())

    caplog.set_level(logging.ERROR, logger="monitor.runtime.scheduler")
    try:
        scheduler = await asyncio.wait_for(
            monitor(config, store, listen="127.0.0.1:0", on_ready=ready, handle_signals=False),
            20)
    finally:
        store.close()
    assert scheduler.errors >= 1

    conn = sqlite3.connect(tmp_path / "r.db")
    outcome, error, details = conn.execute(
        "select outcome, error, details from probe_results").fetchone()
    conn.close()
    assert outcome == "malformed"
    assert error.startswith("probe error: AttributeError: 'str' object has no attribute 'get'")
    assert SECRET not in error and "***" in error
    assert json.loads(details) == {"probe_error": "AttributeError"}

    metrics = scraped["metrics"]
    assert 'depin_monitor_probe_errors_total{network="buggy"} 1.0' in metrics
    assert ('depin_probe_failures_total{network="buggy",outcome="malformed",target="small",'
            'workload="chat-short-v1"} 1.0') in metrics
    # The traceback is logged for whoever fixes the probe, without the key.
    assert "Traceback" in caplog.text and "raising_probe" in caplog.text
    assert SECRET not in caplog.text + metrics


async def test_the_probe_command_turns_a_probe_bug_into_a_malformed_row(buggy_openai) -> None:
    target = Target(network="n", name="adhoc", kind="openai", base_url="http://127.0.0.1:9/v1",
                    model="m", api_key_env="BUGGY_KEY")
    (result,) = await probe_all([(target, get_job("chat-short-v1"))])
    assert result.outcome is Outcome.MALFORMED
    assert result.error.startswith("probe error: AttributeError:") and SECRET not in result.error


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def string_delta(request: web.Request) -> web.StreamResponse:
    """The stream from issue 9: a chunk whose delta is a string, then [DONE]."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(b'data: {"choices":[{"index":0,"delta":"hi"}]}\n\ndata: [DONE]\n\n')
    return resp


async def test_probe_prints_malformed_for_a_string_delta_without_a_traceback() -> None:
    async with capture_server({("POST", "/v1/chat/completions"): string_delta}) as cap:
        url = cap.url + "/v1"
        code, out, err = await run_cli("probe", "--url", url, "--model", "m")
        gated, _, gated_err = await run_cli("probe", "--url", url, "--model", "m",
                                            "--fail-on-error")
        _, as_json, _ = await run_cli("probe", "--url", url, "--model", "m", "--json")
    assert code == 0 and "malformed" in out and "0/1 ok" in out  # exit 0 unless gated
    assert gated == 1  # --fail-on-error: not every outcome was ok
    assert "Traceback" not in err + gated_err
    row = json.loads(as_json)
    assert row["outcome"] == "malformed"
    assert row["error"] == "choices[0].delta is a string, not an object"
