"""Shared fixtures: reference networks on 127.0.0.1, always stopped."""

from __future__ import annotations

import dataclasses
import gc
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from monitor.core.jobs import Job, get_job
from monitor.simulator.app import RunningNetwork, start_network
from monitor.simulator.profiles import PROFILES, FaultProfile

# A fast, steady network: constant 50 ms to first token, 200 tokens/s, no faults.
STEADY = FaultProfile(name="test-steady", ttft_s=0.05, ttft_sigma=0.0, tokens_per_s=200.0,
                      decode_sigma=0.0)

StartSim = Callable[..., Awaitable[RunningNetwork]]


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """Start reference networks: `await start_sim(p_eof=1.0)` overrides fields of STEADY,
    `await start_sim("depin-flaky")` uses a built-in profile."""
    started: list[RunningNetwork] = []

    async def start(base: str | FaultProfile = STEADY, seed: int = 0, **overrides: object
                    ) -> RunningNetwork:
        profile = PROFILES[base] if isinstance(base, str) else base
        net = await start_network(profile.with_overrides(**overrides), seed=seed)
        started.append(net)
        return net

    yield start
    for net in started:
        await net.stop()


@pytest.fixture
def no_collection_pauses() -> Iterator[None]:
    """For tests that time a loopback server and a probe in this one process: a garbage
    collection mid-stream (the suite's heap is large by then) delays one side's stamp and not
    the other's, a pause no real pair of processes shares. The timed part runs without it."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def quick_job(name: str = "chat-short-v1", **changes: object) -> Job:
    """A standard job with test-sized deadlines."""
    return dataclasses.replace(get_job(name), **changes)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A `timing` test compares what the probe measured with the reference network's ground
    truth, both in this one process, within milliseconds. On a 2-core machine that other work
    shares, one unlucky preemption moves one side's stamp and not the other's: such a test is
    re-run up to twice. A real regression (a wrong clock or first-token rule) fails every run."""
    for item in items:
        if item.get_closest_marker("timing"):
            item.add_marker(pytest.mark.flaky(reruns=2, reruns_delay=1))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (`DEPIN_MONITOR_CI=1`, set by .ci/run) a skipped test is a failed run: the e2e,
    promtool, browser and peer-server tests skip on a developer's machine without their tools,
    but CI installs every tool, so a skip there means a test that silently stopped running."""
    if os.environ.get("DEPIN_MONITOR_CI") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        names = ", ".join(sorted({r.nodeid for r in skipped})[:10])
        print(f"\nci: {len(skipped)} test(s) skipped, which CI does not allow: {names}",
              file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
