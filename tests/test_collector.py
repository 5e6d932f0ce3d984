"""Closed connections do not pile up in a monitor whose garbage collector is tuned for timing:
they are freed as they close (monitor.runtime.transports, on Python 3.11), whatever the
collector does; the collector also runs on a clock (monitor.runtime.collector) and still
collects the older generations."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from monitor.runtime import collector
from monitor.runtime.transports import release_closed_transports, unrelease_closed_transports
from tests.probes.capture import capture_server

RUNS = 300


@pytest.fixture
def tuned_gc() -> Iterator[None]:
    """The collector as `run` tunes it, restored afterwards."""
    was = gc.get_threshold()
    collector.tune()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*was)
        gc.collect()


def closed_transports() -> int:
    """Socket transports of this process whose connection is closed but which still exist."""
    return sum(1 for o in gc.get_objects()
               if type(o).__name__ == "_SelectorSocketTransport" and o.is_closing())


async def failed_runs(n: int) -> None:
    """`n` requests to a server on 127.0.0.1 that answers and closes each connection, as a
    flapping or resetting network does."""
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="ok", headers={"Connection": "close"})

    async with capture_server({("GET", "/"): answer}) as server, \
            aiohttp.ClientSession() as client:
        for _ in range(n):
            async with client.get(f"{server.url}/") as response:
                assert await response.text() == "ok"
    await asyncio.sleep(0)  # the last connection_lost callbacks


@pytest.fixture
def python_as_released() -> Iterator[None]:
    """Python's own transports, without the monitor's release of closed ones."""
    released = release_closed_transports()
    unrelease_closed_transports()
    try:
        yield
    finally:
        if released:
            release_closed_transports()


def test_closed_connections_are_freed_as_they_close_without_any_collection(
        tuned_gc: None) -> None:
    release_closed_transports()  # Python 3.12 and later free them already
    gc.disable()  # no automatic collection either: only reference counting frees them
    try:
        asyncio.run(failed_runs(RUNS))
        assert closed_transports() == 0
    finally:
        gc.enable()


def test_closed_connections_wait_for_the_collector_and_a_clocked_collection_frees_them(
        tuned_gc: None, python_as_released: None) -> None:
    asyncio.run(failed_runs(RUNS))
    # Under the tuned thresholds nothing collected them: each closed transport keeps itself
    # alive (Python < 3.12), so the clock is what frees them. On a Python that frees them by
    # reference counting this count is 0 and the test says so.
    piled = closed_transports()
    assert piled >= RUNS, f"only {piled} closed transports left: does this Python free them?"
    collector.collect_due()
    assert closed_transports() == 0


def test_the_clock_collects_the_older_generations_as_their_thresholds_say() -> None:
    was = gc.get_threshold()
    seen: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.collect()  # every count at 0
    gc.set_threshold(1_000_000, 2, 1)
    gc.callbacks.append(record)
    try:
        chosen = [collector.collect_due() for _ in range(9)]
    finally:
        gc.callbacks.remove(record)
        gc.set_threshold(*was)
    # young x3, then generation 1 (its count, 3, passed 2), young x3, generation 1 again,
    # and then the count of generation-1 collections (2) has passed 1: a full collection
    assert chosen == [0, 0, 0, 1, 0, 0, 0, 1, 2]
    assert seen == chosen
