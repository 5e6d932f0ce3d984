"""Capacity: how many concurrent streams and parsed tokens/s the monitor as shipped sustains on
one core with its event loop's lag p99 under 10 ms, and where it breaks.

How: `depin-monitor run` (benchmarks/shipped.py: scheduler, store, /metrics, its GC) is pinned
to core 0, with enough networks (one config-defined job of --tokens tokens each, an interval
1.25x one run's length) to keep a step's streams in flight. The tokens come from
benchmarks/firehose.py in a child process pinned to core 1: the reference simulator's exact
SSE chunks at a set per-stream token rate, one token per socket write (`burst 1`, like a
server's decode step) unless a step asks for more, streams spread evenly in time. Each step
(STREAMSxTOKENS_PER_S_PER_STREAMxBURST) warms up for one interval, then measures --window s:

- parsed tokens/s: output tokens of the runs started in the window / window (steady state),
  against the tokens/s asked: streams in flight (mean, from the stored runs) x rate;
- event-loop lag p50/p99: the monitor's own lag histogram (its LoopWatch wakes every 100 ms;
  the figure is the upper bound of the bucket holding the quantile);
- the monitor's CPU share of its core and CPU per token, the source's CPU, runs ok / failed,
  and the monitor's RSS.

A step "holds" when every run is ok, lag p99 <= 10 ms and the tokens delivered match the rate
asked for (within 5 %). The default ramp raises the token rate at 1,000 streams until it
breaks, then tries fewer faster streams, more streams, and 4-token reads.

    python benchmarks/capacity.py                  # ramp, ~4 min
    python benchmarks/capacity.py --quick          # smoke: 2 tiny steps, seconds
    python benchmarks/capacity.py --steps 1000x50x1,1000x50x4 --window 20
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import subprocess
import sys
import time

import accuracy
import common
import shipped

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_STEPS = ("1000x2x1,1000x5x1,1000x10x1,1000x25x1,1000x50x1,1000x75x1,250x100x1,"
                 "2000x10x1,1000x50x4")


@dataclasses.dataclass
class Step:
    streams: int
    rate: float  # tokens/s per stream asked of the source
    burst: int  # tokens per socket write
    in_flight: float = 0.0
    tokens_per_s: float = 0.0
    ok: int = 0
    failed: int = 0
    lag_p50: float = 0.0
    lag_p99: float = 0.0
    cpu: float = 0.0  # share of the monitor's core
    cpu_per_token_us: float = 0.0
    source_cpu: float = 0.0
    rss_mb: float = 0.0
    failures: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def asked(self) -> float:
        """Tokens/s the streams in flight were sent (the scheduler keeps about `streams`)."""
        return self.in_flight * self.rate

    @property
    def holds(self) -> bool:
        return (self.failed == 0 and self.lag_p99 <= 0.010
                and self.tokens_per_s >= 0.95 * self.asked)


@dataclasses.dataclass
class Source:
    proc: subprocess.Popen[str]
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


def run_step(step: Step, args: argparse.Namespace) -> Step:
    src = start_firehose(step.rate, step.burst, args.slots)
    run_s = args.tokens / step.rate
    interval = 1.25 * run_s
    schedules = math.ceil(step.streams * interval / run_s)
    nets = [shipped.Net(f"fh-{i:04d}", src.base_url, jobs=[accuracy.JOB], interval_s=interval)
            for i in range(schedules)]
    config = shipped.config_yaml(nets, port=common.free_port(), concurrency=schedules + 10,
                                 jobs=[accuracy.bench_job(args.tokens)])
    mon = shipped.Monitor.start(config, cores=[0], gc=args.gc, threads=args.threads)
    try:
        mon.wait_ready()
        shipped.wait_for(interval + args.warmup)
        _, first = mon.scrape()
        since, t0 = time.time(), time.perf_counter()
        cpu0, src0 = mon.cpu_s(), common.proc_cpu_s(src.proc.pid)
        shipped.wait_for(args.window)
        wall = time.perf_counter() - t0
        until = time.time()
        cpu1, src1 = mon.cpu_s(), common.proc_cpu_s(src.proc.pid)
        _, last = mon.scrape()
        step.rss_mb = mon.rss_mb()
        # the runs started in the window finish before the stop: a run longer than the
        # stop's grace period would be cancelled, and never stored
        shipped.wait_for(run_s + 1.0)
        mon.stop()
        every = mon.rows()
        rows = [r for r in every if since <= r["started_at"] < until]
    finally:
        mon.cleanup()
        src.stop()
    # the runs started in the window, each complete (in a steady state as many tokens as
    # were parsed in the window)
    tokens = sum(r["output_tokens"] or 0 for r in rows)
    step.ok = sum(1 for r in rows if r["outcome"] == "ok")
    step.failed = len(rows) - step.ok
    for r in rows:
        if r["outcome"] != "ok":
            key = f"{r['outcome']}: {(r['error'] or '')[:50]}"
            step.failures[key] = step.failures.get(key, 0) + 1
    step.in_flight = shipped.in_flight(every, since, until)[0]  # started before it too
    step.tokens_per_s = tokens / wall
    lag = "depin_monitor_event_loop_lag_seconds"
    step.lag_p50 = shipped.histogram_delta_quantile(first, last, lag, 0.5)
    step.lag_p99 = shipped.histogram_delta_quantile(first, last, lag, 0.99)
    step.cpu = (cpu1 - cpu0) / wall
    step.cpu_per_token_us = (cpu1 - cpu0) / tokens * 1e6 if tokens else float("nan")
    step.source_cpu = (src1 - src0) / wall
    return step


def report(steps: list[Step]) -> str:
    rows = [[s.streams, f"{s.in_flight:.0f}", f"{s.rate:g}", s.burst, f"{s.asked:,.0f}",
             f"{s.tokens_per_s:,.0f}", f"{s.ok}/{s.ok + s.failed}", common.ms(s.lag_p50),
             common.ms(s.lag_p99), f"{s.cpu * 100:.0f}%", f"{s.cpu_per_token_us:.1f}",
             f"{s.source_cpu * 100:.0f}%", f"{s.rss_mb:.0f}", "yes" if s.holds else "NO"]
            for s in steps]
    return common.table(
        ["streams", "in flight", "tok/s/stream", "burst", "asked tok/s", "parsed tok/s",
         "ok/runs", "lag p50 ms (<=)", "lag p99 ms (<=)", "monitor CPU", "CPU us/token",
         "source CPU", "RSS MB", "holds"], rows)


def parse_steps(text: str) -> list[Step]:
    out = []
    for part in text.split(","):
        n, rate, *burst = part.split("x")
        out.append(Step(int(n), float(rate), int(burst[0]) if burst else 1))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default=DEFAULT_STEPS,
                   help="STREAMSxTOKENS_PER_S[xBURST],... (default: %(default)s)")
    p.add_argument("--tokens", type=int, default=64, help="output tokens per run")
    p.add_argument("--warmup", type=float, default=2.0, help="s after the first interval")
    p.add_argument("--window", type=float, default=10.0, help="measured s per step")
    p.add_argument("--gc", choices=("shipped", "default"), default="shipped",
                   help="the monitor's garbage collector: as `run` tunes it, or Python's default")
    p.add_argument("--threads", choices=("shipped", "default"), default="shipped",
                   help="the monitor's thread switch interval: as `run` sets it (0.5 ms), or "
                        "CPython's default (5 ms)")
    p.add_argument("--slots", type=int, default=None,
                   help="source phases (default: streams spread evenly; 1: all at once)")
    p.add_argument("--quick", action="store_true", help="smoke run: two tiny steps")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.tokens, args.warmup, args.window = "10x100x1,20x100x4", 32, 0.2, 1.5
    common.pin([1])
    print(f"# capacity: {common.machine()}")
    print(f"# `depin-monitor run` on core 0 (gc={args.gc}, threads={args.threads}), source and "
          f"this harness on core 1; "
          f"max_tokens={args.tokens}; window {args.window:g}s; command: "
          f"{' '.join(['python', *sys.argv])}")
    steps = []
    for step in parse_steps(args.steps):
        run_step(step, args)
        print(f"  {step.streams}x{step.rate:g}x{step.burst}: {step.tokens_per_s:,.0f} tok/s, "
              f"lag p99 <= {common.ms(step.lag_p99)} ms, {step.failures or 'all ok'}",
              file=sys.stderr, flush=True)
        steps.append(step)
    print(report(steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
