"""Quality audit verdicts: one audit from the two sides' graded answers, and the report's
section.

Items are paired by their number in the audit; a pair counts when both sides answered
(a request that failed on either side leaves the item out; `refused` and `unparsed` answers
count as not correct). The verdict is "worse than reference" when McNemar's one-sided exact
p-value is below `alpha`, "not worse" otherwise, and "not enough items" when fewer than
`min_items` of the planned items were answered by both sides. docs/quality.md.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from monitor.analysis.paired import mcnemar_worse, paired_difference
from monitor.analysis.stats import wilson
from monitor.core.comparisons import by_comparison
from monitor.core.quality import (
    Answer,
    Asked,
    Cell,
    QualityComparison,
    QualityResult,
    QualitySettings,
    Verdict,
)
from monitor.core.quality_grading import Grade


def judge(comparison: QualityComparison, network: Asked, reference: Sequence[Answer],
          settings: QualitySettings, *, audit_id: str, seed: int, started_at: float,
          worse_before: int = 0, duration_s: float = 0.0) -> QualityResult:
    """The audit's verdict; `worse_before` is how many audits in a row said "worse" before
    this one (the alert counts on)."""
    ref = {a.index: a for a in reference if a.grade is not None}
    pairs = [(a, ref[a.index]) for a in network.answers
             if a.grade is not None and a.index in ref]
    n11 = sum(a.grade is Grade.CORRECT and r.grade is Grade.CORRECT for a, r in pairs)
    b = sum(a.grade is Grade.CORRECT and r.grade is not Grade.CORRECT for a, r in pairs)
    c = sum(a.grade is not Grade.CORRECT and r.grade is Grade.CORRECT for a, r in pairs)
    n00 = len(pairs) - n11 - b - c
    enough = len(pairs) > 0 and len(pairs) >= settings.min_items * settings.items
    p_value = mcnemar_worse(b, c) if enough else None
    verdict = (Verdict.NOT_ENOUGH if p_value is None else
               Verdict.WORSE if p_value < settings.alpha else Verdict.NOT_WORSE)
    streak = {Verdict.WORSE: worse_before + 1, Verdict.NOT_WORSE: 0}.get(verdict, worse_before)
    n = len(pairs)
    acc = wilson(n11 + b, n)
    ref_acc = wilson(n11 + c, n)
    diff = paired_difference(n11, b, c, n00)
    error = network.error
    if verdict is Verdict.NOT_ENOUGH:
        why = (f"{n} of {settings.items} items answered by both sides (at least "
               f"{settings.min_items * settings.items:g})")
        error = "; ".join(part for part in (why, network.capped, network.error) if part)
    return QualityResult(
        audit_id=audit_id, network=comparison.network, tier=comparison.tier,
        model=comparison.model, reference=comparison.reference, started_at=started_at,
        verdict=verdict, suite=settings.suite, seed=seed, items=settings.items, pairs=n,
        correct=n11 + b, reference_correct=n11 + c, network_only=b, reference_only=c,
        accuracy=(n11 + b) / n if n else None, accuracy_low=acc[0] if acc else None,
        accuracy_high=acc[1] if acc else None,
        reference_accuracy=(n11 + c) / n if n else None,
        reference_low=ref_acc[0] if ref_acc else None,
        reference_high=ref_acc[1] if ref_acc else None,
        difference=diff[0] if diff else None, difference_low=diff[1] if diff else None,
        difference_high=diff[2] if diff else None, p_value=p_value, alpha=settings.alpha,
        refused=sum(a.grade is Grade.REFUSED for a, _ in pairs),
        unparsed=sum(a.grade is Grade.UNPARSED for a, _ in pairs),
        requests=network.requests, failed=network.failed, spend_usd=network.spend_usd,
        consecutive_worse=streak, duration_s=duration_s, error=error,
        by_family=_cells(pairs, lambda a: a.family),
        by_difficulty=_cells(pairs, lambda a: str(a.difficulty)))


def _cells(pairs: Sequence[tuple[Answer, Answer]], key: Callable[[Answer], str]
           ) -> dict[str, Cell]:
    out: dict[str, list[int]] = {}
    for a, r in pairs:
        cell = out.setdefault(key(a), [0, 0, 0])
        cell[0] += 1
        cell[1] += a.grade is Grade.CORRECT
        cell[2] += r.grade is Grade.CORRECT
    return {k: Cell(*v) for k, v in sorted(out.items())}


# -- the report's section ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class QualityRow:
    """One (network, model, reference) over the report's period: its latest audit."""

    network: str
    model: str
    reference: str
    latest: QualityResult
    audits: int
    worse: int  # audits that said "worse than reference"

    @property
    def verdict(self) -> Verdict:
        return self.latest.verdict


def quality_rows(results: Sequence[QualityResult]) -> list[QualityRow]:
    """The latest audit of each (network, model, reference), worst first."""
    rows = [QualityRow(*key, latest=rs[-1], audits=len(rs),
                       worse=sum(r.verdict is Verdict.WORSE for r in rs))
            for key, rs in by_comparison(results).items()]
    order = {Verdict.WORSE: 0, Verdict.NOT_ENOUGH: 1, Verdict.NOT_WORSE: 2}
    return sorted(rows, key=lambda r: (order[r.verdict], r.network, r.model, r.reference))


def latest_by_network(results: Sequence[QualityResult]) -> dict[str, QualityRow]:
    """Each network's worst latest audit (for the ranking and the tier ladder)."""
    out: dict[str, QualityRow] = {}
    for row in quality_rows(results):
        out.setdefault(row.network, row)
    return out


HEADERS = ("network", "model", "reference", "verdict", "accuracy [95% CI]",
           "reference [95% CI]", "difference [95% CI]", "p", "pairs", "worse", "suite",
           "audited")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ci(value: float | None, low: float | None, high: float | None, sign: bool = False
        ) -> str:
    if value is None or low is None or high is None:
        return "-"
    f = "{:+.1f}" if sign else "{:.1f}"
    unit = " pts" if sign else "%"
    return f"{f.format(100 * value)}{unit} [{f.format(100 * low)}, {f.format(100 * high)}]"


def row_cells(row: QualityRow, now: float | None = None) -> list[str]:
    v = row.latest
    return [row.network, row.model, row.reference, v.verdict.value,
            _ci(v.accuracy, v.accuracy_low, v.accuracy_high),
            _ci(v.reference_accuracy, v.reference_low, v.reference_high),
            _ci(v.difference, v.difference_low, v.difference_high, sign=True),
            "-" if v.p_value is None else f"{v.p_value:.3g}", f"{v.pairs}/{v.items}",
            f"{row.worse} of {row.audits}", v.suite, _ago(v.started_at, now)]


def family_lines(row: QualityRow) -> list[str]:
    """Accuracy per family and difficulty, network vs reference, with Wilson intervals."""
    out = []
    for title, cells in (("family", row.latest.by_family),
                         ("difficulty", row.latest.by_difficulty)):
        parts = []
        for name, cell in (cells or {}).items():
            parts.append(f"{name} {_cell(cell.correct, cell.pairs)} vs "
                         f"{_cell(cell.reference_correct, cell.pairs)}")
        if parts:
            out.append(f"  {row.network} {row.model} by {title}: " + "; ".join(parts))
    return out


def _cell(k: int, n: int) -> str:
    ci = wilson(k, n)
    if ci is None:
        return "-"
    return f"{k}/{n} [{100 * ci[0]:.0f}-{100 * ci[1]:.0f}%]"


def _ago(t: float, now: float | None) -> str:
    now = time.time() if now is None else now
    hours = max(now - t, 0) / 3600
    return f"{hours * 60:.0f} min ago" if hours < 1 else f"{hours:.1f} h ago"


def _footnote(rows: Sequence[QualityRow]) -> str:
    alpha = rows[0].latest.alpha
    return (f"worse than reference: McNemar's exact one-sided p below {alpha:g} on the items "
            "both answered; intervals 95 % (Wilson; Newcombe for the paired difference); "
            "refused and unparsed answers count as not correct.")


def section_text(rows: Sequence[QualityRow], now: float | None = None) -> str:
    """The report's plain-text section (the table format)."""
    if not rows:
        return ""
    cells = [list(HEADERS)] + [row_cells(r, now) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    lines = ["", "Output quality (does each network answer as well as its reference? "
             "docs/quality.md)"]
    for c in cells:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(c, widths, strict=True))
                     .rstrip())
    for r in rows:
        lines += family_lines(r)
    lines.append(_footnote(rows))
    return "\n".join(lines) + "\n"


def section_markdown(rows: Sequence[QualityRow], now: float | None = None) -> str:
    if not rows:
        return ""
    lines = ["", "## Output quality", "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row_cells(r, now)) + " |" for r in rows]
    lines += [""] + [f"- {line.strip()}" for r in rows for line in family_lines(r)]
    lines += ["", f"*{_footnote(rows)}* (docs/quality.md)"]
    return "\n".join(lines) + "\n"


def _cells_json(cells: Mapping[str, Cell] | None) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for name, cell in (cells or {}).items():
        mine, theirs = wilson(cell.correct, cell.pairs), wilson(cell.reference_correct,
                                                                cell.pairs)
        out[name] = {"pairs": cell.pairs, "correct": cell.correct,
                     "reference_correct": cell.reference_correct,
                     "accuracy_ci": list(mine) if mine else None,
                     "reference_accuracy_ci": list(theirs) if theirs else None}
    return out


def result_json(r: QualityResult) -> dict[str, object]:
    """One audit as the report's JSON and /api/v1/quality show it."""
    return {"network": r.network, "tier": r.tier, "model": r.model, "reference": r.reference,
            "verdict": r.verdict.value, "suite": r.suite, "seed": r.seed, "items": r.items,
            "pairs": r.pairs, "accuracy": r.accuracy,
            "accuracy_ci": _pair(r.accuracy_low, r.accuracy_high),
            "reference_accuracy": r.reference_accuracy,
            "reference_accuracy_ci": _pair(r.reference_low, r.reference_high),
            "difference": r.difference,
            "difference_ci": _pair(r.difference_low, r.difference_high),
            "network_only": r.network_only, "reference_only": r.reference_only,
            "p_value": r.p_value, "alpha": r.alpha, "refused": r.refused,
            "unparsed": r.unparsed, "consecutive_worse": r.consecutive_worse,
            "by_family": _cells_json(r.by_family),
            "by_difficulty": _cells_json(r.by_difficulty), "audited_at": r.started_at}


def _pair(low: float | None, high: float | None) -> list[float] | None:
    return None if low is None or high is None else [low, high]


def section_json(rows: Sequence[QualityRow]) -> list[dict[str, object]]:
    return [{**result_json(r.latest), "audits": r.audits, "worse": r.worse} for r in rows]


def section_html(rows: Sequence[QualityRow], now: float | None = None) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join(
        f"<tr class='{'misses' if r.verdict is Verdict.WORSE else 'meets'}'>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in row_cells(r, now)) + "</tr>"
        for r in rows)
    details = "".join(f"<li>{html.escape(line.strip())}</li>" for r in rows
                      for line in family_lines(r))
    return (f"<h2>Output quality</h2><table><thead><tr>{head}</tr></thead><tbody>{body}"
            f"</tbody></table><ul>{details}</ul><p>{html.escape(_footnote(rows))} "
            "(docs/quality.md)</p>\n")


def add_section(rendered: str, fmt: str, rows: Sequence[QualityRow]) -> str:
    """The report as rendered in `fmt`, with the output quality section added."""
    if not rows:
        return rendered
    if fmt == "json":
        data = json.loads(rendered)
        data["quality"] = section_json(rows)
        return json.dumps(data, indent=2, default=str) + "\n"
    if fmt == "html" and "</body>" in rendered:
        head, _, tail = rendered.rpartition("</body>")
        return head + section_html(rows) + "</body>" + tail
    if fmt == "markdown":
        return rendered + section_markdown(rows)
    if fmt == "table":
        return rendered + section_text(rows)
    return rendered
