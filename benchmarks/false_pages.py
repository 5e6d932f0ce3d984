"""False pages and time to page of the burn-rate page alert, before and after the evidence
condition (monitor/analysis/evidence.py), by probe rate and objective.

Method: a network's runs are simulated minute by minute (failures in a minute ~ Binomial(runs
a minute, error ratio)), and the page alert is evaluated every minute as the generated rules
do: the 14.4x tier over 1h and 5m or the 6x tier over 6h and 30m, each window's error ratio
above factor x budget, held for `for: 2m` (three evaluations in a row); "after" also needs the
long window to hold at least `min_failures(runs in the window, budget)` failures. Windows are
exact counts (Prometheus' rate() extrapolates at the window's edges; the promtool scenarios in
tests/promtool_cases.py check the rules themselves on the same cases). Every simulated month
starts with full windows (6 hours of runs before it).

- false pages: the share of 30-day months in which a network exactly at its objective (error
  ratio = budget) is paged at least once;
- time to page: minutes from the start of a steady burn at B x the budget to the page (median
  over trials; "-" when fewer than half of the trials page within 6 hours).

    python benchmarks/false_pages.py             # the tables in docs/sla.md (~20 s)
    python benchmarks/false_pages.py --quick     # smoke setting
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.analysis.evidence import EVIDENCE_ALPHA, min_failures
from monitor.exporter.rules import ALERT_FOR_S, BURN_TIERS, WINDOWS

MONTH_MIN = 30 * 24 * 60
RATES = (60, 120, 300, 600, 1800, 3600)  # runs an hour
OBJECTIVES = (0.99, 0.995, 0.999)
BURNS = (15.0, 50.0, 1000.0)  # x budget; 1000 x a 0.1 % budget = every run fails
PAGE_TIERS = [t for t in BURN_TIERS if t.severity == "page"]
HOLD = int(ALERT_FOR_S // 60)  # `for: 2m` at a 1m evaluation interval: 2 more evaluations


def _minutes(window: str) -> int:
    return WINDOWS[window] // 60


WARM = max(_minutes(t.long) for t in PAGE_TIERS)


def pages(failures: np.ndarray, per_min: float, budget: float, evidence: bool) -> np.ndarray:
    """Per trial (row) and minute: whether the page alert is firing. `failures` holds failures
    per minute, the first WARM minutes fill the windows."""
    cum = np.concatenate([np.zeros((failures.shape[0], 1), failures.dtype),
                          np.cumsum(failures, axis=1, dtype=failures.dtype)], axis=1)
    t = np.arange(WARM, failures.shape[1] + 1)
    cond = np.zeros((failures.shape[0], t.size), bool)
    for tier in PAGE_TIERS:
        long_m, short_m = _minutes(tier.long), _minutes(tier.short)
        k_long = cum[:, t] - cum[:, t - long_m]
        k_short = cum[:, t] - cum[:, t - short_m]
        threshold = tier.factor * budget
        hit = (k_long > threshold * per_min * long_m) & (k_short > threshold * per_min * short_m)
        if evidence:
            hit &= k_long >= min_failures(round(per_min * long_m), budget)
        cond |= hit
    firing = cond.copy()
    for back in range(1, HOLD + 1):
        firing[:, back:] &= cond[:, :-back]
        firing[:, :back] = False
    return firing


def false_page_shares(rng: np.random.Generator, per_hour: int, objective: float, months: int,
                      batch: int = 50) -> tuple[float, float]:
    """The share of months with a page, without and with the evidence condition (the same
    simulated months for both)."""
    budget, per_min = 1 - objective, per_hour / 60
    paged = [0, 0]
    for start in range(0, months, batch):
        n = min(batch, months - start)
        fails = rng.binomial(round(per_min), budget, size=(n, WARM + MONTH_MIN)).astype(np.int32)
        for i, evidence in enumerate((False, True)):
            paged[i] += int(pages(fails, per_min, budget, evidence).any(axis=1).sum())
    return paged[0] / months, paged[1] / months


def time_to_page(rng: np.random.Generator, per_hour: int, objective: float, burn: float,
                 trials: int, evidence: bool) -> float | None:
    budget, per_min = 1 - objective, per_hour / 60
    ratio = min(1.0, burn * budget)
    horizon = 6 * 60
    before = rng.binomial(round(per_min), budget, size=(trials, WARM))
    during = rng.binomial(round(per_min), ratio, size=(trials, horizon))
    firing = pages(np.concatenate([before, during], axis=1), per_min, budget, evidence)[:, 1:]
    first = np.where(firing.any(axis=1), firing.argmax(axis=1) + 1, np.inf)
    median = float(np.median(first))
    return None if median == np.inf else median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--months", type=int, default=200, help="months per cell (200)")
    parser.add_argument("--trials", type=int, default=200, help="burns per cell (200)")
    parser.add_argument("--seed", type=int, default=20261208)
    parser.add_argument("--quick", action="store_true", help="smoke setting: 10 months, 20 "
                        "trials, two rates")
    args = parser.parse_args(argv)
    rates = RATES[::3] if args.quick else RATES
    months, trials = (10, 20) if args.quick else (args.months, args.trials)
    import common  # beside this script; imported here so that tests can load pages() alone

    began = time.perf_counter()
    print(f"# false_pages: {common.machine()}")
    print()
    print(f"# false pages of the page alert: {months} simulated months a cell, seed "
          f"{args.seed}, evidence alpha {EVIDENCE_ALPHA:g}")
    print()
    print("| runs/hour | " + " | ".join(f"{o:.1%} before | {o:.1%} after" for o in OBJECTIVES)
          + " | min failures in 1h (" + ", ".join(f"{o:.1%}" for o in OBJECTIVES) + ") |")
    print("|---|" + "---|---|" * len(OBJECTIVES) + "---|")
    for per_hour in rates:
        cells = []
        for objective in OBJECTIVES:
            rng = np.random.default_rng([args.seed, per_hour, int(objective * 1e4)])
            cells += [f"{share:.1%}" for share in
                      false_page_shares(rng, per_hour, objective, months)]
        mins = ", ".join(str(min_failures(per_hour, 1 - o)) for o in OBJECTIVES)
        print(f"| {per_hour} | " + " | ".join(cells) + f" | {mins} |")
    print()
    print(f"# time to page (median minutes from the start of a steady burn; {trials} trials; "
          "`-`: not within 6 h), 99.9 % objective")
    print()
    print("| runs/hour | " + " | ".join(f"{b:g}x before | {b:g}x after" for b in BURNS) + " |")
    print("|---|" + "---|---|" * len(BURNS))
    for per_hour in rates:
        cells = []
        for burn in BURNS:
            for evidence in (False, True):
                rng = np.random.default_rng([args.seed, per_hour, int(burn)])  # same burns
                t = time_to_page(rng, per_hour, 0.999, burn, trials, evidence)
                cells.append("-" if t is None else f"{t:.0f}")
        print(f"| {per_hour} | " + " | ".join(cells) + " |")
    print()
    print(f"took {time.perf_counter() - began:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
