"""The quality audit at run time: replies scrubbed of the key before they are graded, stored or
shown; the caps on requests and spend hold; a network that fails gives "not enough items";
the alarm wants `consecutive` audits in a row and its count survives a restart. Real servers
on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.analysis.quality import judge
from monitor.config import Config, parse_config
from monitor.core.comparison import Comparison as QualityComparison
from monitor.core.quality import Answer, Asked, QualitySettings, Verdict
from monitor.core.quality_grading import Grade
from monitor.exporter.quality import QualityMetrics
from monitor.runtime.quality import QualityRunner, ask_network
from monitor.storage.quality import AuditWriter, read_audits, worse_in_a_row
from monitor.storage.store import Store
from probes.session import SessionPool
from tests.conftest import free_port

KEY = "sk-live-quality-0123456789abcdef"


async def echo_key(request: web.Request) -> web.Response:
    """A chat completion that quotes the caller's key back, then answers 42."""
    body = await request.json()
    assert body["temperature"] == 0 and body["max_tokens"] == 64  # the audit's settings
    text = f"Your key {request.headers['Authorization']} works.\nAnswer: 42"
    return web.json_response({"object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text},
         "finish_reason": "stop"}], "usage": {"prompt_tokens": 100, "completion_tokens": 10}})


@pytest.fixture
async def leaky() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", echo_key)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def config(url: str, down: str, **quality: object) -> Config:
    return parse_config(yaml.safe_dump({
        "networks": [
            {"name": "leaky", "base_url": url, "models": {"large": "m70b"},
             "api_key_env": "LEAKY_KEY", "price_per_mtok": {"input": 1.0, "output": 1.0}},
            {"name": "down", "base_url": down, "models": {"large": "m70b"}}],
        "quality": {"items": 27, "max_tokens": 64, "concurrency": 4, "deadline": "5s",
                    **quality, "compare": [{"network": "down", "reference": "leaky"}]}}))


async def test_replies_are_scrubbed_of_the_key_before_they_are_stored(
        leaky: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKY_KEY", KEY)
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: every request fails
    db = tmp_path / "runs.db"
    Store(db).close()
    cfg = config(leaky, down)
    (result,) = await QualityRunner(cfg, sinks=[AuditWriter(db)]).run_once()
    # the network failed every item: no verdict, and the reason says why
    assert result.verdict is Verdict.NOT_ENOUGH and result.pairs == 0
    assert "0 of 27 items answered by both sides" in result.error
    assert "connect_error" in result.error
    assert result.requests < 27  # it stopped once min_items was out of reach
    conn = sqlite3.connect(db)
    rows = conn.execute("select side, raw, extracted, grade from quality_answers "
                        "where side = 'reference'").fetchall()
    conn.close()
    assert len(rows) == 27
    for _, raw, extracted, grade in rows:
        assert KEY not in raw and "Bearer ***" in raw
        assert (extracted, grade) in (("42", "correct"), ("42", "wrong"))


async def test_the_spend_cap_stops_asking_and_says_so(leaky: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKY_KEY", KEY)
    cfg = config(leaky, "http://127.0.0.1:9/v1")
    target = cfg.network("leaky").targets()[0]
    settings = dataclasses.replace(cfg.quality.settings, max_spend_usd=0.001)  # type: ignore[union-attr]
    items = list(enumerate(settings.draw(1)))
    pool = SessionPool()
    try:
        asked = await ask_network(target, pool.for_target(target, concurrency=4), items,
                                  settings, cfg.price("leaky"))
        capped = dataclasses.replace(settings, max_requests=5, max_spend_usd=1.0)
        few = await ask_network(target, pool.for_target(target, concurrency=4), items,
                                capped, cfg.price("leaky"))
    finally:
        await pool.close()
    # each request reserves its worst case (its prompt at the bound, 64 tokens out) and is
    # charged what the usage says (110 tokens at $1/Mtok): never past the cap
    assert 0 < asked.requests < 27 and asked.capped == "stopped at the spend cap ($0.001)"
    assert asked.spend_usd is not None and asked.spend_usd <= 0.001
    assert asked.spend_usd == pytest.approx(asked.requests * 110 / 1e6)
    assert few.requests == 5 and few.capped == "stopped at the request cap (5)"


def test_the_alarm_wants_consecutive_audits_and_resumes_from_the_store(tmp_path: Path
                                                                       ) -> None:
    settings = QualitySettings(items=54, consecutive=2)
    specs = settings.specs(9)
    c = QualityComparison("net", "large", "m70b", "ref", "large")

    def side(right: int) -> tuple[Answer, ...]:
        return tuple(Answer(i, f, d, s, "ok", "Answer: 1", "1",
                            Grade.CORRECT if i < right else Grade.WRONG)
                     for i, (f, d, s) in enumerate(specs))

    registry = CollectorRegistry()
    metrics = QualityMetrics(registry, settings)
    metrics.init([c])
    db = tmp_path / "runs.db"
    Store(db).close()
    streak = 0
    verdicts = []
    for t, (mine, theirs) in enumerate(((30, 50), (31, 50), (50, 50), (30, 50))):
        result = judge(c, Asked(side(mine), requests=54), side(theirs), settings,
                       audit_id=f"a{t}", seed=9, started_at=1000.0 + t, worse_before=streak)
        streak = result.consecutive_worse
        metrics.on_audit(result)
        AuditWriter(db).on_audit(result)
        verdicts.append((result.verdict, registry.get_sample_value(
            "depin_quality_alarm", {"network": "net", "model": "m70b", "reference": "ref"})))
    assert verdicts == [(Verdict.WORSE, 0.0), (Verdict.WORSE, 1.0), (Verdict.NOT_WORSE, 0.0),
                        (Verdict.WORSE, 0.0)]
    labels = {"network": "net", "model": "m70b", "reference": "ref"}
    assert registry.get_sample_value("depin_quality_accuracy", labels) == pytest.approx(30 / 54)
    assert registry.get_sample_value("depin_quality_audits_total",
                                     {**labels, "verdict": "worse than reference"}) == 3
    assert registry.get_sample_value("depin_quality_family_accuracy",
                                     {**labels, "family": "dates"}) is not None
    assert worse_in_a_row(read_audits([db])) == {("net", "m70b", "ref"): 1}
    stored = read_audits([db])[-1]
    assert stored.by_family == result.by_family and stored.verdict is Verdict.WORSE
    assert stored.by_difficulty == result.by_difficulty  # the breakdowns survive the store


async def test_items_refused_for_load_are_asked_again_within_the_cap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 or a no-capacity answer says nothing about how well a model answers: the item is
    asked again (twice at most); any other failure is the network's answer and is not."""
    monkeypatch.setattr("monitor.runtime.quality.REFUSED_WAIT_S", 0.01)
    monkeypatch.setenv("LEAKY_KEY", KEY)
    seen: dict[str, int] = {}

    async def busy_then_answer(request: web.Request) -> web.Response:
        prompt = (await request.json())["messages"][-1]["content"]
        seen[prompt] = seen.get(prompt, 0) + 1
        nth = list(seen).index(prompt)
        if nth % 3 == 0 and seen[prompt] == 1:  # every third item: no instance, once
            return web.json_response({"detail": "No instances available (yet)"}, status=503)
        if nth % 9 == 1 and seen[prompt] == 1:  # every ninth: a plain 500
            return web.json_response({"detail": "boom"}, status=500)
        return await echo_key(request)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", busy_then_answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    cfg = config(f"http://127.0.0.1:{port}/v1", "http://127.0.0.1:9/v1", max_requests=60)
    target = cfg.network("leaky").targets()[0]
    settings = dataclasses.replace(cfg.quality.settings, concurrency=1)  # type: ignore[union-attr]
    items = list(enumerate(settings.draw(1)))
    pool = SessionPool()
    try:
        asked = await ask_network(target, pool.for_target(target), items, settings)
    finally:
        await pool.close()
        await runner.cleanup()
    outcomes = [a.outcome for a in asked.answers]
    assert len(outcomes) == 27, (asked.capped, asked.error, asked.requests, outcomes)
    assert outcomes.count("http_error") == 3  # the 500s stay failures
    assert outcomes.count("ok") == 24  # the refused items were answered on their retry
    assert asked.requests == 27 + 9  # one retry each for the nine refused
