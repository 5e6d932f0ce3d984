"""The buyer's report: networks side by side from one or more stores, with 95 % confidence
intervals, SLA verdicts and effective cost. Pure functions over store rows; renderers below.
"""

from __future__ import annotations

import csv
import html
import io
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from monitor import sla
from monitor.result import OUTCOMES, Outcome
from monitor.slaprofile import ENTERPRISE, MaintenanceWindow, SLAProfile
from monitor.stats import median, quantile, quantile_ci, wilson

# Columns a report reads from the store.
COLUMNS = ("network", "target", "job", "location", "started_at", "outcome", "ttft_s",
           "duration_s", "tokens_per_s", "output_tokens", "input_tokens", "node")
GROUPINGS = ("network", "target", "job", "location")


@dataclass(frozen=True, slots=True)
class Verdict:
    sli: str
    target: float
    value: float | None
    verdict: str  # meets | misses | meets? | misses? | no data
    bad: int
    total: int


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """One row of the comparison: a network (or network x tier/job/location)."""

    key: tuple[str, ...]
    runs: int
    first_at: float
    last_at: float
    outcomes: dict[str, int]
    availability: float | None
    availability_ci: tuple[float, float] | None
    availability_excl_rate_limited: float | None
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    ttft_p95_ci: tuple[float, float] | None
    e2e_p50_s: float | None
    e2e_p99_s: float | None
    e2e_p99_ci: tuple[float, float] | None
    decode_tps_median: float | None
    decode_tps_ci: tuple[float, float] | None
    disconnect_rate: float | None
    disconnect_ci: tuple[float, float] | None
    wrong_output_rate: float | None  # of completed runs
    wrong_output_ci: tuple[float, float] | None
    output_tokens: int
    good_output_tokens: int
    nodes: int
    profile: str
    verdicts: tuple[Verdict, ...]
    effective_usd_per_mtok: float | None  # what 1M *good* output tokens really cost
    list_usd_per_mtok: float | None

    @property
    def sla_met(self) -> bool | None:
        judged = [v for v in self.verdicts if v.verdict != "no data"]
        return all(v.verdict.startswith("meets") for v in judged) if judged else None


@dataclass(frozen=True, slots=True)
class Report:
    generated_at: float
    sources: tuple[str, ...]
    since: float | None
    until: float | None
    by: tuple[str, ...]
    groups: tuple[GroupSummary, ...]
    notes: tuple[str, ...] = field(default=())


def build_report(
    rows: Iterable[Mapping[str, Any]],
    *,
    by: Sequence[str] = ("network",),
    profiles: Mapping[str, SLAProfile] | None = None,
    default_profile: SLAProfile = ENTERPRISE,
    prices: Mapping[str, Mapping[str, float]] | None = None,
    maintenance: Sequence[MaintenanceWindow] = (),
    sources: Sequence[str] = (),
    since: float | None = None,
    until: float | None = None,
) -> Report:
    """Summarise rows per group. `profiles` and `prices` are keyed by network name."""
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(str(row.get(k) or "-") for k in by)].append(row)
    summaries = [
        _summarise(key, members, (profiles or {}).get(members[0]["network"], default_profile),
                   (prices or {}).get(members[0]["network"]), maintenance)
        for key, members in sorted(groups.items())
    ]
    return Report(time.time(), tuple(sources), since, until, tuple(by), tuple(summaries),
                  tuple(notes_for(summaries)))


def _summarise(key: tuple[str, ...], rows: list[Mapping[str, Any]], profile: SLAProfile,
               price: Mapping[str, float] | None,
               maintenance: Sequence[MaintenanceWindow]) -> GroupSummary:
    outcomes = Counter(str(r["outcome"]) for r in rows)
    runs = len(rows)
    ok = outcomes.get(Outcome.OK.value, 0)
    limited = outcomes.get(Outcome.RATE_LIMITED.value, 0)
    disconnects = outcomes.get(Outcome.DISCONNECT.value, 0)
    wrong = outcomes.get(Outcome.WRONG_OUTPUT.value, 0)
    completed = ok + wrong
    ttfts = sorted(float(r["ttft_s"]) for r in rows if r["ttft_s"] is not None)
    done = [r for r in rows if r["outcome"] in (Outcome.OK.value, Outcome.WRONG_OUTPUT.value)]
    e2e = sorted(float(r["duration_s"]) for r in done if r["duration_s"] is not None)
    rates = sorted(float(r["tokens_per_s"]) for r in done if r["tokens_per_s"] is not None)
    out_tokens = sum(int(r["output_tokens"] or 0) for r in rows)
    in_tokens = sum(int(r["input_tokens"] or 0) for r in rows)
    good_tokens = sum(int(r["output_tokens"] or 0) for r in rows
                      if r["outcome"] == Outcome.OK.value)

    # Verdicts come from the SLA maths (one network, whole period of these rows).
    start = min(float(r["started_at"]) for r in rows)
    end = max(float(r["started_at"]) for r in rows) + 1e-6
    network = str(rows[0]["network"])
    judged = sla.evaluate(rows, profile, network=network, start=start, end=end,
                          maintenance=maintenance)
    verdicts = tuple(_verdict(s) for s in judged.slis)

    effective, listed = effective_cost(price, in_tokens, out_tokens, good_tokens)

    return GroupSummary(
        key=key, runs=runs, first_at=start, last_at=end, outcomes=dict(outcomes),
        availability=ok / runs if runs else None, availability_ci=wilson(ok, runs),
        availability_excl_rate_limited=ok / (runs - limited) if runs > limited else None,
        ttft_p50_s=quantile(ttfts, 0.5), ttft_p95_s=quantile(ttfts, 0.95),
        ttft_p95_ci=quantile_ci(ttfts, 0.95),
        e2e_p50_s=quantile(e2e, 0.5), e2e_p99_s=quantile(e2e, 0.99),
        e2e_p99_ci=quantile_ci(e2e, 0.99),
        decode_tps_median=median(rates), decode_tps_ci=quantile_ci(rates, 0.5),
        disconnect_rate=disconnects / runs if runs else None,
        disconnect_ci=wilson(disconnects, runs),
        wrong_output_rate=wrong / completed if completed else None,
        wrong_output_ci=wilson(wrong, completed),
        output_tokens=out_tokens, good_output_tokens=good_tokens,
        nodes=len({r["node"] for r in rows if r.get("node")}),
        profile=profile.name, verdicts=verdicts,
        effective_usd_per_mtok=effective, list_usd_per_mtok=listed,
    )


def effective_cost(price: Mapping[str, float] | None, input_tokens: int, output_tokens: int,
                   good_output_tokens: int) -> tuple[float | None, float | None]:
    """(USD per 1M good output tokens, list USD per 1M output tokens): every token billed,
    failed runs included, divided by the output tokens of ok runs."""
    if not price or ("output" not in price and "input" not in price):
        return None, None
    listed = float(price.get("output", 0.0))
    cost = (input_tokens * float(price.get("input", 0.0))
            + output_tokens * float(price.get("output", 0.0))) / 1e6
    return (cost / good_output_tokens * 1e6 if good_output_tokens else None), listed


UNSURE_NOTE = ("? = the 95 % interval of the measured rate contains the target: "
               "more runs are needed before the verdict is certain.")


def notes_for(summaries: Sequence[GroupSummary]) -> list[str]:
    return [UNSURE_NOTE] if any(v.verdict.endswith("?") for s in summaries
                                for v in s.verdicts) else []


def _verdict(s: sla.SLIResult) -> Verdict:
    if not s.total:
        return Verdict(s.sli, s.target, s.value, "no data", s.bad, s.total)
    lo, hi = wilson(s.bad, s.total) or (0.0, 1.0)
    budget = s.error_budget
    if s.attained:
        word = "meets" if hi <= budget else "meets?"
    else:
        word = "misses" if lo > budget else "misses?"
    return Verdict(s.sli, s.target, s.value, word, s.bad, s.total)


# -- rendering ----------------------------------------------------------------------------

def _pct(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v * 100:.{digits}f}%"


def _ci_pct(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]"


def _s(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"


def _ci_s(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{_s(ci[0])}, {_s(ci[1])}]"


def _num(v: float | None, fmt: str = ".1f") -> str:
    return "-" if v is None else format(v, fmt)


HEADERS = ("runs", "availability [95% CI]", "excl. 429", "TTFT p50", "TTFT p95 [95% CI]",
           "E2E p99", "decode tok/s", "disconnects [95% CI]", "wrong answers", "nodes",
           "$/Mtok good out", "SLA")


def sla_cell(g: GroupSummary) -> str:
    """MEETS / MISSES (with the SLIs missed); '?' when the data cannot yet tell for sure."""
    judged = [v for v in g.verdicts if v.verdict != "no data"]
    if not judged:
        return f"{g.profile}: no data"
    missed = [v for v in judged if v.verdict.startswith("misses")]
    if missed:
        sure = any(v.verdict == "misses" for v in missed)
        names = ", ".join(v.sli for v in missed)
        return f"{g.profile}: MISSES{'' if sure else '?'} ({names})"
    unsure = any(v.verdict.endswith("?") for v in judged)
    return f"{g.profile}: MEETS{'?' if unsure else ''}"


def _cells(g: GroupSummary) -> list[str]:
    cost = "-" if g.effective_usd_per_mtok is None else f"${g.effective_usd_per_mtok:.3f}"
    if g.effective_usd_per_mtok is not None and g.list_usd_per_mtok:
        cost += f" (list ${g.list_usd_per_mtok:.3f})"
    return [
        str(g.runs),
        f"{_pct(g.availability)} {_ci_pct(g.availability_ci)}",
        _pct(g.availability_excl_rate_limited),
        _s(g.ttft_p50_s),
        f"{_s(g.ttft_p95_s)} {_ci_s(g.ttft_p95_ci)}",
        _s(g.e2e_p99_s),
        _num(g.decode_tps_median),
        f"{_pct(g.disconnect_rate)} {_ci_pct(g.disconnect_ci)}",
        _pct(g.wrong_output_rate),
        str(g.nodes),
        cost,
        sla_cell(g),
    ]


def to_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    headers = [*report.by, *HEADERS]
    return headers, [[*g.key, *_cells(g)] for g in report.groups]


def _period(report: Report) -> str:
    if not report.groups:
        return "no runs"
    first = min(g.first_at for g in report.groups)
    last = max(g.last_at for g in report.groups)
    fmt = "%Y-%m-%d %H:%M UTC"
    return (f"{time.strftime(fmt, time.gmtime(first))} to {time.strftime(fmt, time.gmtime(last))}"
            f", {sum(g.runs for g in report.groups)} runs")


def render_table(report: Report, width: int = 200) -> str:
    from rich.console import Console
    from rich.table import Table

    headers, rows = to_rows(report)
    table = Table(title=f"depin-monitor report - {_period(report)}", header_style="bold",
                  title_justify="left")
    for h in headers:
        table.add_column(h, overflow="fold")
    for g, row in zip(report.groups, rows, strict=True):
        style = {True: "green", False: "red", None: "dim"}[g.sla_met]
        table.add_row(*row[:-1], f"[{style}]{row[-1]}[/]")
    console = Console(file=io.StringIO(), width=width, force_terminal=False)
    console.print(table)
    for note in report.notes:
        console.print(note)
    console.print(_breakdown_text(report))
    return console.file.getvalue()  # type: ignore[attr-defined]


def _breakdown_text(report: Report) -> str:
    lines = ["Outcomes per group:"]
    for g in report.groups:
        parts = [f"{o}={g.outcomes[o]}" for o in OUTCOMES if g.outcomes.get(o)]
        lines.append(f"  {'/'.join(g.key)}: " + " ".join(parts))
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    headers, rows = to_rows(report)
    out = [f"# depin-monitor report\n\n{_period(report)}; sources: "
           f"{', '.join(report.sources) or '-'}\n",
           "| " + " | ".join(headers) + " |",
           "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    out.append("")
    out += list(report.notes)
    out.append("")
    out.append(_breakdown_text(report))
    return "\n".join(out) + "\n"


def render_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    fields = [*report.by, "runs", "availability", "availability_lo", "availability_hi",
              "availability_excl_rate_limited", "ttft_p50_s", "ttft_p95_s", "e2e_p50_s",
              "e2e_p99_s", "decode_tps_median", "disconnect_rate", "wrong_output_rate", "nodes",
              "effective_usd_per_mtok", "profile", "sla_met",
              *(f"outcome_{o}" for o in OUTCOMES)]
    writer.writerow(fields)
    for g in report.groups:
        lo, hi = g.availability_ci or (None, None)
        writer.writerow([*g.key, g.runs, g.availability, lo, hi,
                         g.availability_excl_rate_limited, g.ttft_p50_s, g.ttft_p95_s,
                         g.e2e_p50_s, g.e2e_p99_s, g.decode_tps_median, g.disconnect_rate,
                         g.wrong_output_rate, g.nodes, g.effective_usd_per_mtok, g.profile,
                         g.sla_met, *(g.outcomes.get(o, 0) for o in OUTCOMES)])
    return buf.getvalue()


def render_json(report: Report) -> str:
    data = asdict(report)
    for g, raw in zip(report.groups, data["groups"], strict=True):
        raw["group"] = dict(zip(report.by, g.key, strict=True))
        raw["sla_met"] = g.sla_met
    return json.dumps(data, indent=2, default=str) + "\n"


def render_html(report: Report) -> str:
    headers, rows = to_rows(report)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for g, row in zip(report.groups, rows, strict=True):
        cls = {True: "meets", False: "misses", None: "nodata"}[g.sla_met]
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in row[:-1])
        body.append(f"<tr>{cells}<td class='{cls}'>{html.escape(row[-1])}</td></tr>")
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in report.notes)
    breakdown = html.escape(_breakdown_text(report))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>depin-monitor report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f4f4f4; }} td:first-child {{ text-align: left; font-weight: 600; }}
.meets {{ background: #e3f6e5; }} .misses {{ background: #fbe4e4; }} .nodata {{ color: #888; }}
pre {{ background: #f8f8f8; padding: 1em; }}
</style></head><body>
<h1>depin-monitor report</h1>
<p>{html.escape(_period(report))}. Sources: {html.escape(', '.join(report.sources) or '-')}.
Intervals are 95 % (Wilson for rates, order statistics for percentiles).</p>
<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>
{notes}<pre>{breakdown}</pre>
</body></html>
"""


RENDERERS = {"table": render_table, "markdown": render_markdown, "csv": render_csv,
             "json": render_json, "html": render_html}
