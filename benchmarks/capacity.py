"""Capacity: how many concurrent streaming probes and parsed tokens/s one prober core sustains,
with the event loop's lag p99 under 10 ms, and where it breaks.

How: this process is pinned to one core and runs `probes.openai.run` (chat-long-v1, 64
tokens, output check on) in a closed loop on N streams through one SessionPool. The tokens
come from benchmarks/firehose.py in a child process pinned to the other core: the reference
simulator's exact SSE chunks at a set per-stream token rate, one token per socket write
(`--burst 1`, like a server's decode step) unless a step asks for more, streams spread evenly
over time (`--slots 1`: all at once). Each step (STREAMSxTOKENS_PER_S_PER_STREAMxBURST) runs
`--warmup` s plus one run's length, then measures for `--window` s:

- parsed tokens/s: output tokens of the runs completed in the window / window;
- event-loop lag p50/p99/max: a sampler task sleeping 5 ms records how late it wakes;
- prober CPU (share of its one core) and CPU per token (process CPU time / tokens), the
  source's CPU, runs ok / failed, and RSS.

A step "holds" when every run is ok, lag p99 < 10 ms and the tokens delivered match the rate
asked for (within 5 %). The default ramp raises the token rate at 1,000 streams until it
breaks, then tries fewer faster streams, more streams, and 4-token reads.

    python benchmarks/capacity.py                  # ramp, ~3 min
    python benchmarks/capacity.py --quick          # smoke: 2 tiny steps, seconds
    python benchmarks/capacity.py --steps 1000x50x1,1000x50x4 --gc tuned --window 20
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import subprocess
import sys
import time

import common

from monitor.core.jobs import get_job
from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import openai as openai_probe
from probes.session import SessionPool

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_STEPS = ("1000x2x1,1000x5x1,1000x10x1,1000x25x1,1000x50x1,1000x75x1,250x100x1,"
                 "2000x10x1,1000x50x4")


@dataclasses.dataclass
class Step:
    streams: int
    rate: float  # tokens/s per stream asked of the source
    burst: int  # tokens per socket write
    tokens_per_s: float = 0.0
    ok: int = 0
    failed: int = 0
    lag_p50: float = 0.0
    lag_p99: float = 0.0
    lag_max: float = 0.0
    cpu: float = 0.0  # share of the prober's core
    cpu_per_token_us: float = 0.0
    source_cpu: float = 0.0
    rss_mb: float = 0.0
    failures: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def asked(self) -> float:
        return self.streams * self.rate

    @property
    def holds(self) -> bool:
        return (self.failed == 0 and self.lag_p99 < 0.010
                and self.tokens_per_s >= 0.95 * self.asked)


@dataclasses.dataclass
class Source:
    proc: subprocess.Popen
    base_url: str

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start_firehose(rate: float, burst: int, slots: int | None = None) -> Source:
    cmd = ["taskset", "-c", "1", sys.executable, os.path.join(HERE, "firehose.py"),
           "--rate", str(rate), "--burst", str(burst)]
    if slots:
        cmd += ["--slots", str(slots)]
    if (os.cpu_count() or 1) < 2:
        cmd = cmd[3:]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)})
    assert proc.stdout is not None
    m = re.search(r"at (http://\S+/v1)", proc.stdout.readline())
    if not m:
        proc.kill()
        raise RuntimeError("firehose did not start")
    return Source(proc, m.group(1))


async def run_step(step: Step, args: argparse.Namespace) -> Step:
    src = start_firehose(step.rate, step.burst, args.slots)
    job = dataclasses.replace(get_job("chat-long-v1"), max_tokens=args.tokens)
    target = Target(network="bench", name="cap", kind="openai", base_url=src.base_url,
                    model="sim-llama-3.1-8b-instruct", concurrency=step.streams)
    pool = SessionPool()
    session = pool.for_target(target, concurrency=step.streams)
    done: list[tuple[float, object]] = []
    run_s = args.tokens / step.rate

    async def worker(i: int) -> None:
        await asyncio.sleep(run_s * i / step.streams)  # uniform arrivals
        while True:
            r = await openai_probe.run(target, job, session)
            done.append((time.perf_counter(), r))

    tasks = [asyncio.create_task(worker(i)) for i in range(step.streams)]
    try:
        await asyncio.sleep(args.warmup + run_s)
        lag = common.LagSampler().start()
        cpu0, src0, t0 = common.proc_cpu_s(), common.proc_cpu_s(src.proc.pid), time.perf_counter()
        await asyncio.sleep(args.window)
        t1 = time.perf_counter()
        cpu1, src1 = common.proc_cpu_s(), common.proc_cpu_s(src.proc.pid)
        await lag.stop()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pool.close()
        src.stop()
    window = [r for at, r in done if t0 <= at < t1]
    tokens = sum(r.output_tokens or 0 for r in window)
    step.ok = sum(1 for r in window if r.outcome is Outcome.OK)
    step.failed = len(window) - step.ok
    for r in window:
        if r.outcome is not Outcome.OK:
            key = f"{r.outcome.value}: {r.error[:50]}"
            step.failures[key] = step.failures.get(key, 0) + 1
    wall = t1 - t0
    step.tokens_per_s = tokens / wall
    step.lag_p50, step.lag_p99 = lag.p(0.5), lag.p(0.99)
    step.lag_max = lag.max_lag_s
    step.cpu = (cpu1 - cpu0) / wall
    step.cpu_per_token_us = (cpu1 - cpu0) / tokens * 1e6 if tokens else float("nan")
    step.source_cpu = (src1 - src0) / wall
    step.rss_mb = common.rss_mb()
    return step


def report(steps: list[Step]) -> str:
    rows = [[s.streams, f"{s.rate:g}", s.burst, f"{s.asked:,.0f}", f"{s.tokens_per_s:,.0f}",
             f"{s.ok}/{s.ok + s.failed}", common.ms(s.lag_p50), common.ms(s.lag_p99),
             common.ms(s.lag_max), f"{s.cpu * 100:.0f}%", f"{s.cpu_per_token_us:.1f}",
             f"{s.source_cpu * 100:.0f}%", f"{s.rss_mb:.0f}", "yes" if s.holds else "NO"]
            for s in steps]
    return common.table(
        ["streams", "tok/s/stream", "burst", "asked tok/s", "parsed tok/s", "ok/runs",
         "lag p50 ms", "lag p99 ms", "lag max ms", "prober CPU", "CPU us/token",
         "source CPU", "RSS MB", "holds"], rows)


def parse_steps(text: str) -> list[Step]:
    out = []
    for part in text.split(","):
        n, rate, *burst = part.split("x")
        out.append(Step(int(n), float(rate), int(burst[0]) if burst else 1))
    return out


async def main_async(args: argparse.Namespace) -> list[Step]:
    steps = []
    for step in parse_steps(args.steps):
        await run_step(step, args)
        print(f"  {step.streams}x{step.rate:g}x{step.burst}: {step.tokens_per_s:,.0f} tok/s, "
              f"lag p99 {common.ms(step.lag_p99)} ms, {step.failures or 'all ok'}",
              file=sys.stderr, flush=True)
        steps.append(step)
    return steps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default=DEFAULT_STEPS,
                   help="STREAMSxTOKENS_PER_S[xBURST],... (default: %(default)s)")
    p.add_argument("--tokens", type=int, default=64, help="output tokens per run")
    p.add_argument("--warmup", type=float, default=2.0, help="s after the first runs end")
    p.add_argument("--window", type=float, default=8.0, help="measured s per step")
    p.add_argument("--gc", choices=("default", "tuned"), default="default",
                   help="garbage collector: as Python starts, or frozen + raised thresholds")
    p.add_argument("--slots", type=int, default=None,
                   help="source phases (default: streams spread evenly; 1: all at once)")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                   help="event loop of the prober (uvloop: `pip install uvloop`)")
    p.add_argument("--quick", action="store_true", help="smoke run: two tiny steps")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.tokens, args.warmup, args.window = "10x100x1,20x100x4", 32, 0.2, 1.0
    cores = common.pin([0])
    common.tune_gc(args.gc)
    print(f"# capacity: {common.machine()}")
    print(f"# prober on cores {sorted(cores)} (one core), source on core 1; chat-long-v1 "
          f"max_tokens={args.tokens}; gc={args.gc}; loop={args.loop}; window "
          f"{args.window:g}s; command: {' '.join(['python', *sys.argv])}")
    if args.loop == "uvloop":
        import uvloop

        steps = uvloop.run(main_async(args))
    else:
        steps = asyncio.run(main_async(args))
    print(report(steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
