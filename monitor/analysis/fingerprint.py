"""Fingerprint verdicts: which candidates are border inputs, the test of today's first-token
distributions against a baseline, one run's verdict, and the report's section.

The statistic is B3IT's: the mean over border inputs of the total-variation distance between
two first-token distributions (b3it_demo/src/b3it_demo/analyze.py, compute_tv_distance;
detection.py, epoch_tv_series). Where B3IT flags a day by eye-tuned thresholds on that series
(detection.py, adaptive_transitions: 4 sigma and 0.2 above a trailing mean, 3 days running),
its p-value here comes from a permutation test: under "same model", today's observations of an
input and the baseline's are exchangeable, so relabelling them within each input gives the
statistic's null distribution, from the network's own nondeterminism.
`p = (1 + #{permuted >= observed}) / (1 + permutations)`. docs/fingerprint.md.
"""

from __future__ import annotations

import html
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rich.console import Console

from monitor.analysis import sections
from monitor.core.fingerprint import (
    BorderSet,
    FingerprintResult,
    FingerprintSettings,
    Method,
    Observation,
    Sampled,
    Target,
    Verdict,
)
from monitor.core.numbers import fixed, significant
from monitor.core.tables import Column, plain

Observations = Mapping[str, Sequence[Observation]]
OTHER = "\x00other"  # the probability top_logprobs leave out


def tv_distance(a: Sequence[Observation], b: Sequence[Observation]) -> float:
    """Total-variation distance between the mean distributions of two sets of observations."""
    x = _matrix([*a, *b])
    return float(0.5 * np.abs(x[: len(a)].mean(axis=0) - x[len(a):].mean(axis=0)).sum())


def _matrix(observations: Sequence[Observation]) -> npt.NDArray[np.float64]:
    keys = sorted({k for o in observations for k in o})
    index = {k: i for i, k in enumerate(keys)}
    x = np.zeros((len(observations), len(keys) + 1))
    for row, o in enumerate(observations):
        for k, p in o.items():
            x[row, index[k]] = p
    x[:, -1] = np.clip(1.0 - x[:, :-1].sum(axis=1), 0.0, None)  # what the top-k leave out
    return x


@dataclass(frozen=True, slots=True)
class TestResult:
    statistic: float  # mean TV distance over the inputs both sides observed
    p_value: float
    inputs: int
    # The smallest p-value these sample sizes allow: one over the number of distinct
    # relabellings (an input seen once on each side has one; today's and the baseline's
    # labels swapped give the same distance when both sides are as large).
    smallest_p: float = 0.0


def permutation_test(today: Observations, baseline: Observations, *, permutations: int,
                     seed: int = 0) -> TestResult | None:
    """Mean TV distance of today's distributions from the baseline's, over the inputs both
    observed, with its permutation p-value (labels permuted within each input). None when no
    input has observations on both sides."""
    rng = np.random.default_rng(seed)
    observed = 0.0
    null = np.zeros(permutations)
    inputs = 0
    log_labellings = 0.0
    for prompt in sorted(today):
        t, b = list(today[prompt]), list(baseline.get(prompt, ()))
        if not t or not b:
            continue
        inputs += 1
        x = _matrix([*t, *b])
        nt, nb = len(t), len(b)
        log_labellings += math.log(math.comb(nt + nb, nt)) - (math.log(2) if nt == nb else 0.0)
        total = x.sum(axis=0)
        observed += float(0.5 * np.abs(x[:nt].mean(axis=0) - x[nt:].mean(axis=0)).sum())
        order = rng.permuted(np.tile(np.arange(nt + nb), (permutations, 1)), axis=1)[:, :nt]
        mine = x[order].sum(axis=1)
        null += 0.5 * np.abs(mine / nt - (total - mine) / nb).sum(axis=1)
    if not inputs:
        return None
    observed /= inputs
    null /= inputs
    exceed = int((null >= observed - 1e-12).sum())
    return TestResult(observed, (1 + exceed) / (1 + permutations), inputs,
                      max(1 / (1 + permutations), math.exp(-log_labellings)))


# -- discovery -----------------------------------------------------------------------------

def balance(tokens: Sequence[str]) -> float:
    """B3IT's balance score of a distribution: the second most frequent token's count over the
    first's (detection.py, balance_score); 0 for an input that never varied."""
    counts = sorted(Counter(tokens).values(), reverse=True)
    return counts[1] / counts[0] if len(counts) > 1 else 0.0


def border_inputs(tries: Mapping[str, Sequence[str]], keep: int) -> list[str]:
    """Candidates whose first token varied over their tries (B3IT's phase 1: two distinct
    non-empty outputs, phase_1.py, is_border_input), the `keep` most balanced first."""
    varied = [p for p, tokens in tries.items() if len({t for t in tokens if t}) >= 2]
    return sorted(varied, key=lambda p: (-balance(tries[p]), p))[:keep]


def closest_ties(tops: Mapping[str, Sequence[tuple[str, float]]], keep: int) -> list[str]:
    """With logprobs: the `keep` candidates whose two likeliest first tokens are closest in
    logprob (the inputs where a small change in the model moves the most probability)."""
    gaps = {p: top[0][1] - top[1][1] for p, top in tops.items() if len(top) >= 2}
    return sorted(gaps, key=lambda p: (gaps[p], p))[:keep]


def observation(token: str, top: Sequence[tuple[str, float]] | None) -> Observation:
    """One answer as a distribution: the top-k probabilities, else the token with 1."""
    if top:
        return {t: float(np.exp(lp)) for t, lp in top}
    return {token: 1.0}


def still_varying(border: BorderSet, runs: Sequence[Observations]) -> int:
    """How many of the set's inputs still show two first tokens over the reference and the
    given runs (the token method; with logprobs every input keeps its distribution)."""
    if border.method is Method.LOGPROBS:
        return len(border.prompts)
    count = 0
    for prompt in border.prompts:
        seen = {k for o in border.reference.get(prompt, ()) for k in o}
        seen |= {k for run in runs for o in run.get(prompt, ()) for k in o}
        count += len(seen) >= 2
    return count


def pooled(runs: Iterable[Observations]) -> dict[str, list[Observation]]:
    out: dict[str, list[Observation]] = {}
    for run in runs:
        for prompt, obs in run.items():
            out.setdefault(prompt, []).extend(obs)
    return out


def judge(target: Target, border: BorderSet, sampled: Sampled, baseline: Sequence[Observations],
          settings: FingerprintSettings, *, started_at: float,
          previous_at: float | None = None, duration_s: float = 0.0,
          reference: Sampled | None = None) -> FingerprintResult:
    """Today's observations against the trailing baseline (the latest runs; the reference
    when there are none) and against the reference: `reference`, the reference network's
    observations of the same run, when given, else the set's stored reference. "changed"
    when the first p-value is below alpha, else "differs from reference" when the second is;
    a reference network that answered too little leaves "not enough samples" (a change
    against the network's own baseline is still told)."""
    per_input = (settings.logprob_samples if border.method is Method.LOGPROBS
                 else settings.samples_per_input)
    planned = per_input * len(border.prompts)
    need = settings.min_samples * planned
    base = pooled(baseline) if baseline else dict(border.reference)
    vs_base = vs_ref = None
    if sampled.count >= need:
        vs_base = permutation_test(sampled.observations, base,
                                   permutations=settings.permutations, seed=settings.seed)
        if reference is not None:
            vs_ref = (permutation_test(sampled.observations, reference.observations,
                                       permutations=settings.permutations,
                                       seed=settings.seed + 1)
                      if reference.count >= need else None)
        else:
            vs_ref = (vs_base if not baseline else permutation_test(
                sampled.observations, border.reference, permutations=settings.permutations,
                seed=settings.seed + 1))
    error = sampled.error
    ref_name = target.reference if reference is not None else None
    if vs_base is None:
        verdict = Verdict.NOT_ENOUGH
        why = f"{sampled.count} of {planned} planned samples (at least {need:g})"
        error = "; ".join(part for part in (why, sampled.capped, sampled.error) if part)
    elif vs_base.smallest_p >= settings.alpha:  # a "same" that could never have been "changed"
        verdict = Verdict.NOT_ENOUGH
        held = sum(len(v) for v in base.values())
        why = (f"{sampled.count} samples against a baseline of {held}: too few for a p-value "
               f"below alpha {settings.alpha:g} (the smallest they allow is "
               f"{vs_base.smallest_p:.2g})")
        error = "; ".join(part for part in (why, sampled.error) if part)
    elif vs_base.p_value < settings.alpha:
        verdict = Verdict.CHANGED
    elif vs_ref is None:
        verdict = Verdict.NOT_ENOUGH
        got = reference.count if reference is not None else 0
        why = (f"the reference {ref_name} gave {got} of {planned} planned samples (at least "
               f"{need:g})")
        parts = (why, reference.capped, reference.error) if reference is not None else (why,)
        error = "; ".join(part for part in (*parts, sampled.error) if part)
    elif vs_ref.p_value < settings.alpha:
        verdict = Verdict.DIFFERS
    else:
        verdict = Verdict.SAME
    extra = reference if reference is not None else Sampled({})
    spend = (None if sampled.spend_usd is None and extra.spend_usd is None
             else (sampled.spend_usd or 0.0) + (extra.spend_usd or 0.0))
    return FingerprintResult(
        network=target.network, tier=target.tier, model=target.model, started_at=started_at,
        verdict=verdict, set_version=border.version, method=border.method,
        distance=None if vs_base is None else vs_base.statistic,
        p_value=None if vs_base is None else vs_base.p_value,
        reference_distance=None if vs_ref is None else vs_ref.statistic,
        reference_p_value=None if vs_ref is None else vs_ref.p_value,
        samples=sampled.count, requests=sampled.requests + extra.requests,
        failed=sampled.failed + extra.failed,
        output_tokens=sampled.output_tokens + extra.output_tokens, spend_usd=spend,
        alpha=settings.alpha, baseline_runs=len(baseline),
        changed_since=previous_at if verdict is Verdict.CHANGED else None,
        duration_s=duration_s, error=error, observations=sampled.observations,
        reference_network=ref_name)


def baseline_runs(history: Sequence[FingerprintResult], version: int, keep: int
                  ) -> list[FingerprintResult]:
    """The trailing baseline: the latest `keep` runs of this set version, none from before
    its latest change (a change starts the baseline afresh, with the changed run)."""
    runs: list[FingerprintResult] = []
    for r in reversed(history):  # newest first
        if r.set_version != version or r.verdict is Verdict.DISCOVERED:
            break
        if r.observations:
            runs.append(r)
        if r.verdict is Verdict.CHANGED or len(runs) >= keep:
            break
    return runs[:keep][::-1]


# -- the report's section ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FingerprintRow:
    """One (network, model) over the report's period: its latest verdict and its changes."""

    network: str
    model: str
    latest: FingerprintResult
    runs: int
    changes: tuple[float, ...]  # when each run that said "changed" started

    @property
    def verdict(self) -> Verdict:
        return self.latest.verdict


def fingerprint_rows(results: Sequence[FingerprintResult]) -> list[FingerprintRow]:
    groups: dict[tuple[str, str], list[FingerprintResult]] = {}
    for r in sorted(results, key=lambda r: r.started_at):
        groups.setdefault((r.network, r.model), []).append(r)
    rows = [FingerprintRow(*key, latest=rs[-1], runs=len(rs),
                           changes=tuple(r.started_at for r in rs
                                         if r.verdict is Verdict.CHANGED))
            for key, rs in groups.items()]
    order = {Verdict.CHANGED: 0, Verdict.DIFFERS: 1, Verdict.NOT_ENOUGH: 2,
             Verdict.DISCOVERED: 3, Verdict.SAME: 4}
    return sorted(rows, key=lambda r: (0 if r.changes else 1, order[r.verdict], r.network,
                                       r.model))


def day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def summary(row: FingerprintRow) -> str:
    """What a buyer reads: the change and its date, or the latest state."""
    if row.changes:
        return f"the model behind this name changed on {day(row.changes[-1])}"
    if row.verdict is Verdict.DIFFERS:
        return "differs from reference"
    return row.verdict.value


HEADERS = ("network", "model", "verdict", "TV vs baseline", "p", "reference",
           "TV vs reference", "p ref", "samples", "method", "set", "runs")


def reference_name(result: FingerprintResult) -> str:
    """The reference a run was compared with: a reference network, or the set's own."""
    return result.reference_network or f"set v{result.set_version}"


def row_cells(row: FingerprintRow) -> list[str]:
    v = row.latest
    return [row.network, row.model, summary(row), fixed(v.distance, 3),
            significant(v.p_value, 3), reference_name(v), fixed(v.reference_distance, 3),
            significant(v.reference_p_value, 3), str(v.samples), v.method.value,
            f"v{v.set_version}", str(row.runs)]


def _note(rows: Sequence[FingerprintRow]) -> str:
    alpha = rows[0].latest.alpha
    return (f"changed: a permutation test of today's first-token distributions on the border "
            f"inputs against the network's own trailing baseline, p below {alpha:g} (a "
            f"false alarm at most once in {1 / alpha:,.0f} runs on an unchanged model); a "
            "flag to investigate (docs/fingerprint.md).")


TITLE = "Fingerprint (did the model behind each name change? docs/fingerprint.md)"
# In a terminal the cells wrap rather than widen the table past its width; a table still too
# wide is shown transposed (one column a network and model).
COLUMNS = tuple(Column(h.replace(" vs ", "\nvs "), wrap=True) for h in HEADERS)


def section_text(rows: Sequence[FingerprintRow]) -> str:
    if not rows:
        return ""
    table = plain(COLUMNS, [row_cells(r) for r in rows])
    return "\n".join(["", TITLE, *table.splitlines(), _note(rows)]) + "\n"


def show_section(out: Console, rows: Sequence[FingerprintRow]) -> None:
    """The section on `out`: fitted to a terminal's width like the report's other tables,
    else section_text's plain lines."""
    if rows:
        sections.show_section(out, lambda: section_text(rows), TITLE, COLUMNS,
                              [row_cells(r) for r in rows], [_note(rows)], keys=1)


def section_markdown(rows: Sequence[FingerprintRow]) -> str:
    if not rows:
        return ""
    lines = ["", "## Fingerprint", "", "| " + " | ".join(HEADERS) + " |",
             "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in rows]
    return "\n".join([*lines, "", _note(rows)]) + "\n"


def row_json(row: FingerprintRow) -> dict[str, object]:
    v = row.latest
    return {"network": row.network, "model": row.model, "verdict": v.verdict.value,
            "summary": summary(row), "changed_on": [day(t) for t in row.changes],
            "distance": v.distance, "p_value": v.p_value,
            "reference_network": v.reference_network,
            "reference_distance": v.reference_distance,
            "reference_p_value": v.reference_p_value, "samples": v.samples,
            "requests": v.requests, "failed": v.failed, "method": v.method.value,
            "set_version": v.set_version, "alpha": v.alpha, "runs": row.runs,
            "tested_at": v.started_at}


def section_json(rows: Sequence[FingerprintRow]) -> list[dict[str, object]]:
    return [row_json(r) for r in rows]


def section_html(rows: Sequence[FingerprintRow]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join(
        f"<tr class='{'misses' if r.changes or r.verdict is Verdict.DIFFERS else 'meets'}'>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in row_cells(r)) + "</tr>" for r in rows)
    return (f"<h2>Fingerprint</h2><table><thead><tr>{head}</tr></thead><tbody>{body}"
            f"</tbody></table><p>{html.escape(_note(rows))}</p>\n")


def add_section(rendered: str, fmt: str, rows: Sequence[FingerprintRow]) -> str:
    """The report as rendered in `fmt`, with the fingerprint section added
    (the CSV stays one table: the verdicts are in the JSON)."""
    if not rows:
        return rendered
    return sections.add_section(
        rendered, fmt, "fingerprint", data=lambda: section_json(rows),
        html=lambda: section_html(rows), markdown=lambda: section_markdown(rows),
        text=lambda: section_text(rows))
