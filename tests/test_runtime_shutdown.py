"""Whenever the monitor stops, nothing its runs started outlives them: every task has ended and
every HTTP session is closed, also when the stop lands just as a run closes its sessions, or
one part of a run fails while the others are under way. A user saw the opposite as "Unclosed
client session" on stderr after a two-second demo whose fingerprint discovery ran at 40
streams (the demos of tests/test_cli_width.py and tests/test_demo.py check their output for
it)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.config import parse_config
from monitor.core.target import Target
from monitor.runtime import fingerprint
from monitor.runtime.fingerprint import FingerprintRunner
from probes.firsttoken import FirstToken
from probes.session import SessionPool, TargetSession
from tests.conftest import STEADY, StartSim

MODEL = "sim-llama-3.1-8b-instruct"
SETTINGS = {"candidates_tried": 150, "border_inputs": 10, "reference_samples": 20,
            "samples_per_input": 8, "max_requests": 100, "discovery_max_requests": 700}


class Sessions:
    """Every aiohttp session the probes open while the test runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened: dict[int, aiohttp.ClientSession] = {}
        made = TargetSession.client.fget
        assert made is not None

        def client(session: TargetSession) -> aiohttp.ClientSession:
            opened = made(session)
            self.opened.setdefault(id(opened), opened)
            return opened

        monkeypatch.setattr(TargetSession, "client", property(client))

    def still_open(self) -> list[aiohttp.ClientSession]:
        return [s for s in self.opened.values() if not s.closed]


def runs_tasks() -> set[asyncio.Task[Any]]:
    """Tasks of the monitor's runs and probes (not the reference networks' server tasks)."""
    def ours(task: asyncio.Task[Any]) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        where = Path(code.co_filename).as_posix() if code is not None else ""
        return "/monitor/runtime/" in where or "/probes/" in where
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and ours(t)}


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sessions]:
    yield Sessions(monkeypatch)


def two_networks(url_a: str, url_b: str, **settings: object) -> Any:
    lines = ["networks:",
             f"  - {{name: a, base_url: '{url_a}', model: {MODEL}}}",
             f"  - {{name: b, base_url: '{url_b}', model: {MODEL}}}",
             "fingerprint:",
             *(f"  {k}: {v}" for k, v in settings.items()),
             "  networks: [{network: a}, {network: b}]"]
    return parse_config("\n".join(lines) + "\n")


def targets(config: Any) -> list[Target]:
    return [t for net in config.networks for t in net.targets()]


async def test_sessions_are_closed_when_the_close_itself_is_cancelled(
        sessions: Sessions) -> None:
    """The monitor stops a run (cancels it) just as the run closes its sessions."""
    pool = SessionPool()
    for target in targets(two_networks("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1",
                                        **SETTINGS)):
        assert not pool.for_target(target).client.closed
    closing = asyncio.create_task(pool.close())
    await asyncio.sleep(0)  # the close has begun ...
    closing.cancel()  # ... and the stop lands at once
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert len(sessions.opened) == 2 and sessions.still_open() == []


async def test_a_run_whose_one_part_fails_stops_the_others_before_it_closes_their_sessions(
        start_sim: StartSim, sessions: Sessions, monkeypatch: pytest.MonkeyPatch) -> None:
    """Network a's discovery fails at once (a bug, say) while b's requests are under way at 40
    streams: b's are stopped and waited for, and no request of b opens a session again
    after the run closed them."""
    a, b = await start_sim(STEADY), await start_sim(STEADY, seed=1)
    config = two_networks(a.base_url, b.base_url, **{**SETTINGS, "concurrency": 40})
    real = fingerprint.first_token
    asked = asyncio.Event()

    async def first_token(target: Target, *args: Any, **kwargs: Any) -> FirstToken:
        if target.network == "a":
            await asked.wait()  # b's requests are in flight
            raise RuntimeError("a bug in a's discovery")
        asked.set()
        return await real(target, *args, **kwargs)

    monkeypatch.setattr(fingerprint, "first_token", first_token)
    before = runs_tasks()
    with pytest.raises(RuntimeError, match="a bug"):
        await FingerprintRunner(config).run_once()
    assert runs_tasks() - before == set()  # nothing of b's discovery still running
    assert sessions.opened and sessions.still_open() == []

