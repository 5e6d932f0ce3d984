"""The buyer's report: networks side by side from one or more stores, with 95 % confidence
intervals, SLA verdicts and effective cost. One summary builder over the aggregates of
monitor.analysis.queries (from rollups, raw rows or runs in memory); renderers below.
"""

from __future__ import annotations

import csv
import html
import io
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from monitor.analysis import report_capacity, sla
from monitor.analysis.capacity import TierCapacity
from monitor.analysis.queries import (
    Aggregate,
    GroupKey,
    Run,
    aggregate_rows,
    aggregate_stores,
)
from monitor.analysis.report_capacity import capacity_section
from monitor.analysis.stats import wilson
from monitor.core.result import OUTCOMES, Outcome
from monitor.core.slaprofile import ENTERPRISE, MaintenanceWindow, SLAProfile
from monitor.storage.filters import RunFilter

ROLLUP_NOTE = "quantiles from daily rollups: within 0.5 % of the exact values"


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
    buyer_side: int  # auth_error + quota_exhausted runs: left out of availability
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
    capacity: tuple[TierCapacity, ...] = field(default=())  # from the capacity ladders


@dataclass(frozen=True, slots=True)
class Judging:
    """What the groups are judged and priced by; `profiles` and `prices` by network name."""

    profiles: Mapping[str, SLAProfile] = field(default_factory=dict)
    default_profile: SLAProfile = ENTERPRISE
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


def build_report(
    rows: Iterable[Run],
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
    """The report over runs in memory (stored rows or ProbeResults), exact."""
    groups = aggregate_rows(rows, by=by, maintenance=maintenance)
    return _report(groups, by, Judging(profiles or {}, default_profile, prices or {}),
                   sources=sources, since=since, until=until, notes=())


def report_from_stores(
    paths: Sequence[str | Path],
    *,
    by: Sequence[str] = ("network",),
    profiles: Mapping[str, SLAProfile] | None = None,
    default_profile: SLAProfile = ENTERPRISE,
    prices: Mapping[str, Mapping[str, float]] | None = None,
    maintenance: Sequence[MaintenanceWindow] = (),
    since: float | None = None,
    until: float | None = None,
    networks: Sequence[str] = (),
    jobs: Sequence[str] = (),
) -> Report:
    """The report over store files (from their rollups when they all have them)."""
    aggregation = aggregate_stores(
        paths, by=by, runs=RunFilter(since=since, until=until, networks=networks, jobs=jobs),
        maintenance=maintenance)
    report = _report(aggregation.groups, by,
                     Judging(profiles or {}, default_profile, prices or {}),
                     sources=[str(p) for p in paths], since=since, until=until,
                     notes=(ROLLUP_NOTE,) if aggregation.from_rollups else ())
    return replace(report, capacity=capacity_section(
        paths, since=since, until=until, networks=networks, profiles=profiles,
        default_profile=default_profile))


def _report(groups: Mapping[GroupKey, Aggregate], by: Sequence[str], judging: Judging, *,
            sources: Sequence[str], since: float | None, until: float | None,
            notes: Sequence[str]) -> Report:
    # A group is judged by its network's profile; groups that mix networks by the default.
    where = list(by).index("network") if "network" in by else None
    summaries = []
    for key, group in sorted(groups.items()):
        network = key[where] if where is not None else "-"
        summaries.append(summarise(key, group, judging.profiles.get(network,
                                                                    judging.default_profile),
                                   judging.prices.get(network), network))
    return Report(time.time(), tuple(sources), since, until, tuple(by), tuple(summaries),
                  (*notes, *notes_for(summaries)))


def summarise(key: GroupKey, group: Aggregate, profile: SLAProfile,
              price: Mapping[str, float] | None, network: str) -> GroupSummary:
    """One row of the report: rates and intervals over every run of the group, verdicts over
    the runs outside maintenance windows."""
    every = group.every()
    runs, judged = every.runs, every.judged_runs
    ok = every.count(Outcome.OK)
    limited = every.count(Outcome.RATE_LIMITED)
    disconnects = every.count(Outcome.DISCONNECT)
    wrong = every.count(Outcome.WRONG_OUTPUT)
    done = every.completed
    start, end = group.first_at, group.last_at + 1e-6
    verdicts = sla.judge(group, profile, network=network, start=start, end=end).slis
    effective, listed = effective_cost(price, group.input_tokens, group.output_tokens,
                                       group.good_output_tokens)
    return GroupSummary(
        key=key, runs=runs, first_at=start, last_at=end, outcomes=dict(every.outcomes),
        availability=ok / judged if judged else None, availability_ci=wilson(ok, judged),
        availability_excl_rate_limited=ok / (judged - limited) if judged > limited else None,
        buyer_side=runs - judged,
        ttft_p50_s=every.ttft.quantile(0.5), ttft_p95_s=every.ttft.quantile(0.95),
        ttft_p95_ci=every.ttft.quantile_ci(0.95),
        e2e_p50_s=every.e2e.quantile(0.5), e2e_p99_s=every.e2e.quantile(0.99),
        e2e_p99_ci=every.e2e.quantile_ci(0.99),
        decode_tps_median=every.tps.quantile(0.5), decode_tps_ci=every.tps.quantile_ci(0.5),
        disconnect_rate=disconnects / judged if judged else None,
        disconnect_ci=wilson(disconnects, judged),
        wrong_output_rate=wrong / done if done else None,
        wrong_output_ci=wilson(wrong, done),
        output_tokens=group.output_tokens, good_output_tokens=group.good_output_tokens,
        nodes=len(group.nodes), profile=profile.name,
        verdicts=tuple(_verdict(s) for s in verdicts),
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
BUYER_SIDE_NOTE = ("key/credits = runs refused for the monitor's own account (auth_error: a bad "
                   "key; quota_exhausted: out of credits or quota): left out of availability, "
                   "disconnect rate and the SLA, not held against the network. Fix the account "
                   "(runbook DepinProbeMisconfigured): those runs measured nothing.")


def notes_for(summaries: Sequence[GroupSummary]) -> list[str]:
    notes = []
    if any(v.verdict.endswith("?") for s in summaries for v in s.verdicts):
        notes.append(UNSURE_NOTE)
    if any(s.buyer_side for s in summaries):
        notes.append(BUYER_SIDE_NOTE)
    return notes


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


HEADERS = ("runs", "availability [95% CI]", "excl. 429", "key/credits", "TTFT p50",
           "TTFT p95 [95% CI]", "E2E p99", "decode tok/s", "disconnects [95% CI]",
           "wrong answers", "nodes", "$/Mtok good out", "SLA")


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
        str(g.buyer_side) if g.buyer_side else "-",
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
    headers, rows = to_rows(report)
    table = Table(title=f"depin-monitor report - {_period(report)}", header_style="bold",
                  title_justify="left")
    for h in headers:
        table.add_column(h, overflow="fold")
    for g, row in zip(report.groups, rows, strict=True):
        style = {True: "green", False: "red", None: "dim"}[g.sla_met]
        table.add_row(*row[:-1], f"[{style}]{row[-1]}[/]")
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False)
    console.print(table)
    for note in report.notes:
        console.print(note)
    console.print(_breakdown_text(report))
    _capacity_tables(console, report)
    return out.getvalue()


def _capacity_tables(console: Console, report: Report) -> None:
    if not report.capacity:
        return
    console.print(f"\n{report_capacity.TITLE}", style="bold")
    for line in report_capacity.statements(report.capacity):
        console.print(f"  {line}", highlight=False)
    for title, headers, rows in report_capacity.curve_tables(report.capacity):
        table = Table(title=title, title_justify="left", header_style="bold", box=None)
        for h in headers:
            table.add_column(h, justify="right", overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(report_capacity.NOTE, highlight=False)


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
    capacity = report_capacity.markdown(report.capacity)
    return "\n".join(out) + "\n" + ("\n" + capacity if capacity else "")


def render_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    fields = [*report.by, "runs", "availability", "availability_lo", "availability_hi",
              "availability_excl_rate_limited", "buyer_side", "ttft_p50_s", "ttft_p95_s",
              "e2e_p50_s", "e2e_p99_s", "decode_tps_median", "disconnect_rate",
              "wrong_output_rate", "nodes", "effective_usd_per_mtok", "profile", "sla_met",
              *(f"outcome_{o}" for o in OUTCOMES)]
    writer.writerow(fields)
    for g in report.groups:
        lo, hi = g.availability_ci or (None, None)
        writer.writerow([*g.key, g.runs, g.availability, lo, hi,
                         g.availability_excl_rate_limited, g.buyer_side, g.ttft_p50_s,
                         g.ttft_p95_s, g.e2e_p50_s, g.e2e_p99_s, g.decode_tps_median,
                         g.disconnect_rate, g.wrong_output_rate, g.nodes,
                         g.effective_usd_per_mtok, g.profile, g.sla_met,
                         *(g.outcomes.get(o, 0) for o in OUTCOMES)])
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
    capacity = _capacity_html(report)
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
{capacity}
</body></html>
"""


def _capacity_html(report: Report) -> str:
    if not report.capacity:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>"
                    for line in report_capacity.statements(report.capacity))
    tables = []
    for title, headers, rows in report_capacity.curve_tables(report.capacity):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in rows)
        tables.append(f"<h3>{html.escape(title)}</h3><table><thead><tr>{head}</tr></thead>"
                      f"<tbody>{body}</tbody></table>")
    return (f"<h2>{html.escape(report_capacity.TITLE)}</h2><ul>{items}</ul>{''.join(tables)}"
            f"<p>{html.escape(report_capacity.NOTE)}</p>")


RENDERERS = {"table": render_table, "markdown": render_markdown, "csv": render_csv,
             "json": render_json, "html": render_html}
