"""A stand-in for `depin-monitor run` used by the e2e test until the run command exists.

It wires the same pieces the run command does (probe kinds -> MetricsSink -> start_server) in
the simplest loop: every network's job once per interval. Usage:

    python -m tests.e2e_monitor NETWORKS_JSON PORT

NETWORKS_JSON: [{"name": ..., "base_url": ..., "model": ..., "interval": seconds}, ...]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time

from monitor.jobs import get_job
from monitor.metrics import MetricsSink
from monitor.server import start_server
from monitor.slaprofile import BUILTIN_PROFILES
from monitor.target import Target
from probes import PROBES
from probes.session import SessionPool


async def main(networks: list[dict], port: int) -> None:
    profile = BUILTIN_PROFILES["enterprise"]
    sink = MetricsSink({n["name"]: profile for n in networks})
    job = get_job("chat-short-v1")
    targets = [Target(network=n["name"], name="small", kind="openai", base_url=n["base_url"],
                      model=n["model"]) for n in networks]
    sink.init_targets((t.network, t.name, job.name) for t in targets)
    runner = await start_server("127.0.0.1", port, registry=sink.registry)
    pool = SessionPool()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def probe_forever(target: Target, interval: float) -> None:
        while not stop.is_set():
            scheduled = time.time()
            sink.run_started()
            try:
                result = await PROBES[target.kind].run(target, job, pool.for_target(target))
            finally:
                sink.run_finished()
            sink.on_result(result.replace(scheduled_at=scheduled))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def watch_loop() -> None:
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.1)
            sink.observe_loop_lag(loop.time() - before - 0.1)

    tasks = [asyncio.create_task(probe_forever(t, n["interval"]))
             for t, n in zip(targets, networks, strict=True)]
    tasks.append(asyncio.create_task(watch_loop()))
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await pool.close()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1]), int(sys.argv[2])))
