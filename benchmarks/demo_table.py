"""The demo's live table: the CPU it takes from the event loop the probes run on.

How: a `demo` Board (monitor/cli/commands/demo.py) is filled with N results shaped like the
demo's three networks (ok runs, failures, churning nodes), then refreshed as rich's Live
refreshes it, four times a second, for a few seconds of wall time while results keep arriving
at the demo's rate; each refresh renders into a terminal console 120 columns wide (off
screen). CPU is this thread's CPU time (`time.thread_time`) around each call:
    add          Board.on_result, per result (the scheduler's sink call)
    refresh      one Live refresh: the table, the equality line and the progress line
    CPU share    refresh CPU / wall time: the share of one core the live view takes

    python benchmarks/demo_table.py                 # 1k and 20k results, 5 s each
    python benchmarks/demo_table.py --quick         # smoke: 2k results, 1 s
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time

import common
from rich.console import Console

from monitor.cli.commands.demo import Board, example
from monitor.core.result import Outcome, ProbeResult

REFRESH_PER_S = 4  # what the demo asks of rich's Live
# (network, share ok, TTFT median s, decode tok/s, nodes): the demo's three networks, roughly
SHAPES = {"datacenter": (1.0, 0.1, 95.0, 0), "depin-steady": (0.99, 0.6, 37.0, 4),
          "depin-flaky": (0.8, 1.5, 15.0, 8)}
FAILURES = (Outcome.DISCONNECT, Outcome.TIMEOUT, Outcome.HTTP_ERROR, Outcome.WRONG_OUTPUT)


def results(n: int, start: float, rng: random.Random) -> list[ProbeResult]:
    out = []
    names = [net.name for net in example().networks]
    for i in range(n):
        network = names[i % len(names)]
        share_ok, ttft, tps, nodes = SHAPES[network]
        ok = rng.random() < share_ok
        outcome = Outcome.OK if ok else rng.choice(FAILURES)
        done = outcome in (Outcome.OK, Outcome.WRONG_OUTPUT)
        out.append(ProbeResult(
            network=network, target="small", job=("chat-short-v1", "json-v1")[i % 2],
            model="sim-llama-3.1-8b-instruct", outcome=outcome, started_at=start + i * 0.1,
            http_status=200 if done else None, ttft_s=ttft * rng.lognormvariate(0, 0.4),
            duration_s=2.0 * rng.lognormvariate(0, 0.3) if done else None,
            output_tokens=64 if done else 10, input_tokens=40,
            tokens_per_s=tps * rng.lognormvariate(0, 0.2) if done else None,
            node=f"{network}-node-{rng.getrandbits(12):03x}" if nodes else None))
    return out


def measure(n: int, seconds: float, per_s: float, rng: random.Random) -> list[object]:
    board = Board(duration_s=None)
    start = time.time() - n * 0.1
    batch = results(n, start, rng)
    c0 = time.thread_time()
    for r in batch:
        board.on_result(r)
    add_us = (time.thread_time() - c0) / n * 1e6
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system="truecolor")
    arriving = iter(results(int(seconds * per_s) + 1, time.time(), rng))
    cpu: list[float] = []
    wall0 = time.perf_counter()
    due = wall0
    while time.perf_counter() - wall0 < seconds:
        for _ in range(round(per_s / REFRESH_PER_S)):
            board.on_result(next(arriving))
        c0 = time.thread_time()
        console.print(board)
        cpu.append(time.thread_time() - c0)
        console.file = io.StringIO()
        due += 1 / REFRESH_PER_S
        time.sleep(max(0.0, due - time.perf_counter()))
    wall = time.perf_counter() - wall0
    return [f"{n:,}", f"{add_us:.1f}", len(cpu), common.ms(sum(cpu) / len(cpu)),
            common.ms(max(cpu)), f"{sum(cpu) / wall:.1%}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default="1000,20000",
                   help="results in the board before refreshing (comma list)")
    p.add_argument("--seconds", type=float, default=5.0, help="wall time refreshed, per size")
    p.add_argument("--per-s", type=float, default=8.0,
                   help="results arriving a second while refreshing (the demo: ~8)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2k results, 1 s")
    args = p.parse_args(argv)
    if args.quick:
        args.results, args.seconds = "2000", 1.0
    print(f"# demo_table: {common.machine()}")
    print(f"# command: {' '.join(['python', *sys.argv])}")
    rng = random.Random(1)
    rows = [measure(int(n), args.seconds, args.per_s, rng) for n in args.results.split(",")]
    print(common.table(["results", "add us CPU", "refreshes", "refresh ms CPU mean",
                        "refresh ms CPU max", "CPU share of a core"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
