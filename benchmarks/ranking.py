"""Ranking: how often it separates two equal networks (its false-separation rate), how many
runs it needs to put the steady reference network above the flaky one, and what it costs.

Runs come from the reference profiles' seeded plans (monitor.simulator.profiles.Dice), as
tests/test_report_buyer.py builds them: no servers, so thousands of trials take seconds.

    python benchmarks/ranking.py                 # 200 trials per row (~2 min)
    python benchmarks/ranking.py --trials 1000
    python benchmarks/ranking.py --quick         # smoke
"""

from __future__ import annotations

import argparse
import time

import common

from monitor.analysis.queries import Samples
from monitor.analysis.ranking import Contender, rank
from monitor.simulator.profiles import PROFILES, Dice

# Plans whose run completes (ok or a wrong answer: it has a decode rate); every run counts
# toward availability (none of these outcomes is the buyer's own fault).
COMPLETED_FAULTS = {None, "wrong"}


def contender(profile: str, name: str, runs: int, seed: int) -> Contender:
    dice = Dice(PROFILES[profile], seed)
    ok = 0
    ttft, decode = Samples(), Samples()
    for _ in range(runs):
        plan = dice.plan(64)
        ok += plan.fault is None
        if plan.fault not in ("http_5xx", "rate_limit"):
            ttft.add(plan.ttft_s)
        if plan.fault in COMPLETED_FAULTS:
            decode.add(plan.tokens_per_s)
    return Contender(name, ok, runs, ttft, decode)


def separated(a: Contender, b: Contender) -> bool:
    placings = rank([a, b])
    return placings[a.name].rank != placings[b.name].rank


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per row (default 200)")
    parser.add_argument("--quick", action="store_true", help="smoke: 10 trials, small sizes")
    args = parser.parse_args()
    trials = 10 if args.quick else args.trials
    sizes = (100,) if args.quick else (100, 300, 1000)
    print(f"# ranking: {common.machine()}")
    rows: list[list[object]] = []
    for runs in sizes:
        for profile in ("depin-steady", "datacenter"):
            hits = sum(separated(contender(profile, "a", runs, 2 * t),
                                 contender(profile, "b", runs, 2 * t + 1))
                       for t in range(trials))
            rows.append([f"{profile} vs itself (false separation)", runs, trials,
                         f"{100 * hits / trials:.1f}%"])
    for better, worse in (("depin-steady", "depin-flaky"), ("datacenter", "depin-steady")):
        for runs in (10,) if args.quick else (10, 20, 50):
            hits = 0
            for t in range(trials):
                placings = rank([contender(better, "a", runs, 2 * t),
                                 contender(worse, "b", runs, 2 * t + 1)])
                hits += placings["a"].rank < placings["b"].rank
            rows.append([f"{better} above {worse} (power)", runs, trials,
                         f"{100 * hits / trials:.1f}%"])
    print(common.table(["comparison", "runs each", "trials", "separated"], rows))
    timings = []
    for networks, runs in ((3, 1_000),) if args.quick else ((10, 10_000), (50, 1_000)):
        group = [contender("depin-steady", f"n{i}", runs, i) for i in range(networks)]
        start = time.perf_counter()
        rank(group)
        timings.append([networks, runs, f"{time.perf_counter() - start:.2f}"])
    print(common.table(["networks", "runs each", "rank s"], timings))


if __name__ == "__main__":
    main()
