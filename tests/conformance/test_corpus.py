"""Every probe kind against real servers' streams, replayed byte for byte with their timing: the
outcome, the token count and its source, the reassembled answer, TTFT and the decode rate."""

from __future__ import annotations

import dataclasses
import json

import pytest

from monitor.core.checks import Exact
from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from probes import PROBES
from probes.session import SessionPool
from tests.conformance.corpus import Fixture
from tests.conformance.replay import replay_server
from tests.conformance.servers import FIXTURES
from tests.conftest import quick_job

pytestmark = pytest.mark.usefixtures("no_collection_pauses")

# Judged against when the server really wrote (its own stamps), the probe is off by its own
# reading delay: milliseconds, tens on a machine loaded tenfold. A probe that stamps the wrong
# chunk is off by a chunk interval (60 ms) or the whole TTFT (250 ms); one that miscounts the
# first chunk or misses the stop token's time, by 12 % or more of the decode rate.
TTFT_ABS_S = 0.03
DECODE_REL = 0.08


async def probe(fx: Fixture, url: str) -> ProbeResult:
    base = url + "/v1" if fx.kind == "openai" else url
    target = Target(network=fx.name, name="small", kind=fx.kind, base_url=base,
                    model="conformance", check_output=fx.text is not None)
    check = Exact((fx.text or "").rstrip("."))
    job = dataclasses.replace(quick_job("chat-short-v1"), check=check, deadline_s=10.0)
    pool = SessionPool()
    try:
        return await PROBES[fx.kind].run(target, job, pool.for_target(target))
    finally:
        await pool.close()


@pytest.mark.timing
@pytest.mark.parametrize("fx", FIXTURES, ids=[fx.name for fx in FIXTURES])
async def test_probe_reads_the_server_stream(fx: Fixture) -> None:
    async with replay_server(fx) as server:
        r = await probe(fx, server.url)
    assert server.paths == [fx.path]
    assert r.outcome is fx.outcome, r.error
    assert fx.error in r.error
    assert (r.output_tokens, r.token_source) == (fx.tokens, fx.token_source)
    ttft, decode = fx.truth(server.sent)
    if ttft is None:
        assert r.ttft_s is None
    else:
        assert r.ttft_s == pytest.approx(ttft, abs=TTFT_ABS_S)
    if fx.outcome is Outcome.OK and fx.decode_truth:
        assert r.tokens_per_s == pytest.approx(decode, rel=DECODE_REL)


@pytest.mark.parametrize("fx", FIXTURES, ids=[fx.name for fx in FIXTURES])
def test_fixture_ground_truth_adds_up(fx: Fixture) -> None:
    # The tokens marked on the writes are the ones the server's own count reports.
    if fx.outcome is Outcome.OK and fx.decode_truth:
        assert fx.generated == fx.tokens
    assert fx.source and fx.writes and all(w.data or w.at == 0 for w in fx.writes)


async def test_finish_reason_error_alone_ends_the_run_as_an_error() -> None:
    # OpenRouter documents `finish_reason: "error"` as how a failed stream ends; a variant of
    # its mid-stream error without the error object must still not count as a completed run.
    fx = next(f for f in FIXTURES if f.name == "openrouter-error-midstream")
    last = json.loads(fx.writes[-1].data.removeprefix(b"data: "))
    del last["error"]
    data = b"data: " + json.dumps(last, separators=(",", ":")).encode() + b"\n\n"
    fx = dataclasses.replace(fx, writes=(*fx.writes[:-1], dataclasses.replace(
        fx.writes[-1], data=data)))
    async with replay_server(fx) as server:
        r = await probe(fx, server.url)
    assert r.outcome is Outcome.HTTP_ERROR
    assert "finish_reason: error" in r.error
