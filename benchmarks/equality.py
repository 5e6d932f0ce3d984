"""Model equality testing: power against each distortion and false positives on identical
models, over samples per prompt, on the reference networks' samplers.

Each test draws `--prompts` prompts x k completions from the faithful model and from the
candidate (faithful again, quantized or substituted: monitor.simulator.sampling, the very
samplers the reference networks serve), runs the monitor's test (MMD, Hamming kernel, first
1,000 characters, permutation p-value) and rejects at `--alpha`. Power = the fraction of
tests rejected; on the faithful candidate that fraction is the false-positive rate, which
must stay at or below alpha. Each repetition uses other seeds; the ranges over repetitions
go to benchmarks/RESULTS.md. The paper's reference point (Gao, Liang and Guestrin, ICLR 2025):
a median 77.4 % power over its distortions at about 10 samples a prompt, alpha 0.05.

    python benchmarks/equality.py               # ~4 min: 3 repetitions x 40 tests a cell
    python benchmarks/equality.py --quick       # seconds (smoke)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import machine  # type: ignore[import-not-found]

from monitor.analysis.mmd import permutation_test
from monitor.core.equality import Sample
from monitor.simulator.sampling import VARIANTS, model_for

MODEL = "sim-llama-3.1-8b-instruct"  # what the demo's networks serve


def draw(variant: str, prompts: int, each: int, max_tokens: int,
         rng: np.random.Generator) -> list[Sample]:
    model = model_for(MODEL, variant)
    return [Sample(p, "".join(pieces)) for p in range(prompts)
            for pieces in model.sample(p, each, max_tokens, 1.0, rng)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="repetitions (other seeds; default 3)")
    ap.add_argument("--tests", type=int, default=40, help="tests per cell and repetition")
    ap.add_argument("--samples", default="2,5,10,20",
                    help="samples per prompt to measure at (default 2,5,10,20)")
    ap.add_argument("--prompts", type=int, default=25, help="prompts (default 25)")
    ap.add_argument("--alpha", default="0.05",
                    help="test levels, comma-separated (default 0.05, the paper's)")
    ap.add_argument("--candidates", default=",".join(VARIANTS),
                    help=f"which candidates (default {','.join(VARIANTS)})")
    ap.add_argument("--permutations", type=int, default=200, help="default 200")
    ap.add_argument("--chars", type=int, default=1000, help="L (default 1000)")
    ap.add_argument("--max-tokens", type=int, default=50, help="default 50")
    ap.add_argument("--quick", action="store_true", help="smoke setting: seconds")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.tests, args.samples, args.prompts = 1, 3, "2,5", 5
    sizes = [int(k) for k in args.samples.split(",")]
    alphas = [float(a) for a in args.alpha.split(",")]
    candidates = [c for c in VARIANTS if c in args.candidates.split(",")]
    print(machine())
    print(f"\n{args.prompts} prompts, temperature 1, max_tokens {args.max_tokens}, first "
          f"{args.chars} chars, {args.permutations} permutations, alpha {args.alpha}, "
          f"{args.tests} tests a cell, {args.reps} repetitions\n")
    rates: dict[tuple[str, int, float], list[float]] = {}
    seconds: dict[int, list[float]] = {}
    for rep in range(args.reps):
        rng = np.random.default_rng(1000 + rep)
        for k in sizes:
            for variant in candidates:
                p_values = []
                for i in range(args.tests):
                    reference = draw("faithful", args.prompts, k, args.max_tokens, rng)
                    candidate = draw(variant, args.prompts, k, args.max_tokens, rng)
                    t0 = time.perf_counter()
                    result = permutation_test(reference, candidate, args.chars,
                                              permutations=args.permutations,
                                              seed=rep * 100_000 + i)
                    seconds.setdefault(k, []).append(time.perf_counter() - t0)
                    p_values.append(result.p_value)
                for alpha in alphas:
                    rejected = sum(p < alpha for p in p_values)
                    rates.setdefault((variant, k, alpha), []).append(rejected / args.tests)
    what = {"faithful": "false positives (identical model)",
            "quantized": "power: quantized", "substituted": "power: substituted"}
    reps = " | ".join(f"run {r + 1}" for r in range(args.reps))
    print(f"| candidate | samples/prompt | alpha | {reps} | range |")
    print("|---|---:|---:|" + "---:|" * args.reps + "---|")
    for variant in candidates:
        for k in sizes:
            for alpha in alphas:
                got = rates[(variant, k, alpha)]
                cells = " | ".join(f"{r:.1%}" for r in got)
                print(f"| {what[variant]} | {k} | {alpha:g} | {cells} | "
                      f"{min(got):.1%}-{max(got):.1%} |")
    print("\n| samples/prompt | test time p50 ms (statistic + permutations) |")
    print("|---:|---:|")
    for k in sizes:
        print(f"| {k} | {1000 * float(np.median(seconds[k])):.0f} |")


if __name__ == "__main__":
    main()
