"""A network that echoes the buyer's API key back, in every way it can, to a monitor on
127.0.0.1: no 8-character stretch of the key reaches `probe --json` or its table, a `run -vv`
log line, the SQLite store, /api/v1/, any report format, the metrics, or an equality sample.

The leaky network speaks the OpenAI chat-completions stream the probes read (the shapes of
tests/fakes_openai.py) and echoes whatever key the probe sent it in the Authorization header:
in the answer, split across stream chunks (the reproduction of the key in an answer that the
job's check quotes), in a JSON error body after ~180 characters, in a plain-text 500, in
response headers and stream fields, in an error event written in two pieces mid-stream, and
JSON-escaped and URL-encoded in a 502.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest

from monitor import cli
from monitor.analysis.formats import RENDERERS
from monitor.config import Config, load_config
from monitor.core.result import Outcome, ProbeResult
from monitor.core.secrets import MIN_FRAGMENT
from monitor.core.target import Target
from monitor.exporter.metrics import MetricsSink
from monitor.web.api import ROUTES, StatusSource
from monitor.web.server import build_app
from probes.sampling import complete
from probes.session import SessionPool

# A key like the (47 characters), with the / and + that JSON and URL encoders change.
KEY = "sk-live/0123456789abcdef+0123456789abcdef0123456"
ENV = "LEAKY_NETWORK_KEY"
SCENARIOS = ("answer", "json500", "text500", "header", "stream_error", "encoded")


def fragments(text: str) -> list[str]:
    """Every MIN_FRAGMENT-character stretch of the key, raw, JSON-escaped or percent-encoded,
    found in `text`."""
    forms = {KEY, KEY.replace("/", "\\/"), quote(KEY, safe=""), quote(KEY, safe="/")}
    return sorted({f[i:i + MIN_FRAGMENT] for f in forms
                   for i in range(len(f) - MIN_FRAGMENT + 1) if f[i:i + MIN_FRAGMENT] in text})


async def leaky(request: web.Request) -> web.StreamResponse:
    """One leak per scenario (the path's first segment), of the key the request carried."""
    key = request.headers.get("Authorization", "").removeprefix("Bearer ")
    scenario = request.match_info["scenario"]
    if scenario == "json500":
        return web.json_response({"error": {"message": "The upstream provider rejected the "
                                            "request. " + "x" * 140 + f" key {key}",
                                            "type": "server_error"}}, status=500)
    if scenario == "text500":
        return web.Response(status=500, text="Internal error: " + "." * 170 + f" key={key}")
    if scenario == "encoded":
        escaped = key.replace("/", "\\/")
        return web.Response(status=502, text=f'upstream said {{"authorization":"{escaped}"}} '
                                             f"for /v1/chat?api_key={quote(key, safe='')}")
    headers = {"Content-Type": "text/event-stream"}
    if scenario == "header":
        headers |= {"x-served-by": key, "x-request-id": key}
    resp = web.StreamResponse(headers=headers)
    await resp.prepare(request)
    base = {"id": "c1", "object": "chat.completion.chunk",
            "model": key if scenario == "header" else "echo"}
    if scenario == "header":
        base["system_fingerprint"] = key

    async def event(obj: object) -> None:
        await resp.write(f"data: {json.dumps(obj)}\n\n".encode())

    def delta(content: str) -> dict[str, object]:
        return {**base, "choices": [{"index": 0, "delta": {"content": content}}]}

    await event({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    if scenario == "answer":  # the key split across three chunks; the probe joins them
        for piece in ("The key you sent is ", key[:20], key[20:]):
            await event(delta(piece))
    elif scenario == "stream_error":  # one error event, written in two pieces mid-key
        await event(delta("4"))
        line = f"data: {json.dumps({'error': {'message': 'y' * 180 + ' ' + key}})}\n\n"
        cut = line.index(key) + 20
        await resp.write(line[:cut].encode())
        await resp.write(line[cut:].encode())
        return resp
    else:
        await event(delta("42"))
    await event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    await resp.write(b"data: [DONE]\n\n")
    return resp


@pytest.fixture(scope="module")
def network() -> Iterator[str]:
    """The leaky network on a free 127.0.0.1 port, in a thread of its own (so that the
    monitor, in this process or a subprocess, runs its own event loop)."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/{scenario}/v1/chat/completions", leaky)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, KEY)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_probe_json_and_its_tables_hold_no_fragment_of_the_key(
        network: str, scenario: str, key_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{network}/{scenario}/v1"
    cli.main(["probe", "--url", url, "--model", "echo", "--api-key-env", ENV, "--json"])
    out = capsys.readouterr()
    [row] = [json.loads(line) for line in out.out.splitlines()]
    assert fragments(out.out + out.err) == []
    if scenario == "answer":  # the reproduction: the check quotes the answer it rejects
        assert row["outcome"] == "wrong_output" and "The key you sent is ***" in row["error"]
    elif scenario == "header":
        assert row["outcome"] == "ok" and row["node"] == row["served_model"] == "***"
    else:
        assert row["outcome"] == "http_error" and "***" in row["error"]
    for table in ([], ["--wide"]):
        cli.main(["probe", "--url", url, "--model", "echo", "--api-key-env", ENV, *table])
        out = capsys.readouterr()
        assert fragments(out.out + out.err) == []


def test_a_run_at_vv_its_store_its_api_and_every_report_hold_no_fragment_of_the_key(
        network: str, tmp_path: Path, key_env: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump({"location": "lab", "networks": [
        {"name": scenario.replace("_", "-"), "kind": "openai",
         "base_url": f"{network}/{scenario}/v1", "api_key_env": ENV,
         "models": {"small": "echo"}, "jobs": ["chat-short-v1"], "sla": "enterprise"}
        for scenario in SCENARIOS]}))
    db = tmp_path / "runs.db"
    done = subprocess.run([sys.executable, "-m", "monitor.cli", "-vv", "run", "-c", str(config),
                           "--db", str(db), "--once"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, ENV: KEY})
    assert done.returncode == 0, done.stderr
    assert "run network=answer" in done.stderr  # the -vv line of each run is there ...
    assert fragments(done.stdout + done.stderr) == []  # ... without the key

    conn = sqlite3.connect(db)
    try:
        tables = [t for (t,) in conn.execute("select name from sqlite_master where type='table'")]
        cells = [str(cell) for t in tables for row in conn.execute(f'select * from "{t}"')
                 for cell in row if isinstance(cell, str)]
        outcomes = dict(conn.execute("select network, outcome from probe_results"))
    finally:
        conn.close()
    assert outcomes["answer"] == "wrong_output" and outcomes["header"] == "ok"
    assert len(outcomes) == len(SCENARIOS)
    assert fragments("\n".join(cells)) == []

    for fmt in sorted(RENDERERS):
        assert cli.main(["report", "--db", str(db), "--format", fmt, "-o",
                         str(tmp_path / f"report.{fmt}")]) == 0
        text = (tmp_path / f"report.{fmt}").read_text(errors="replace")
        assert "answer" in text or fmt == "html"
        assert fragments(text) == [], fmt
    # a store written before the scrubber existed: the API scrubs what it serves from it
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("update probe_results set served_model = ?, node = ?", (KEY, "n " + KEY))
    conn.close()
    answers = asyncio.run(_api_answers(load_config(config), db))
    assert set(answers) == {f"/api/v1/{name}" for name, _ in ROUTES} | {"/api/v1/"}
    assert all(status == 200 for status, _ in answers.values()), answers
    assert '"node": "n ***"' in answers["/api/v1/results"][1]
    assert fragments("\n".join(body for _, body in answers.values())) == []


async def _api_answers(config: Config, db: Path) -> dict[str, tuple[int, str]]:
    app = build_app(CollectorRegistry(), status=StatusSource.from_config(config, db))
    out: dict[str, tuple[int, str]] = {}
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for path in ["/api/v1/", *(f"/api/v1/{name}" for name, _ in ROUTES)]:
            resp = await client.get(path)
            out[path] = (resp.status, await resp.text())
    return out


async def test_an_equality_sample_holds_no_fragment_of_the_key(network: str, key_env: None
                                                               ) -> None:
    pool = SessionPool()
    try:
        for scenario in ("json500", "text500", "encoded"):
            target = Target(network="n", name="small", kind="openai", model="echo",
                            base_url=f"{network}/{scenario}/v1", api_key_env=ENV)
            done = await complete(target, pool.for_target(target), "hi", temperature=1.0,
                                  max_tokens=8, deadline_s=10)
            assert done.outcome is Outcome.HTTP_ERROR and "***" in done.error
            assert fragments(done.error) == []
    finally:
        await pool.close()


def test_no_metric_label_carries_text_a_network_wrote() -> None:
    marker = "NETWORKWROTE"
    sink = MetricsSink()
    sink.init_targets([("n", "small", "chat-short-v1")])
    for outcome in Outcome:
        sink.on_result(ProbeResult(
            network="n", target="small", job="chat-short-v1", model="m", outcome=outcome,
            started_at=1.0, ttft_s=0.1, duration_s=0.2, http_status=500, error=marker,
            served_model=marker, system_fingerprint=marker, node=marker,
            details={"request_id": marker, marker: marker}, tls_version="TLSv1.3",
            tls_cipher="TLS_AES_128_GCM_SHA256", ip_version=4))
    exposition = generate_latest(sink.registry).decode()
    assert 'outcome="http_error"' in exposition  # the runs were counted ...
    assert marker not in exposition  # ... and no label (nor anything else) carries their text
