"""The monitor's composition root cleans up: whichever component fails as `monitor()` starts
(or the run itself), no thread, helper process, task, socket or signal handler is left behind;
and the process-wide tuning of `run` and `demo` is undone when they return."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import load_config
from monitor.runtime import agent, collector, transports
from monitor.runtime.loopwatch import LoopWatch
from monitor.runtime.scheduler import Scheduler
from monitor.runtime.tuning import tuned_process
from monitor.storage.store import Store


class Boom(Exception):
    pass


def boom(*_: object, **__: object) -> Any:
    raise Boom("this component failed")


async def boom_async(*_: object, **__: object) -> Any:
    raise Boom("this component failed")


# Each component of monitor(), failing in turn: (name, how to make it fail).
FAILURES: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "metrics sink": lambda mp: mp.setattr(agent, "metrics_sink", boom),
    "capacity ladders": lambda mp: mp.setattr(agent, "capacity_scheduler", boom),
    "scheduler": lambda mp: mp.setattr(agent, "Scheduler", boom),
    "SLA figures": lambda mp: mp.setattr(agent, "SLACollector", boom),
    "web server": lambda mp: mp.setattr(agent, "start_server", boom_async),
    "loop watch": lambda mp: mp.setattr(LoopWatch, "start", boom),
    "catalog watch": lambda mp: mp.setattr(agent.catalog_watch, "start", boom),
    "on_ready": lambda mp: None,  # the caller's callback raises, once everything is up
    "the run": lambda mp: mp.setattr(Scheduler, "run", boom_async),
}


def children() -> int:
    """Processes whose parent is this one."""
    me, count = str(os.getpid()), 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        count += stat.rsplit(")", 1)[1].split()[1] == me
    return count


def sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count


def threads() -> list[str]:
    """Live threads but the event loop's own executor (it belongs to the loop)."""
    return sorted(t.name for t in threading.enumerate() if not t.name.startswith("asyncio_"))


def tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


def write_config(tmp: Path) -> str:
    doc = {"location": "lab", "networks": [
        {"name": "down", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
         "models": {"small": "m"}, "jobs": ["chat-short-v1"], "interval": "1s",
         "sla": "enterprise"}]}
    (tmp / "monitor.yaml").write_text(yaml.safe_dump(doc))
    return str(tmp / "monitor.yaml")


@pytest.mark.parametrize("failing", list(FAILURES))
async def test_a_component_failing_at_start_leaves_nothing_behind(
        failing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(write_config(tmp_path))
    store = Store(str(tmp_path / "r.db"))
    await asyncio.to_thread(store.flush)  # the loop's executor thread, there before and after
    before = (threads(), children(), sockets(), tasks())
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    FAILURES[failing](monkeypatch)

    def ready(scheduler: Scheduler, port: int | None) -> None:
        if failing == "on_ready":
            boom()

    try:
        with tuned_process(), pytest.raises(Boom):  # tuned: the collector's clock runs too
            await asyncio.wait_for(monitor_once(config, store, ready), 20)
        after = (threads(), children(), sockets(), tasks())
    finally:
        store.close()
    assert after == before
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


async def monitor_once(config: Any, store: Store,
                       ready: Callable[[Scheduler, int | None], None]) -> None:
    await agent.monitor(config, store, listen="127.0.0.1:0", on_ready=ready, grace_s=0.5,
                        duration_s=30)


def test_the_process_tuning_is_undone_on_the_way_out() -> None:
    settings = (gc.get_threshold(), sys.getswitchinterval(), gc.get_freeze_count(),
                resource.getrlimit(resource.RLIMIT_NOFILE),
                transports.closed_transports_released())
    with tuned_process():
        assert collector.tuned()
        assert sys.getswitchinterval() < settings[1]
        assert gc.get_freeze_count() > 0
        assert transports.closed_transports_released() or sys.version_info >= (3, 12)
    assert (gc.get_threshold(), sys.getswitchinterval(), gc.get_freeze_count(),
            resource.getrlimit(resource.RLIMIT_NOFILE),
            transports.closed_transports_released()) == settings
