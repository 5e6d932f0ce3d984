"""Capacity ladders against reference networks on 127.0.0.1: the knee found where the
simulated capacity is (within one step), the hard limits never passed, a 429 stopping the
climb, and the reference network's capacity model itself."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.capacity import (
    CapacityLimits,
    CapacitySettings,
    Ladder,
    StepCriteria,
    Stop,
    cost_bound,
    parse_ladder,
)
from monitor.core.jobs import get_job
from monitor.core.target import Target
from monitor.runtime.capacity import Ledger, run_ladder
from monitor.simulator.app import RunningNetwork
from monitor.simulator.capacity import Slots
from monitor.simulator.profiles import FaultProfile
from tests.conftest import StartSim

# One generation takes 20 tokens / 50 tok/s = 0.4 s after a 20 ms prefill, so a request that
# has to wait for a slot waits about 0.4 s: far above the 0.2 s TTFT criterion, while one that
# gets a slot at once starts in 20 ms.
FAST = FaultProfile(name="capacity", ttft_s=0.02, ttft_sigma=0.0, tokens_per_s=50.0,
                    decode_sigma=0.0)
QUICK = FAST.with_overrides(tokens_per_s=500.0)  # where queueing is not the point: 0.06 s a run
JOB = dataclasses.replace(get_job("chat-long-v1"), max_tokens=20, deadline_s=10.0)
CRITERIA = StepCriteria(ttft_p95_s=0.2, decode_tps_min=20.0, availability=0.99)
LADDER = (1, 2, 4, 8, 16, 32)


def settings(ladder: tuple[int, ...] = LADDER, *, step_s: float = 5.0, per_stream: int = 1,
             concurrency: int | None = None, requests: int = 1000,
             spend: float | None = None) -> CapacitySettings:
    return CapacitySettings(ladder=ladder, step_s=step_s, requests_per_stream=per_stream,
                            limits=CapacityLimits(concurrency or ladder[-1], requests, spend),
                            job=JOB.name, interval_s=3600.0)


def target(net: RunningNetwork) -> Target:
    return Target(network=net.name, name="small", kind="openai", base_url=net.base_url,
                  model=net.sim.model)


async def climb(net: RunningNetwork, criteria: StepCriteria = CRITERIA, **kw: object) -> Ladder:
    price = kw.pop("price", None)
    return await run_ladder(target(net), JOB, settings(**kw), criteria,  # type: ignore[arg-type]
                            price=price)  # type: ignore[arg-type]


@pytest.mark.parametrize(("nodes", "slots", "queue"), [
    (1, 1, 64),  # one consumer GPU, one stream: every second request waits
    (2, 3, 64),  # 6 streams: between the ladder's steps
    (4, 4, 64),  # 16 streams: on a step
    (3, 2, 0),  # 6 streams and no queue: beyond them the gateway refuses (503)
])
async def test_the_ladder_finds_the_simulated_capacity_within_one_step(
        start_sim: StartSim, nodes: int, slots: int, queue: int) -> None:
    """The sustained concurrency is the highest step at or below the network's nodes x slots
    and the knee the next one: where a buyer's load starts to queue (TTFT) or fail."""
    net = await start_sim(FAST, nodes=nodes, slots_per_node=slots, queue_per_node=queue)
    capacity = nodes * slots
    ladder = await climb(net)
    assert ladder.stopped is Stop.KNEE, ladder.detail
    assert ladder.sustained is not None and ladder.knee is not None
    assert ladder.sustained <= capacity < ladder.knee, (ladder.sustained, ladder.knee)
    assert LADDER.index(ladder.knee) == LADDER.index(ladder.sustained) + 1 or ladder.sustained == 0
    broken = ladder.steps[-1]
    if queue:
        assert broken.outcomes == {"ok": broken.runs}  # queueing: slow, not failing
        assert broken.broke[0].startswith("TTFT p95")
    else:
        assert broken.outcomes.get("http_error", 0) >= ladder.knee - capacity
        assert broken.broke[0].startswith("availability")
    held = ladder.steps[-2] if len(ladder.steps) > 1 else None
    if held is not None:  # below the knee every stream got a slot: full decode, no queueing
        assert held.held and held.ttft_p95_s is not None and held.ttft_p95_s < 0.2
        assert held.stream_tps_p50 is not None and held.stream_tps_p50 > 40
    assert net.sim.slots is not None and net.sim.slots.most_busy <= capacity


async def test_throughput_grows_with_concurrency_up_to_the_capacity(start_sim: StartSim) -> None:
    """The aggregate output tokens/s climbs with the streams while each keeps its decode rate."""
    net = await start_sim(FAST, nodes=1, slots_per_node=64, queue_per_node=0)
    ladder = await climb(net, ladder=(1, 4, 16))
    assert ladder.stopped is Stop.TOP and ladder.sustained == 16
    rates = [s.tokens_per_s or 0 for s in ladder.steps]
    assert rates[0] * 2 < rates[1] and rates[1] * 2 < rates[2], rates
    assert all(abs((s.stream_tps_p50 or 0) - 50) < 10 for s in ladder.steps)


async def test_hard_limits_are_never_passed(start_sim: StartSim) -> None:
    """Concurrency, requests and worst-case spend stay within their limits, counted at the
    server: a step the ledger cannot afford is not started, and a step it runs out in sends
    no more."""
    net = await start_sim(QUICK, nodes=1, slots_per_node=1000)
    # Steps end by their request counts here, never by time: a slow machine must not cut one.
    # in flight: the 32-stream step is above max_concurrency and is never started
    ladder = await climb(net, ladder=(2, 8, 32), concurrency=8, per_stream=1,
                         step_s=120.0)
    assert ladder.stopped is Stop.BUDGET and "max_concurrency 8" in ladder.detail
    assert net.sim.slots is not None and net.sim.slots.most_busy <= 8
    assert net.sim.requests == 10 == ladder.requests
    # requests: 4 streams x 5, then 10 of the 8-stream step's 40, then no 16-stream step
    before = net.sim.requests
    ladder = await climb(net, ladder=(4, 8, 16), per_stream=5, requests=30, step_s=120.0)
    assert net.sim.requests - before == 30 == ladder.requests
    assert [s.runs for s in ladder.steps] == [20, 10]
    assert ladder.stopped is Stop.BUDGET and "16 requests needed" in ladder.detail
    # spend: at most 7 requests' worst case fit, whatever the ladder asks
    price = {"input": 2.0, "output": 8.0}
    bound = cost_bound(JOB, price)
    assert bound is not None
    before = net.sim.requests
    ladder = await climb(net, ladder=(1, 2, 4), per_stream=3, spend=bound * 7.5, price=price,
                         step_s=120.0)
    sent = net.sim.requests - before
    assert sent == ladder.requests == 7 and sent * bound <= bound * 7.5
    assert ladder.spend_usd is not None and ladder.spend_usd <= bound * 7.5
    assert ladder.stopped is Stop.BUDGET


@given(limit=st.integers(1, 50), spend=st.one_of(st.none(), st.floats(0.0, 10.0)),
       cost=st.one_of(st.none(), st.floats(0.001, 1.0)), asks=st.lists(st.integers(1, 20)))
def test_the_ledger_never_books_past_a_limit(limit: int, spend: float | None,
                                             cost: float | None, asks: list[int]) -> None:
    ledger = Ledger(CapacityLimits(4, limit, spend), cost)
    for n in asks:
        affordable = ledger.affords(n)
        booked = sum(ledger.reserve() for _ in range(n))
        assert not affordable or booked == n  # what it said it could afford, it books
        assert ledger.sent <= limit
        if spend is not None and cost is not None:
            assert ledger.spent <= spend + 1e-12


async def test_a_429_stops_the_ladder_at_once(start_sim: StartSim) -> None:
    """Chutes-style: at capacity the gateway answers 429 (no Retry-After). The ladder stops in
    the step that met it: no stream sends another request and no higher step is tried."""
    # a 0.3 s prefill: the 8 requests of a wave overlap even if the client sends them late
    slow_start = QUICK.with_overrides(ttft_s=0.3)
    net = await start_sim(slow_start, nodes=1, slots_per_node=4, queue_per_node=0,
                          busy_status=429)
    ladder = await climb(net, StepCriteria(availability=0.99), ladder=(1, 2, 4, 8, 16),
                         per_stream=2)
    assert ladder.stopped is Stop.RATE_LIMITED and ladder.sustained == 4
    assert [s.streams for s in ladder.steps] == [1, 2, 4, 8]
    last = ladder.steps[-1]
    assert last.held is None  # cut short: not judged
    assert last.outcomes == {"ok": 4, "rate_limited": 4}
    assert net.sim.requests == 2 * (1 + 2 + 4) + 8 == ladder.requests


async def test_retry_after_is_kept(start_sim: StartSim) -> None:
    net = await start_sim(FAST, p_rate_limit=1.0, retry_after_s=7)
    ladder = await climb(net, per_stream=3)
    assert ladder.stopped is Stop.RATE_LIMITED and ladder.retry_after_s == 7
    assert ladder.sustained is None and ladder.requests == 1 == net.sim.requests
    assert "Retry-After 7 s" in ladder.detail


async def test_a_refused_key_stops_the_ladder_without_judging_the_network(
        start_sim: StartSim, monkeypatch: pytest.MonkeyPatch) -> None:
    net = await start_sim(FAST, api_key="sk-right")
    monkeypatch.setenv("CAP_KEY", "sk-wrong")
    wrong = dataclasses.replace(target(net), api_key_env="CAP_KEY")
    ladder = await run_ladder(wrong, JOB, settings(per_stream=2), CRITERIA)
    assert ladder.stopped is Stop.ACCOUNT and ladder.sustained is None
    assert ladder.requests == 1 and "auth_error" in ladder.detail


# -- the reference network's capacity model -------------------------------------------------

async def _chat(session: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    """(status, seconds to the first content chunk, -1 if none) of one streamed chat."""
    body = {"model": "m", "stream": True, "max_tokens": 20,
            "messages": [{"role": "user", "content": "count"}]}
    sent = time.perf_counter()
    async with session.post(url + "/chat/completions", json=body) as resp:
        first = None
        async for line in resp.content:
            if first is None and b'"content":"' in line and b'"content":""' not in line:
                first = time.perf_counter() - sent
        return resp.status, first or -1.0


async def test_requests_beyond_the_slots_queue_then_are_refused(start_sim: StartSim) -> None:
    """2 nodes x 1 slot, 1 waiting a node: of 6 requests at once 2 start, 2 wait one whole
    generation (their TTFT grows by it, as the ground truth records), 2 are refused."""
    net = await start_sim(FAST, nodes=2, slots_per_node=1, queue_per_node=1)
    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(*(_chat(session, net.base_url) for _ in range(6)))
    statuses = sorted(a[0] for a in answers)
    assert statuses == [200, 200, 200, 200, 503, 503]
    ttfts = sorted(a[1] for a in answers if a[0] == 200)
    assert ttfts[1] < 0.2 < 0.38 < ttfts[2]  # the two that waited: about 0.4 s more
    queued = sorted(t.queued_s or 0 for t in net.sim.truth.values() if t.fault != "busy")
    assert queued[1] < 0.05 and queued[2] > 0.35
    assert [t.fault for t in net.sim.truth.values()].count("busy") == 2


async def test_a_waiting_client_that_goes_away_leaves_the_line_as_it_was() -> None:
    """A client waiting for a slot goes away (the monitor stopping) and a slot frees before
    its handler runs: the line forgets it once, no error, and the slot is free again."""
    slots = Slots(capacity=1, queue_limit=4)
    assert await slots.acquire()
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)  # in line
    waiting.cancel()  # the client went away ...
    slots.release()  # ... and the slot freed before its handler ran
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (slots.busy, list(slots.waiting)) == (0, [])
    assert await slots.acquire()  # the next request starts at once

async def test_the_busy_answers_are_the_gateways(start_sim: StartSim) -> None:
    """503 in OpenAI's error shape; 429 as Chutes sends it: FastAPI's {"detail": ...}."""
    for status, expect in ((503, {"error": {"message": "No instances available",
                                            "type": "service_unavailable", "param": None,
                                            "code": None}}),
                           (429, {"detail": "Infrastructure is at maximum capacity, try again "
                                            "later"})):
        net = await start_sim(FAST, nodes=1, slots_per_node=1, busy_status=status)
        async with aiohttp.ClientSession() as session:
            first = asyncio.create_task(_chat(session, net.base_url))
            await asyncio.sleep(0.1)
            async with session.post(net.base_url + "/chat/completions", json={
                    "model": "m", "stream": True, "max_tokens": 5,
                    "messages": [{"role": "user", "content": "x"}]}) as resp:
                assert resp.status == status
                assert await resp.json() == expect
                assert "Retry-After" not in resp.headers
            assert (await first)[0] == 200


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=8, unique=True))
def test_a_ladder_written_as_text_reads_back(steps: list[int]) -> None:
    ladder = tuple(sorted(steps))
    assert parse_ladder(",".join(map(str, ladder))) == ladder
    assert parse_ladder(" , ".join(map(str, ladder))) == ladder


@given(st.text(max_size=30))
def test_any_text_is_a_ladder_or_one_clear_error(text: str) -> None:
    try:
        ladder = parse_ladder(text)
    except ValueError as exc:
        assert "e.g. 1,4,16,64" in str(exc)
    else:
        assert ladder and ladder[0] >= 1 and list(ladder) == sorted(set(ladder))


async def test_an_ollama_node_is_climbed_like_a_gateway(start_sim: StartSim) -> None:
    """Ollama has capacity of its own: OLLAMA_NUM_PARALLEL slots, OLLAMA_MAX_QUEUE waiting, then
    503 "server busy, please try again.  maximum pending requests exceeded"."""
    net = await start_sim(QUICK, nodes=1, slots_per_node=2, queue_per_node=0)
    node = dataclasses.replace(target(net), kind="ollama", base_url=net.url)
    ladder = await run_ladder(node, JOB, settings((1, 2, 4)), CRITERIA)
    assert ladder.stopped is Stop.KNEE and (ladder.sustained, ladder.knee) == (2, 4)
    refused = [r for r in ladder.steps[-1].results if not r.ok]
    assert len(refused) == 2 and all(r.http_status == 503 for r in refused)
    assert "maximum pending requests exceeded" in refused[0].error
