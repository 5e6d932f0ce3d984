"""Accuracy of the monitor as shipped: how far the TTFT and decode rate that `depin-monitor run`
stores are from what the reference network really did, at 1 to 1,000 concurrent streams.

How: for each level a reference network runs as `depin-monitor simulate` in its own process
pinned to core 1 (fault-free; TTFT lognormal, median --ttft; decode rate capped so that all
streams together ask at most --budget tokens/s: one simulator process cannot emit more); the
monitor runs as `depin-monitor run -c CONFIG --db FILE` pinned to core 0, as shipped: its
scheduler, store writer, /metrics exporter and garbage-collector settings (`--gc default`: the
same without its collector tuning). The config has enough networks (one job each, the
`enterprise` SLA, an interval 1.25x one run's length) to keep the level's streams in flight;
/metrics is scraped in OpenMetrics every --scrape-every s, as Prometheus does. After a warm-up
of one interval, runs are measured for a window; then the monitor is stopped (SIGTERM), the
runs it stored are read back, and each request's ground truth is fetched from the simulator
(GET /sim/truth/{x-request-id}; never during the runs). Per level:

- TTFT error = stored ttft_s - truth ttft_s (both: request -> first content token), p50/p99;
  "before handler" = simulator `received` - the run's start (its started_at on the shared
  clocks): the prober's pre-send time, loopback, and the simulator's wait before its handler;
- decode error = |stored tokens/s - truth tokens/s| / truth, p50/p99, for each chunking the
  simulator plays (`--chunking 1,4,1-8`), beside the error of the (n - 1) / (t_last - t_first)
  formula on the same truth (the simulator's own stamps: the formula's error alone);
- streams in flight (mean and max, from the stored runs), runs flagged `lagged`, lateness p99,
  the monitor's own event-loop lag p99 (its histogram, the window's buckets), its CPU and the
  simulator's (a simulator near 100 % of its core is the bottleneck, not the probe), and the
  scrapes' time.

    python benchmarks/accuracy.py             # 1, 100, 500, 1000 streams (~4 min)
    python benchmarks/accuracy.py --quick     # smoke: 1 and 10 streams, seconds
    python benchmarks/accuracy.py --levels 500 --window 60 --gc default
    python benchmarks/accuracy.py --levels 1,100 --chunking 1,4,1-8   # decode vs chunk size
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import sys
import time

import common
import shipped

from monitor.core.jobs import get_job

MODEL = "sim-llama-3.1-8b-instruct"
JOB = "bench-stream-v1"  # a config-defined job: max_tokens tokens of the simulator's filler


@dataclasses.dataclass
class Level:
    streams: int
    chunking: str
    schedules: int
    interval_s: float
    per_stream_tps: float
    runs: int = 0
    ok: int = 0
    ttft_err: list[float] = dataclasses.field(default_factory=list)
    before_handler: list[float] = dataclasses.field(default_factory=list)
    decode_err: list[float] = dataclasses.field(default_factory=list)
    formula_err: list[float] = dataclasses.field(default_factory=list)
    in_flight: tuple[float, int] = (0.0, 0)
    lagged: int = 0
    lateness_p99: float = math.nan
    loop_lag_p99: float = math.nan
    monitor_cpu: float = math.nan
    sim_cpu: float = math.nan
    scrapes: list[float] = dataclasses.field(default_factory=list)
    failures: dict[str, int] = dataclasses.field(default_factory=dict)


def bench_job(tokens: int, answer: str = "filler") -> dict[str, object]:
    """The config's job: `filler` gets the simulator's even-length filler words; `counting`
    sends chat-long-v1's prompt, so the simulator answers it with chat-long-v1's counting
    ("1, 2, 3, ...": characters per token grow along the answer)."""
    user = get_job("chat-long-v1").user if answer == "counting" else \
        "Write about anything at all."
    return {"name": JOB, "user": user, "max_tokens": tokens, "deadline_s": "120s",
            "stall_s": "60s", "check": {"min_length": 1}}


def run_level(streams: int, chunking: str, args: argparse.Namespace) -> Level:
    tps = min(args.tokens_per_s, args.budget / streams)
    run_s = args.ttft + args.tokens / tps
    if streams == 1:  # one schedule, back to back with a short pause
        interval, schedules = run_s + 0.1, 1
    else:
        interval = 1.25 * run_s
        schedules = math.ceil(streams * interval / run_s)
    lv = Level(streams, chunking, schedules, interval, tps)
    samples = args.runs_1 if streams == 1 else args.samples
    window = max(args.window, samples * interval / schedules)
    sim = common.start_sim("datacenter", seed=streams, cores=[1], gc_mode=args.sim_gc,
                           tokens_per_chunk=chunking,
                           **common.steady_profile(ttft_s=args.ttft, tokens_per_s=tps))
    port = common.free_port()
    nets = [shipped.Net(f"sim-{i:04d}", sim.base_url, jobs=[JOB], interval_s=interval)
            for i in range(schedules)]
    config = shipped.config_yaml(nets, port=port, concurrency=schedules + 10,
                                 jobs=[bench_job(args.tokens, args.answer)])
    mon = shipped.Monitor.start(config, cores=[0], gc=args.gc, threads=args.threads)
    try:
        mon.wait_ready()
        shipped.wait_for(interval + 1.0)  # every schedule has fired once: steady state
        _, first = mon.scrape()
        offset = wall_minus_monotonic()
        since, t0 = time.time(), time.perf_counter()
        cpu0, sim0 = mon.cpu_s(), sim.cpu_s()
        next_scrape = t0 + args.scrape_every
        while time.perf_counter() - t0 < window:
            shipped.wait_for(0, then=min(next_scrape, t0 + window))
            if time.perf_counter() >= next_scrape:
                lv.scrapes.append(mon.scrape()[0])
                next_scrape += args.scrape_every
        wall = time.perf_counter() - t0
        until = time.time()
        cpu1, sim1 = mon.cpu_s(), sim.cpu_s()
        _, last = mon.scrape()
        mon.stop()
        rows = mon.rows(since, until)
        truths = asyncio.run(common.fetch_truths(
            sim.url, [r["details"]["request_id"] for r in rows
                      if r["details"].get("request_id")]))
    finally:
        mon.cleanup()
        sim.stop()
    lv.monitor_cpu, lv.sim_cpu = (cpu1 - cpu0) / wall, (sim1 - sim0) / wall
    lv.loop_lag_p99 = shipped.histogram_delta_quantile(
        first, last, "depin_monitor_event_loop_lag_seconds", 0.99)
    lv.in_flight = shipped.in_flight(rows, since, until)
    lateness = [r["started_at"] - r["scheduled_at"] for r in rows if r["scheduled_at"]]
    lv.lateness_p99 = common.quantile(lateness, 0.99)
    for r in rows:
        lv.runs += 1
        lv.lagged += bool(r["lagged"])
        if r["outcome"] != "ok":
            key = f"{r['outcome']}: {(r['error'] or '')[:60]}"
            lv.failures[key] = lv.failures.get(key, 0) + 1
            continue
        lv.ok += 1
        t = truths.get(r["details"].get("request_id", ""))
        if not t or t["ttft_s"] is None or r["ttft_s"] is None:
            continue
        lv.ttft_err.append(r["ttft_s"] - t["ttft_s"])
        lv.before_handler.append(t["received"] - (r["started_at"] - offset))
        if r["tokens_per_s"] and t["tokens_per_s"]:
            lv.decode_err.append(abs(r["tokens_per_s"] - t["tokens_per_s"]) / t["tokens_per_s"])
            formula = (t["tokens"] - 1) / (t["last_token"] - t["first_token"])
            lv.formula_err.append(abs(formula - t["tokens_per_s"]) / t["tokens_per_s"])
    return lv


def wall_minus_monotonic() -> float:
    """time.time() - time.perf_counter(), the same for every process on this machine: maps a
    stored started_at (wall clock) onto the simulator's perf_counter stamps."""
    best = math.inf, 0.0
    for _ in range(5):
        a = time.perf_counter()
        w = time.time()
        b = time.perf_counter()
        best = min(best, (b - a, w - (a + b) / 2))
    return best[1]


def report(levels: list[Level]) -> str:
    q = common.quantile
    rows = []
    for lv in levels:
        rows.append([
            lv.streams, lv.chunking, f"{lv.in_flight[0]:.0f} / {lv.in_flight[1]}",
            f"{lv.ok}/{lv.runs}", f"{lv.per_stream_tps:.0f}",
            common.ms(q(lv.ttft_err, 0.5)), common.ms(q(lv.ttft_err, 0.99)),
            common.ms(q(lv.before_handler, 0.5)) + " / " + common.ms(q(lv.before_handler, 0.99)),
            f"{q(lv.decode_err, 0.5) * 100:.3f}", f"{q(lv.decode_err, 0.99) * 100:.3f}",
            f"{q(lv.formula_err, 0.5) * 100:.2f}",
            lv.lagged, common.ms(lv.lateness_p99), common.ms(lv.loop_lag_p99),
            f"{lv.monitor_cpu * 100:.0f}%", f"{lv.sim_cpu * 100:.0f}%",
            common.ms(q(lv.scrapes, 0.5)) if lv.scrapes else "-",
        ])
    return common.table(
        ["streams", "tok/chunk", "in flight mean / max", "ok/runs", "tok/s/stream",
         "TTFT err p50 ms", "TTFT err p99 ms", "before handler p50/p99 ms", "decode err p50 %",
         "decode err p99 %", "(n-1) formula err p50 %", "lagged runs", "lateness p99 ms",
         "loop lag p99 ms (<=)", "monitor CPU", "sim CPU", "scrape p50 ms"], rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="1,100,500,1000",
                   help="concurrent streams per level, comma-separated")
    p.add_argument("--samples", type=int, default=1000,
                   help="runs per level at least (the window grows to fit them)")
    p.add_argument("--runs-1", type=int, default=60, help="runs at 1 stream (one after another)")
    p.add_argument("--window", type=float, default=20.0, help="measured seconds per level")
    p.add_argument("--tokens", type=int, default=64, help="output tokens per run")
    p.add_argument("--tokens-per-s", type=float, default=100.0,
                   help="median decode rate per stream (capped by --budget)")
    p.add_argument("--budget", type=float, default=10000.0,
                   help="all streams together ask at most this many tokens/s")
    p.add_argument("--ttft", type=float, default=0.05, help="median simulated TTFT (s)")
    p.add_argument("--scrape-every", type=float, default=15.0,
                   help="scrape /metrics (OpenMetrics) every S s during the window")
    p.add_argument("--gc", choices=("shipped", "default"), default="shipped",
                   help="the monitor's garbage collector: as `run` tunes it, or Python's default")
    p.add_argument("--threads", choices=("shipped", "default"), default="shipped",
                   help="the monitor's thread switch interval: as `run` sets it (0.5 ms), or "
                        "CPython's default (5 ms)")
    p.add_argument("--sim-gc", choices=("default", "tuned"), default="tuned",
                   help="the simulator's collector (tuned: frozen and less frequent, so that "
                        "its pauses before it stamps `received` are not counted as the "
                        "monitor's error)")
    p.add_argument("--chunking", default="1",
                   help="the simulator's tokens per chunk, comma-separated: N or A-B (seeded "
                        "per chunk), e.g. 1,4,1-8")
    p.add_argument("--answer", choices=("filler", "counting"), default="filler",
                   help="what the simulator answers: even filler words, or chat-long-v1's "
                        "counting (the decode estimator's hard case at several tokens a chunk)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 and 10 streams, 1 to 4 tokens a chunk")
    args = p.parse_args(argv)
    if args.quick:
        args.levels, args.samples, args.window, args.tokens = "1,10", 5, 1.5, 12
        args.runs_1 = 5
        args.chunking, args.scrape_every = "1-4", 1.0
    args.levels = [int(x) for x in str(args.levels).split(",")]
    args.chunking = [c.strip() for c in str(args.chunking).split(",") if c.strip()]
    common.pin([1])  # this harness sits with the simulator: the monitor has core 0 alone
    print(f"# accuracy: {common.machine()}")
    print(f"# `depin-monitor run` pinned to core 0 (gc={args.gc}, threads={args.threads}), "
          f"simulator and this harness "
          f"to core 1 (sim gc={args.sim_gc}); job {JOB} max_tokens={args.tokens}, median TTFT "
          f"{args.ttft * 1e3:.0f} ms, {args.answer} answer, budget {args.budget:.0f} tok/s; "
          f"/metrics scraped every "
          f"{args.scrape_every:g} s; command: {' '.join(['python', *sys.argv])}")
    levels = []
    for chunking in args.chunking:
        for n in args.levels:
            lv = run_level(n, chunking, args)
            print(f"  {n} streams ({lv.schedules} schedules every {lv.interval_s:.2f}s), "
                  f"{chunking} tok/chunk: {lv.ok}/{lv.runs} ok {lv.failures}",
                  file=sys.stderr, flush=True)
            levels.append(lv)
    print(report(levels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
