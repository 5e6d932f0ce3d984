"""The fingerprint against the MMD test: detection power and false alarms per request spent,
on the simulator's models.

- fingerprint, tokens: border inputs found as `discover` finds them without logprobs (300
  candidates x 3 tries at temperature 0, the 20 most balanced that varied, 30 reference
  samples each); a run is 20 inputs x 10 requests of one token; its test is the monitor's
  (monitor.analysis.fingerprint.permutation_test, 1,999 permutations) against a trailing
  baseline of 7 runs of the unchanged model;
- fingerprint, logprobs: the same with top_logprobs 5 (300 candidates x 1, the 20 closest
  top-2 ties, 6 reference requests each); a run is 20 inputs x 2 requests;
- MMD: the model equality test (monitor.analysis.mmd, Hamming kernel, 1,000 permutations) at
  its default budget, 25 prompts x 10 completions of up to 50 tokens from the network and as
  many from a reference network.

The candidate is the unchanged model (false alarms), its quantized copy or another model
(power): monitor.simulator.firsttoken for the fingerprint, monitor.simulator.sampling for the
MMD, the samplers the reference networks serve. Requests are emulated in process with the
simulator's own jitter (FirstTokenModel.greedy), not sent over HTTP. Tokens are what the
simulator's usage would bill (its prompt_tokens count the message's words, no chat template).
Each method at three budgets (the last is its default). "Per detection": a test's requests
(or tokens) over its power, the expected spend until the first detection of a change that
persists.

    python benchmarks/fingerprint_power.py           # ~15 min: 3 runs x 100 tests a cell
    python benchmarks/fingerprint_power.py --quick   # seconds (smoke)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import machine  # type: ignore[import-not-found]

from monitor.analysis import mmd
from monitor.analysis.fingerprint import (
    Observations,
    border_inputs,
    closest_ties,
    observation,
    permutation_test,
)
from monitor.core.equality import CONTINUE_V1, Sample
from monitor.core.fingerprint import CANDIDATES_V1, Observation
from monitor.simulator.firsttoken import first_token_model
from monitor.simulator.network import approx_tokens
from monitor.simulator.sampling import model_for

MODEL = "sim-llama-3.1-8b-instruct"
CANDIDATES = ("faithful", "quantized", "substituted")
WHAT = {"faithful": "false alarms (unchanged)", "quantized": "power: quantized",
        "substituted": "power: another model"}


def ask(variant: str, prompts: list[str], n: int, top_k: int, rng: np.random.Generator
        ) -> dict[str, list[Observation]]:
    model = first_token_model(MODEL, variant)
    return {p: [observation(d.token, d.top if top_k else None)
                for d in model.greedy(p, n, rng, top_k)] for p in prompts}


def discover(top_k: int, rng: np.random.Generator, candidates: int, keep: int
             ) -> tuple[list[str], int]:
    """Border inputs of the unchanged model and the discovery's requests."""
    tried = list(CANDIDATES_V1.prompts[:candidates])
    model = first_token_model(MODEL)
    if top_k:
        tops = {p: model.greedy(p, 1, rng, top_k)[0].top for p in tried}
        kept = closest_ties(tops, keep)
        return kept, len(tried) + 6 * len(kept)
    tokens = {p: [d.token for d in model.greedy(p, 3, rng)] for p in tried}
    kept = border_inputs(tokens, keep)
    return kept, 3 * len(tried) + 30 * len(kept)


def pooled(runs: list[dict[str, list[Observation]]]) -> Observations:
    out: dict[str, list[Observation]] = {}
    for run in runs:
        for p, obs in run.items():
            out.setdefault(p, []).extend(obs)
    return out


# (inputs or prompts, requests each): a test's budget; the last of each is the default
BUDGETS = {"fingerprint, tokens": [(5, 2), (10, 4), (20, 10)],
           "fingerprint, logprobs": [(5, 1), (10, 1), (20, 2)],
           "MMD (model equality)": [(5, 2), (10, 5), (25, 10)]}
TOP_K = {"fingerprint, tokens": 0, "fingerprint, logprobs": 5}


def span(values: list[float], fmt: str = "{:.0%}") -> str:
    lo, hi = min(values), max(values)
    return fmt.format(lo) if lo == hi else f"{fmt.format(lo)}-{fmt.format(hi)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="repetitions (other seeds; default 3)")
    ap.add_argument("--tests", type=int, default=100, help="tests per cell and repetition")
    ap.add_argument("--quick", action="store_true", help="smoke setting: seconds")
    args = ap.parse_args()
    candidates, keep, perms = 300, 20, 1999
    budgets = BUDGETS
    if args.quick:
        args.reps, args.tests, candidates, keep, perms = 1, 3, 120, 5, 199
        budgets = {name: [(min(n, 5), k) for n, k in b[:1]] for name, b in BUDGETS.items()}
    alphas = (0.01, 0.001)
    print(machine())
    print(f"\n{args.tests} tests a cell, {args.reps} repetitions; fingerprint: {candidates} "
          f"candidates, up to {keep} inputs, {perms} permutations, baseline 7 runs; MMD: "
          "first 1000 chars, 1000 permutations\n")
    rates: dict[tuple[str, int, str, float], list[float]] = {}
    cost: dict[tuple[str, int], tuple[int, float]] = {}  # requests and tokens a test
    discovery: dict[str, list[int]] = {}
    seconds: dict[str, list[float]] = {}
    for rep in range(args.reps):
        rng = np.random.default_rng(2000 + rep)
        for name, top_k in TOP_K.items():
            kept, spent = discover(top_k, rng, candidates, keep)
            discovery.setdefault(name, []).append(spent)
            for size, (n_inputs, each) in enumerate(budgets[name]):
                inputs = kept[:n_inputs]
                requests = len(inputs) * each
                cost[(name, size)] = (requests, sum(approx_tokens(p) for p in inputs) * each
                                      + requests)
                for variant in CANDIDATES:
                    p_values = []
                    for i in range(args.tests):
                        baseline = pooled([ask("faithful", inputs, each, top_k, rng)
                                           for _ in range(7)])
                        today = ask(variant, inputs, each, top_k, rng)
                        t0 = time.perf_counter()
                        result = permutation_test(today, baseline, permutations=perms,
                                                  seed=rep * 100_000 + i)
                        seconds.setdefault(name, []).append(time.perf_counter() - t0)
                        assert result is not None
                        p_values.append(result.p_value)
                    for alpha in alphas:
                        rates.setdefault((name, size, variant, alpha), []).append(
                            sum(p < alpha for p in p_values) / args.tests)
        name = "MMD (model equality)"
        for size, (prompts, each) in enumerate(budgets[name]):
            out_tokens: list[int] = []
            for variant in CANDIDATES:
                p_values = []
                for i in range(args.tests):
                    sides = []
                    for v in ("faithful", variant):
                        model = model_for(MODEL, v)
                        side = []
                        for p in range(prompts):
                            for pieces in model.sample(p, each, 50, 1.0, rng):
                                side.append(Sample(p, "".join(pieces)))
                                out_tokens.append(len(pieces))
                        sides.append(side)
                    t0 = time.perf_counter()
                    result = mmd.permutation_test(sides[0], sides[1], 1000, permutations=1000,
                                                  seed=rep * 100_000 + i)
                    seconds.setdefault(name, []).append(time.perf_counter() - t0)
                    p_values.append(result.p_value)
                for alpha in alphas:
                    rates.setdefault((name, size, variant, alpha), []).append(
                        sum(p < alpha for p in p_values) / args.tests)
            requests = 2 * prompts * each  # the network's and the reference's
            tokens_in = 2 * each * sum(approx_tokens(p) for p in CONTINUE_V1.prompts[:prompts])
            cost[(name, size)] = (requests, tokens_in + requests * float(np.mean(out_tokens)))
    print("Power at alpha 0.001; false alarms at 0.01 and 0.001; each cell the range over "
          "runs. Per detection: a test's requests (tokens) over its power against the "
          "quantized copy.\n")
    print("| method | budget | requests a test | tokens a test | false alarms, alpha 0.01 | "
          "false alarms, alpha 0.001 | power: quantized | power: another model | "
          "requests per detection (quantized) | tokens per detection (quantized) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, sizes in budgets.items():
        unit = "prompts" if name.startswith("MMD") else "inputs"
        for size, (n, each) in enumerate(sizes):
            requests, tokens = cost[(name, size)]

            def rate(variant: str, alpha: float, size: int = size, name: str = name
                     ) -> list[float]:
                return rates[(name, size, variant, alpha)]

            power = rate("quantized", 0.001)
            per = [f"{requests / p:,.0f}" if p else "never" for p in (max(power), min(power))]
            per_tokens = [f"{tokens / p:,.0f}" if p else "never"
                          for p in (max(power), min(power))]
            print(f"| {name} | {n} {unit} x {each} | {requests:,} | {tokens:,.0f} | "
                  f"{span(rate('faithful', 0.01), '{:.1%}')} | "
                  f"{span(rate('faithful', 0.001), '{:.1%}')} | {span(power)} | "
                  f"{span(rate('substituted', 0.001))} | "
                  f"{per[0] if per[0] == per[1] else '-'.join(per)} | "
                  f"{per_tokens[0] if per_tokens[0] == per_tokens[1] else '-'.join(per_tokens)} |")
    print("\n| method | discovery requests (once) | test time p50 ms |")
    print("|---|---:|---:|")
    for name in budgets:
        once = "-" if name not in discovery else span([float(d) for d in discovery[name]],
                                                       "{:,.0f}")
        print(f"| {name} | {once} | {1000 * float(np.median(seconds[name])):.0f} |")


if __name__ == "__main__":
    main()
