"""Quality audits: the items an audit needs to catch a 5- and a 10-point accuracy drop at 80 %
power, the false-alarm rate over many audits of equal skill, and what one audit sends.

Pure in-process maths on simulated grades, with the simulator's skill model
(monitor.simulator.quality): an audit's items go round-robin over the suite's families and
difficulties (as monitor.core.quality.QualitySettings.specs does); the reference answers item
(f, d) right with the large model's skill for it, and the network, independently, with that
skill minus the drop (the simulator draws each side's answers from a hash of its own seed:
errors are independent given the item, which is the hard case for a paired test; real
models' errors correlate on hard items, which leaves fewer discordant pairs and more power).
Each audit is judged as the monitor does: McNemar's exact one-sided p-value on the
discordant pairs (monitor.analysis.paired), "worse" below alpha. Power = the share of audits
that say "worse"; at a drop of 0 that share is the false-alarm rate, which must stay at or
below alpha (plus Monte Carlo error). Each repetition uses other seeds.

    python benchmarks/quality_power.py            # ~1 min: 3 repetitions
    python benchmarks/quality_power.py --quick    # seconds (smoke)
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from functools import cache

import numpy as np
from common import machine  # type: ignore[import-not-found]

from monitor.analysis.paired import mcnemar_worse
from monitor.core.quality import QualitySettings, prompt_tokens_bound
from monitor.core.quality_suite import DIFFICULTIES, FAMILIES, make_item
from monitor.simulator.quality import LARGE

CELLS = [(f, d) for d in DIFFICULTIES for f in FAMILIES]  # the order specs() uses
SKILL = np.array([LARGE[f][d - 1] for f, d in CELLS])


@cache
def _tail(m: int) -> tuple[float, ...]:
    """P(X <= k) for X ~ Binomial(m, 1/2), k = 0..m (exact, as mcnemar_worse)."""
    return tuple(mcnemar_worse(k, m - k) for k in range(m + 1))


def p_values(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.array([_tail(int(x + y))[int(x)] for x, y in zip(b, c, strict=True)])


def audits(n: int, drop: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """One-sided p-values of `count` audits of n items with the network `drop` below."""
    skill = np.resize(SKILL, n)
    ref = rng.random((count, n)) < skill
    net = rng.random((count, n)) < np.clip(skill - drop, 0.0, 1.0)
    b = (net & ~ref).sum(axis=1)
    c = (ref & ~net).sum(axis=1)
    return p_values(b, c)


def exact_power(n: int, drop: float, alpha: float) -> float:
    """The same power computed exactly: the distribution of (b, c) over the n items, item by
    item (each adds one to b, one to c, or neither), summed over the rejection region."""
    skill = np.resize(SKILL, n)
    dist = np.zeros((n + 1, n + 1))
    dist[0, 0] = 1.0
    for p_ref in skill:
        p_net = min(max(p_ref - drop, 0.0), 1.0)
        qb, qc = p_net * (1 - p_ref), p_ref * (1 - p_net)
        old = dist.copy()
        dist *= 1 - qb - qc
        dist[1:, :] += old[:-1, :] * qb
        dist[:, 1:] += old[:, :-1] * qc
    total = 0.0
    for b in range(n + 1):
        for c in range(n + 1 - b):
            if dist[b, c] > 1e-15 and _tail(b + c)[b] < alpha:
                total += dist[b, c]
    return total


def power(n: int, drop: float, count: int, alpha: float, rng: np.random.Generator) -> float:
    return float((audits(n, drop, count, rng) < alpha).mean())


def items_for(drop: float, target: float, alpha: float, step: int, limit: int
              ) -> tuple[int | None, float]:
    """The fewest items (a multiple of `step`) whose exact power reaches `target`: a doubling
    search, then bisection."""
    lo, hi = 0, step
    while exact_power(hi, drop, alpha) < target:
        lo, hi = hi, hi * 2
        if hi > limit:
            return None, 0.0
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if exact_power(mid, drop, alpha) >= target:
            hi = mid
        else:
            lo = mid
    return hi, exact_power(hi, drop, alpha)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def audit_tokens(settings: QualitySettings) -> tuple[int, int, int]:
    """(prompt characters, the spend cap's input-token bound, max output tokens) of one
    default audit of one network, seed 0."""
    chars = bound = 0
    for f, d, s in settings.specs(0):
        prompt = make_item(f, d, s).prompt
        chars += len(prompt)
        bound += prompt_tokens_bound(prompt)
    return chars, bound, settings.items * settings.max_tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="repetitions (other seeds; default 3)")
    ap.add_argument("--audits", type=int, default=2000,
                    help="audits per power estimate (default 1000)")
    ap.add_argument("--null-audits", type=int, default=20000,
                    help="equal-skill audits per false-alarm estimate (default 20000)")
    ap.add_argument("--drops", default="0.05,0.10", help="accuracy drops (default 0.05,0.10)")
    ap.add_argument("--alpha", type=float, default=QualitySettings().alpha)
    ap.add_argument("--sizes", default="54,189,594",
                    help="audit sizes for the false-alarm table (default 54,189,594)")
    ap.add_argument("--quick", action="store_true", help="smoke setting: seconds")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.audits, args.null_audits, args.sizes = 1, 100, 400, "54"
        args.drops = "0.10"
    drops = [float(d) for d in args.drops.split(",")]
    sizes = [int(n) for n in args.sizes.split(",")]
    print(machine())
    print(f"skill: the simulator's large model, mean {SKILL.mean():.3f} over "
          f"{len(CELLS)} family x difficulty cells; alpha {args.alpha:g} one-sided")
    step = len(CELLS)
    default = QualitySettings().items
    t0 = time.perf_counter()
    needed = {drop: items_for(drop, 0.8, args.alpha, step, 5000) for drop in drops}
    rows = []
    for rep in range(args.reps):
        rng = np.random.default_rng(1000 + rep)
        for drop in drops:
            n, exact = needed[drop]
            rows.append([str(rep + 1), f"{100 * drop:.0f} points",
                         "-" if n is None else str(n), f"{exact:.3f}",
                         "-" if n is None else
                         f"{power(n, drop, args.audits, args.alpha, rng):.3f}",
                         f"{exact_power(default, drop, args.alpha):.3f}",
                         f"{power(default, drop, args.audits, args.alpha, rng):.3f}"])
    print(f"\nItems for 80 % power: the fewest (a multiple of the {step} cells) whose exact "
          f"power reaches 0.8; beside it, the share of {args.audits} simulated audits that "
          f"said \"worse\"; and both at the default {default} items\n")
    print(table(["run", "drop", "items for 80 % power", "exact power", "simulated",
                 f"exact at {default}", f"simulated at {default}"], rows))
    rows = []
    for rep in range(args.reps):
        rng = np.random.default_rng(2000 + rep)
        for n in sizes:
            p = audits(n, 0.0, args.null_audits, rng)
            rate = float((p < args.alpha).mean())
            mc = 2 * math.sqrt(args.alpha * (1 - args.alpha) / args.null_audits)
            worse = p < args.alpha
            in_a_row = float((worse[1:] & worse[:-1]).mean())  # consecutive audits: 2 in a row
            rows.append([str(rep + 1), str(n), str(args.null_audits), f"{rate:.4f}",
                         f"{exact_power(n, 0.0, args.alpha):.4f}",
                         f"{args.alpha:g} + {mc:.4f}", f"{in_a_row:.5f}"])
    print("\nFalse alarms: equal skill on both sides (exact: the same share computed "
          "exactly; 2 in a row: consecutive audits that both said \"worse\")\n")
    print(table(["run", "items", "audits", "false positives (identical skill)", "exact",
                 "bound", "2 in a row"], rows))
    settings = QualitySettings()
    chars, bound, out = audit_tokens(settings)
    print(f"\nOne default audit of one network ({settings.items} items, max_tokens "
          f"{settings.max_tokens}): {chars:,} prompt characters; the spend cap counts "
          f"{bound:,} input tokens (its bound) and at most {out:,} output tokens")
    print(table(["price in/out per Mtok", "worst case per audit", "a day at 4 audits"], [
        [f"${i:g} / ${o:g}", f"${(bound * i + out * o) / 1e6:.3f}",
         f"${4 * (bound * i + out * o) / 1e6:.2f}"]
        for i, o in ((0.05, 0.08), (0.18, 0.18), (0.9, 0.9))]))
    print(f"\nbenchmark time {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
