"""Model equality verdicts: one test from two sides' samples, and the report's section.

A verdict is "differs" when the permutation p-value is below the configured alpha, "same as
reference" otherwise, and "not enough samples" when either side got fewer than
`min_samples` of the planned completions (failures, caps) or the statistic does not exist.
docs/equality.md: what a verdict means and what it does not.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console

from monitor.analysis.mmd import can_test, permutation_test
from monitor.core.comparisons import by_comparison
from monitor.core.equality import (
    PROMPT_SETS,
    Comparison,
    EqualityResult,
    EqualitySettings,
    Sample,
    Sampled,
    Verdict,
    verdict_for,
)
from monitor.core.tables import Column, say, show


def judge(comparison: Comparison, network: Sampled, reference: Sequence[Sample],
          settings: EqualitySettings, *, started_at: float, differed_before: int = 0,
          duration_s: float = 0.0) -> EqualityResult:
    """Test the network's samples against the reference's; `differed_before` is how many
    tests in a row said "differs" before this one (the alert counts on)."""
    reference = [s for s in reference if s.prompt < settings.prompts]
    need = settings.min_samples * settings.planned_samples
    p_value = statistic = None
    if (len(network.samples) >= need and len(reference) >= need
            and can_test(network.samples, reference)):
        result = permutation_test(network.samples, reference, settings.chars,
                                  permutations=settings.permutations, seed=settings.seed)
        p_value, statistic = result.p_value, result.statistic
    verdict = verdict_for(p_value, settings.alpha)
    streak = {Verdict.DIFFERS: differed_before + 1, Verdict.SAME: 0}.get(verdict,
                                                                       differed_before)
    error = network.error
    if verdict is Verdict.NOT_ENOUGH:
        why = (f"{len(network.samples)} and {len(reference)} of {settings.planned_samples} "
               f"planned samples (at least {need:g} each)")
        error = "; ".join(part for part in (why, network.capped, network.error) if part)
    return EqualityResult(
        network=comparison.network, tier=comparison.tier, model=comparison.model,
        reference=comparison.reference, started_at=started_at, verdict=verdict,
        p_value=p_value, statistic=statistic, samples=len(network.samples),
        reference_samples=len(reference), requests=network.requests, failed=network.failed,
        spend_usd=network.spend_usd, prompt_set=settings.prompt_set,
        prompt_set_digest=PROMPT_SETS[settings.prompt_set].digest, alpha=settings.alpha,
        permutations=settings.permutations, consecutive_differs=streak,
        duration_s=duration_s, error=error)


# -- the report's section ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EqualityRow:
    """One (network, model, reference) over the report's period: its latest verdict."""

    network: str
    model: str
    reference: str
    latest: EqualityResult
    tests: int
    differed: int  # tests that said "differs"

    @property
    def verdict(self) -> Verdict:
        return self.latest.verdict


def equality_rows(verdicts: Sequence[EqualityResult]) -> list[EqualityRow]:
    """The latest verdict of each (network, model, reference), worst first."""
    rows = [EqualityRow(*key, latest=vs[-1], tests=len(vs),
                        differed=sum(v.verdict is Verdict.DIFFERS for v in vs))
            for key, vs in by_comparison(verdicts).items()]
    order = {Verdict.DIFFERS: 0, Verdict.NOT_ENOUGH: 1, Verdict.SAME: 2}
    return sorted(rows, key=lambda r: (order[r.verdict], r.network, r.model, r.reference))


HEADERS = ("network", "model", "reference", "verdict", "p-value", "samples net/ref", "differed",
           "prompt set", "tested")


def row_cells(row: EqualityRow, now: float | None = None) -> list[str]:
    v = row.latest
    p = "-" if v.p_value is None else f"{v.p_value:.3g}"
    return [row.network, row.model, row.reference, v.verdict.value, p,
            f"{v.samples}/{v.reference_samples}", f"{row.differed} of {row.tests}",
            v.prompt_set, _ago(v.started_at, now)]


def _ago(t: float, now: float | None) -> str:
    now = time.time() if now is None else now
    hours = max(now - t, 0) / 3600
    return f"{hours * 60:.0f} min ago" if hours < 1 else f"{hours:.1f} h ago"


TITLE = "Model equality (is each network serving the model it claims? docs/equality.md)"
# In a terminal the long names wrap rather than widen the table past its width.
COLUMNS = (Column("network", wrap=True), Column("model", wrap=True),
           Column("reference", wrap=True), Column("verdict"), Column("p-value", right=True),
           Column("samples\nnet/ref", right=True), Column("differed", right=True),
           Column("prompt\nset", wrap=True), Column("tested", wrap=True))


def _caption(rows: Sequence[EqualityRow]) -> str:
    return (f"differs: p-value below {rows[0].latest.alpha:g} (MMD, Hamming kernel, "
            f"{rows[0].latest.permutations} permutations); a flag to investigate, not "
            "proof of substitution: system prompts and decoding settings shift "
            "distributions too.")


def section_text(rows: Sequence[EqualityRow], now: float | None = None) -> str:
    """The report's plain-text section (the same lines in markdown and the table format)."""
    if not rows:
        return ""
    cells = [list(HEADERS)] + [row_cells(r, now) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    lines = ["", TITLE]
    for c in cells:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(c, widths, strict=True))
                     .rstrip())
    lines.append(_caption(rows))
    return "\n".join(lines) + "\n"


def show_section(out: Console, rows: Sequence[EqualityRow], now: float | None = None) -> None:
    """The section on `out`: fitted to a terminal's width like the report's other tables,
    else section_text's plain lines."""
    if not rows:
        return
    if not out.is_terminal:
        out.file.write(section_text(rows, now))
        return
    say(out)
    say(out, TITLE)
    show(out, COLUMNS, [row_cells(r, now) for r in rows])
    say(out, _caption(rows))


def section_markdown(rows: Sequence[EqualityRow], now: float | None = None) -> str:
    if not rows:
        return ""
    lines = ["", "## Model equality", "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row_cells(r, now)) + " |" for r in rows]
    lines += ["", f"*differs*: p-value below {rows[0].latest.alpha:g}; a flag to "
              "investigate, not proof of substitution (docs/equality.md)."]
    return "\n".join(lines) + "\n"


def section_json(rows: Sequence[EqualityRow]) -> list[dict[str, object]]:
    return [{"network": r.network, "model": r.model, "reference": r.reference,
             "verdict": r.verdict.value, "p_value": r.latest.p_value,
             "statistic": r.latest.statistic, "samples": r.latest.samples,
             "reference_samples": r.latest.reference_samples, "tests": r.tests,
             "differed": r.differed, "alpha": r.latest.alpha,
             "prompt_set": r.latest.prompt_set,
             "prompt_set_digest": r.latest.prompt_set_digest,
             "tested_at": r.latest.started_at} for r in rows]


def section_html(rows: Sequence[EqualityRow], now: float | None = None) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join(
        f"<tr class='{'misses' if r.verdict is Verdict.DIFFERS else 'meets'}'>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in row_cells(r, now)) + "</tr>"
        for r in rows)
    return (f"<h2>Model equality</h2><table><thead><tr>{head}</tr></thead><tbody>{body}"
            "</tbody></table><p>differs: p-value below "
            f"{rows[0].latest.alpha:g}; a flag to investigate, not proof of substitution "
            "(docs/equality.md).</p>\n")


def add_section(rendered: str, fmt: str, rows: Sequence[EqualityRow]) -> str:
    """The report as rendered in `fmt`, with the model equality section added (CSV stays
    one table: the verdicts are in the JSON format)."""
    if not rows:
        return rendered
    if fmt == "json":
        data = json.loads(rendered)
        data["model_equality"] = section_json(rows)
        return json.dumps(data, indent=2, default=str) + "\n"
    if fmt == "html" and "</body>" in rendered:
        head, _, tail = rendered.rpartition("</body>")
        return head + section_html(rows) + "</body>" + tail
    if fmt == "markdown":
        return rendered + section_markdown(rows)
    if fmt == "table":
        return rendered + section_text(rows)
    return rendered
