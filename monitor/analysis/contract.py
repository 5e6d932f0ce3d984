"""What the contract runs say over a period, per network and model: the tool-call error rate
with its Wilson interval, the grades and the `finish_reason` distribution, the latest parameter
matrix, the parameters that stopped being honoured, and a paired comparison with the reference
(the same items at the same time; McNemar's exact test on the discordant pairs). The report's
section in every format; `/api/v1/contract` and the status page read `section_json`.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console

from monitor.analysis import sections
from monitor.analysis.ranking import newcombe
from monitor.analysis.stats import wilson
from monitor.core.contract import Cell, ContractRun, Grade, Param
from monitor.core.numbers import significant
from monitor.core.tables import Column, plain


def mcnemar_exact(b: int, c: int) -> float | None:
    """Two-sided exact McNemar p-value for b and c discordant pairs (a binomial test of
    b against n = b + c at 1/2); None without a discordant pair."""
    n = b + c
    if n == 0:
        return None
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return float(min(1.0, 2 * tail))


@dataclass(frozen=True, slots=True)
class Paired:
    """The network against its reference on the same items of the same runs."""

    reference: str
    pairs: int
    worse: int  # wrong on the network, right on the reference
    better: int  # right on the network, wrong on the reference
    p_value: float | None


@dataclass(frozen=True, slots=True)
class ContractRow:
    network: str
    model: str
    runs: int
    graded: int  # tool answers graded (failed requests are not)
    errors: int  # graded, not ok
    failed: int  # requests that failed (no grade)
    interval: tuple[float, float] | None  # 95 % Wilson interval of the error rate
    grades: dict[str, int]
    finish_reasons: dict[str, int]
    cells: dict[str, tuple[str, str]]  # param -> (cell, detail) of the latest run
    regressed: tuple[str, ...]  # honoured in an earlier run of the period, not in the latest
    paired: Paired | None = None
    last_at: float = 0.0
    suite: str = ""
    rank: int | None = None  # by the tool-call error rate, honest ties (rank_rows)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.graded if self.graded else None


def paired_with_reference(runs: Sequence[ContractRun], refs: dict[str, ContractRun]
                          ) -> Paired | None:
    """`runs` of one network and model against the reference runs in `refs` (by run id)
    that started within a minute of each, item by item (streamed or not)."""
    worse = better = pairs = 0
    reference = ""
    for run in runs:
        if run.reference is None:
            continue
        ref = next((r for r in refs.values() if r.network == run.reference
                    and abs(r.started_at - run.started_at) < 60 and r.suite == run.suite), None)
        if ref is None:
            continue
        reference = run.reference
        theirs = {(g.item, g.stream): g.grade for g in ref.grades if g.grade is not None}
        for g in run.grades:
            other = theirs.get((g.item, g.stream))
            if g.grade is None or other is None:
                continue
            pairs += 1
            mine_ok, ref_ok = g.grade is Grade.OK, other is Grade.OK
            worse += ref_ok and not mine_ok
            better += mine_ok and not ref_ok
    if not pairs:
        return None
    return Paired(reference, pairs, worse, better, mcnemar_exact(worse, better))


def contract_rows(runs: Sequence[ContractRun]) -> list[ContractRow]:
    """One row per (network, model), worst tool-call error rate first."""
    groups: dict[tuple[str, str], list[ContractRun]] = {}
    for run in sorted(runs, key=lambda r: r.started_at):
        groups.setdefault((run.network, run.model), []).append(run)
    by_id = {r.run_id: r for r in runs}
    rows = []
    for (network, model), mine in groups.items():
        graded = [g for r in mine for g in r.grades if g.grade is not None]
        errors = sum(g.grade is not Grade.OK for g in graded)
        latest = mine[-1]
        cells = {c.param.value: (c.cell.value, c.detail) for c in latest.cells}
        honoured_before = {c.param.value for r in mine[:-1] for c in r.cells
                           if c.cell is Cell.HONOURED}
        regressed = tuple(p for p, (cell, _) in cells.items() if p in honoured_before
                          and cell in (Cell.IGNORED.value, Cell.REJECTED.value))
        rows.append(ContractRow(
            network=network, model=model, runs=len(mine), graded=len(graded), errors=errors,
            failed=sum(g.grade is None for r in mine for g in r.grades),
            interval=wilson(errors, len(graded)),
            grades=dict(Counter(g.grade.value for g in graded if g.grade is not None)),
            finish_reasons=dict(Counter(g.finish_reason or "none"
                                        for r in mine for g in r.grades)),
            cells=cells, regressed=regressed, paired=paired_with_reference(mine, by_id),
            last_at=latest.started_at, suite=latest.suite))
    return rank_rows(rows)


def rank_rows(rows: Sequence[ContractRow]) -> list[ContractRow]:
    """The rows ranked by the tool-call error rate, as the report ranks networks: one is placed
    above another only when the 95 % interval of the difference of their shares of right
    answers (Newcombe's hybrid score interval) excludes zero; rank = 1 + the rows that beat
    it, so rows nothing separates share a rank. Rows without a graded answer get none.
    Sorted best first."""
    placed = []
    for r in rows:
        if not r.graded:
            placed.append(dataclasses.replace(r, rank=None))
            continue
        beaten = 0
        for other in rows:
            if other is r or not other.graded:
                continue
            d = newcombe(other.graded - other.errors, other.graded, r.graded - r.errors,
                         r.graded)
            beaten += d is not None and d[0] > 0.0
        placed.append(dataclasses.replace(r, rank=1 + beaten))
    return sorted(placed, key=lambda r: (r.rank is None, r.rank or 0, r.error_rate or 0.0,
                                         r.network, r.model))


# -- the report's section ------------------------------------------------------------------

PARAM_SHORT = {Param.MAX_TOKENS.value: "max_tokens", Param.STOP.value: "stop",
               Param.JSON_OBJECT.value: "json_object", Param.JSON_SCHEMA.value: "json_schema",
               Param.SEED.value: "seed", Param.LOGPROBS.value: "logprobs",
               Param.INCLUDE_USAGE.value: "usage", Param.REASONING.value: "reasoning"}
CELL_SHORT = {Cell.HONOURED.value: "ok", Cell.IGNORED.value: "IGNORED",
              Cell.REJECTED.value: "rejected", Cell.NOT_APPLICABLE.value: "n/a",
              Cell.UNMEASURED.value: "-"}


def _rate(row: ContractRow) -> str:
    if row.error_rate is None:
        return "-"
    low, high = row.interval or (0.0, 0.0)
    return f"{row.error_rate:.0%} [{low:.0%}-{high:.0%}]"


def _paired_text(row: ContractRow) -> str:
    p = row.paired
    if p is None:
        return "-"
    pv = significant(p.p_value, 2)
    return f"vs {p.reference}: {p.worse} worse, {p.better} better, p={pv}"


def _top_grades(row: ContractRow) -> str:
    wrong = {g: n for g, n in row.grades.items() if g != Grade.OK.value}
    return ", ".join(f"{g} {n}" for g, n in sorted(wrong.items(), key=lambda x: -x[1])) or "-"


def _finish(row: ContractRow) -> str:
    total = sum(row.finish_reasons.values()) or 1
    return ", ".join(f"{k} {v / total:.0%}" for k, v in
                     sorted(row.finish_reasons.items(), key=lambda x: -x[1]))


def _table(rows: Sequence[ContractRow]) -> tuple[list[str], list[list[str]]]:
    params = [p.value for p in Param if any(p.value in r.cells for r in rows)]
    headers = ["rank", "network", "model", "tool errors [95% CI]", "wrong answers",
               *[PARAM_SHORT[p] for p in params]]
    body = [["-" if r.rank is None else str(r.rank), r.network, r.model, _rate(r),
             _top_grades(r),
             *[CELL_SHORT[r.cells[p][0]] if p in r.cells else "" for p in params]]
            for r in rows]
    return headers, body


TITLE = "API contract (tool calls and parameters; docs/contract.md)"
LEGEND = ("rank: by tool-call errors, tied unless the difference is significant at 95 %; ok: "
          "honoured; IGNORED: sent and not obeyed; rejected: a 4xx; n/a: the model has no "
          "such control; -: not measured.")


def _notes(r: ContractRow) -> str:
    notes = [f"finish_reason {_finish(r)}"]
    if r.paired is not None:
        notes.append(_paired_text(r))
    if r.regressed:
        notes.append("no longer honoured: " + ", ".join(r.regressed))
    return f"  {r.network} {r.model}: " + "; ".join(notes)


def section_text(rows: Sequence[ContractRow]) -> str:
    """The report's plain-text section: the matrix, then each row's comparison."""
    if not rows:
        return ""
    headers, body = _table(rows)
    lines = ["", TITLE, *plain([Column(h) for h in headers], body).splitlines()]
    lines += [_notes(r) for r in rows]
    lines.append(LEGEND)
    return "\n".join(lines) + "\n"


def show_section(out: Console, rows: Sequence[ContractRow]) -> None:
    """The section on `out`: fitted to a terminal's width like the report's other tables
    (transposed when still too wide: one column a network and model), else section_text's
    plain lines."""
    if not rows:
        return
    headers, body = _table(rows)
    sections.show_section(out, lambda: section_text(rows), TITLE,
                          [Column(h.replace(" [", "\n["), wrap=True) for h in headers], body,
                          [*(_notes(r) for r in rows), LEGEND], keys=2)


def section_markdown(rows: Sequence[ContractRow]) -> str:
    if not rows:
        return ""
    headers, body = _table(rows)
    lines = ["", "## API contract", "", "| " + " | ".join(headers) + " |",
             "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(b) + " |" for b in body]
    lines.append("")
    for r in rows:
        notes = [f"finish_reason {_finish(r)}"]
        if r.paired is not None:
            notes.append(_paired_text(r))
        if r.regressed:
            notes.append("**no longer honoured**: " + ", ".join(r.regressed))
        lines.append(f"- {r.network} {r.model}: " + "; ".join(notes))
    lines += ["", "*rank*: by tool-call errors, tied unless the difference is significant at "
              "95 %; *ok*: honoured; *IGNORED*: sent and not obeyed; *rejected*: a 4xx; "
              "*n/a*: the model has no such control (docs/contract.md)."]
    return "\n".join(lines) + "\n"


def section_json(rows: Sequence[ContractRow]) -> list[dict[str, object]]:
    return [{
        "network": r.network, "model": r.model, "rank": r.rank, "suite": r.suite,
        "runs": r.runs,
        "graded": r.graded, "errors": r.errors, "failed": r.failed,
        "error_rate": r.error_rate,
        "error_rate_interval": list(r.interval) if r.interval else None,
        "grades": r.grades, "finish_reasons": r.finish_reasons,
        "params": {p: {"cell": c, "detail": d} for p, (c, d) in r.cells.items()},
        "regressed": list(r.regressed),
        "reference": None if r.paired is None else {
            "network": r.paired.reference, "pairs": r.paired.pairs,
            "worse": r.paired.worse, "better": r.paired.better,
            "p_value": r.paired.p_value},
        "checked_at": r.last_at} for r in rows]


def section_html(rows: Sequence[ContractRow]) -> str:
    if not rows:
        return ""
    headers, body = _table(rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    trs = "".join(
        f"<tr class='{'misses' if r.errors or r.regressed else 'meets'}'>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in b) + "</tr>"
        for r, b in zip(rows, body, strict=True))
    notes = "".join(f"<li>{html.escape(r.network)} {html.escape(r.model)}: finish_reason "
                    f"{html.escape(_finish(r))}"
                    + (f"; {html.escape(_paired_text(r))}" if r.paired else "")
                    + (f"; no longer honoured: {html.escape(', '.join(r.regressed))}"
                       if r.regressed else "") + "</li>" for r in rows)
    return (f"<h2>API contract</h2><table><thead><tr>{head}</tr></thead><tbody>{trs}"
            f"</tbody></table><ul>{notes}</ul><p>ok: honoured; IGNORED: sent and not obeyed; "
            "rejected: a 4xx; n/a: the model has no such control (docs/contract.md).</p>\n")


def section_csv(rows: Sequence[ContractRow]) -> str:
    """The matrix as a second CSV table, after a blank line."""
    if not rows:
        return ""
    headers, body = _table(rows)
    out = ["", ",".join(headers)]
    out += [",".join(f'"{c}"' if "," in c else c for c in b) for b in body]
    return "\n".join(out) + "\n"


def add_section(rendered: str, fmt: str, rows: Sequence[ContractRow]) -> str:
    """The report as rendered in `fmt`, with the contract section added."""
    if not rows:
        return rendered
    return sections.add_section(
        rendered, fmt, "contract", data=lambda: section_json(rows),
        html=lambda: section_html(rows), markdown=lambda: section_markdown(rows),
        text=lambda: section_text(rows), csv=lambda: section_csv(rows))
