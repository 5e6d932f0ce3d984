"""Accuracy: how far the `openai` probe's TTFT and decode rate are from the simulator's truth.

How: for each concurrency level (default 1, 100, 500, 1000 streams) a fresh reference network
runs as `depin-monitor simulate` in its own process pinned to the other core, so its CPU never
distorts the prober; this process (pinned to one core) runs `probes.openai.run` through one
`SessionPool` with that many streams in flight (starts spread over a short ramp, as the
scheduler spreads them). After the runs (never during) it fetches each request's ground truth
from GET /sim/truth/{x-request-id} and reports, per level:

- TTFT error = measured ttft_s - truth ttft_s (both: request -> first content token), median
  and p99, split into its two legs on the shared CLOCK_MONOTONIC:
  request leg  = simulator `received` - prober request-sent stamp (reaching the handler),
  response leg = prober first-token stamp - simulator first-token write;
- decode error = |measured tokens/s - truth tokens/s| / truth, median and p99, for each
  chunking the simulator plays (`--chunking 1,4,1-8`: one token a chunk, four, a seeded 1 to 8),
  beside the error the old formula (n - 1) / (t_last - t_first) makes on the same truth (the
  simulator's own write stamps, so it is the formula's error alone, not the probe's timing);
- the prober's event-loop lag p99 and CPU, and the simulator's CPU (a simulator near 100 % of
  its core is itself the bottleneck, and then the error is its queueing, not the probe's).

The per-stream decode rate is capped so that all streams together ask for at most --budget
tokens/s (one simulator process cannot emit more; see RESULTS.md).

    python benchmarks/accuracy.py             # 1, 100, 500, 1000 streams (~2 min)
    python benchmarks/accuracy.py --quick     # smoke: 1 and 10 streams, a few seconds
    python benchmarks/accuracy.py --levels 1,2000 --samples 4000 --budget 8000
    python benchmarks/accuracy.py --levels 1,100 --chunking 1,4,1-8   # decode vs chunk size
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time

import common

from monitor.core.jobs import get_job
from monitor.core.result import Outcome
from monitor.core.target import Target
from probes import openai as openai_probe
from probes.session import SessionPool

JOB = "chat-long-v1"  # ~1k-token prompt, counting answer: every content delta is a token


@dataclasses.dataclass
class Level:
    streams: int
    chunking: str  # the simulator's tokens_per_chunk
    runs: int
    ok: int
    ttft_err: list[float]
    req_leg: list[float]
    resp_leg: list[float]
    decode_err: list[float]
    old_formula_err: list[float]  # (n - 1) / span on the truth's own stamps
    lag_p99: float
    prober_cpu: float  # share of one core
    sim_cpu: float  # share of one core
    per_stream_tps: float
    wall_s: float
    failures: dict[str, int]


async def run_level(streams: int, chunking: str, args: argparse.Namespace) -> Level:
    tps = min(args.tokens_per_s, args.budget / streams)
    sim = common.start_sim("datacenter", seed=streams, cores=[1], gc_mode=args.sim_gc,
                           tokens_per_chunk=chunking,
                           **common.steady_profile(ttft_s=args.ttft, tokens_per_s=tps))
    try:
        job = dataclasses.replace(get_job(JOB), max_tokens=args.tokens, deadline_s=120.0,
                                  stall_s=60.0)
        target = Target(network="sim", name="bench", kind="openai", base_url=sim.base_url,
                        model="sim-llama-3.1-8b-instruct", concurrency=streams)
        per_worker = 1 if streams > 1 and args.samples <= streams else (
            min(args.runs_1, args.samples) if streams == 1 else -(-args.samples // streams))
        pool = SessionPool()
        session = pool.for_target(target, concurrency=streams)
        stamped: list[tuple[object, float]] = []  # (result, perf_counter right after return)
        rng = random.Random(streams)
        # Spread starts over one run's length: arrivals are uniform, as a scheduler spreads
        # them, instead of every stream opening in the same instant.
        ramp = 0.0 if streams == 1 else (
            args.ramp if args.ramp is not None else args.ttft + args.tokens / tps)

        async def worker() -> None:
            await asyncio.sleep(rng.random() * ramp)
            for _ in range(per_worker):
                r = await openai_probe.run(target, job, session)
                stamped.append((r, time.perf_counter()))

        lag = common.LagSampler().start()
        cpu0, sim0, t0 = common.proc_cpu_s(), sim.cpu_s(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(streams)))
        wall = time.perf_counter() - t0
        cpu1, sim1 = common.proc_cpu_s(), sim.cpu_s()
        await lag.stop()
        await pool.close()

        ids = [r.details.get("request_id") for r, _ in stamped if r.details.get("request_id")]
        truths = await common.fetch_truths(sim.url, ids)
    finally:
        sim.stop()

    ttft_err, req_leg, resp_leg, decode_err, old_err = [], [], [], [], []
    ok = 0
    failures: dict[str, int] = {}
    for r, after in stamped:
        if r.outcome is not Outcome.OK:
            failures[f"{r.outcome.value}: {r.error[:60]}"] = failures.get(
                f"{r.outcome.value}: {r.error[:60]}", 0) + 1
            continue
        ok += 1
        t = truths.get(r.details["request_id"])
        if not t or t["ttft_s"] is None or r.ttft_s is None:
            continue
        sent = after - r.duration_s  # the request-sent stamp, to within microseconds
        ttft_err.append(r.ttft_s - t["ttft_s"])
        req_leg.append(t["received"] - sent)
        resp_leg.append(sent + r.ttft_s - t["first_token"])
        if r.tokens_per_s and t["tokens_per_s"]:
            decode_err.append(abs(r.tokens_per_s - t["tokens_per_s"]) / t["tokens_per_s"])
            old = (t["tokens"] - 1) / (t["last_token"] - t["first_token"])
            old_err.append(abs(old - t["tokens_per_s"]) / t["tokens_per_s"])
    return Level(streams, chunking, len(stamped), ok, ttft_err, req_leg, resp_leg, decode_err,
                 old_err, lag.p(0.99), (cpu1 - cpu0) / wall, (sim1 - sim0) / wall, tps, wall,
                 failures)


def report(levels: list[Level]) -> str:
    q = common.quantile
    rows = []
    for lv in levels:
        rows.append([
            lv.streams, lv.chunking, f"{lv.ok}/{lv.runs}", f"{lv.per_stream_tps:.0f}",
            common.ms(q(lv.ttft_err, 0.5)), common.ms(q(lv.ttft_err, 0.99)),
            common.ms(q(lv.req_leg, 0.5)) + " / " + common.ms(q(lv.req_leg, 0.99)),
            common.ms(q(lv.resp_leg, 0.5)) + " / " + common.ms(q(lv.resp_leg, 0.99)),
            f"{q(lv.decode_err, 0.5) * 100:.3f}", f"{q(lv.decode_err, 0.99) * 100:.3f}",
            f"{q(lv.old_formula_err, 0.5) * 100:.2f}",
            common.ms(lv.lag_p99), f"{lv.prober_cpu * 100:.0f}%", f"{lv.sim_cpu * 100:.0f}%",
        ])
    return common.table(
        ["streams", "tok/chunk", "ok/runs", "tok/s/stream", "TTFT err p50 ms",
         "TTFT err p99 ms", "req leg p50/p99 ms", "resp leg p50/p99 ms", "decode err p50 %",
         "decode err p99 %", "(n-1) formula err p50 %",
         "loop lag p99 ms", "prober CPU", "sim CPU"], rows)


async def main_async(args: argparse.Namespace) -> list[Level]:
    out = []
    for chunking in args.chunking:
        for n in args.levels:
            lv = await run_level(n, chunking, args)
            print(f"  {n} streams, {chunking} tok/chunk: {lv.ok}/{lv.runs} ok in "
                  f"{lv.wall_s:.1f}s {lv.failures}", file=sys.stderr, flush=True)
            out.append(lv)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="1,100,500,1000",
                   help="concurrent streams per level, comma-separated")
    p.add_argument("--samples", type=int, default=300,
                   help="runs per level at least (each stream runs ceil(samples/streams))")
    p.add_argument("--runs-1", type=int, default=60, help="runs at 1 stream (sequential)")
    p.add_argument("--tokens", type=int, default=64, help="output tokens per run")
    p.add_argument("--tokens-per-s", type=float, default=100.0,
                   help="median decode rate per stream (capped by --budget)")
    p.add_argument("--budget", type=float, default=10000.0,
                   help="all streams together ask at most this many tokens/s")
    p.add_argument("--ttft", type=float, default=0.05, help="median simulated TTFT (s)")
    p.add_argument("--ramp", type=float, default=None,
                   help="spread stream starts over S s (default: one run's length)")
    p.add_argument("--gc", choices=("default", "tuned"), default="default",
                   help="garbage collector: as Python starts, or frozen + raised thresholds")
    p.add_argument("--sim-gc", choices=("default", "tuned"), default="default",
                   help="the simulator's garbage collector (tuned: as --gc tuned)")
    p.add_argument("--chunking", default="1",
                   help="the simulator's tokens per chunk, comma-separated: N or A-B (seeded "
                        "per chunk), e.g. 1,4,1-8")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 and 10 streams, 1 and 4 tokens a chunk")
    args = p.parse_args(argv)
    if args.quick:
        args.levels, args.samples, args.runs_1, args.tokens, args.ramp = "1,10", 10, 5, 12, 0.1
        args.chunking = "1,4"
    args.levels = [int(x) for x in str(args.levels).split(",")]
    args.chunking = [c.strip() for c in str(args.chunking).split(",") if c.strip()]
    cores = common.pin([0])
    common.tune_gc(args.gc)
    print(f"# accuracy: {common.machine()}")
    print(f"# prober pinned to cores {sorted(cores)}, simulator to core 1; job {JOB} "
          f"max_tokens={args.tokens}, median TTFT {args.ttft * 1e3:.0f} ms, budget "
          f"{args.budget:.0f} tok/s; gc={args.gc}; sim gc={args.sim_gc}; command: "
          f"{' '.join(['python', *sys.argv])}")
    levels = asyncio.run(main_async(args))
    print(report(levels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
