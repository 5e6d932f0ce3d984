"""The report as text: the terminal and plain tables (compact or wide), markdown and CSV.

The compact comparison keeps what a buyer decides on: runs, availability with its
interval, TTFT p95, decode rate, disconnects, wrong answers, rank and the SLA verdict; `wide`
adds the rest. Verdict reasons go on their own lines under the table, then the tier ladder and
the monthly SLA credits. Every cell is formatted here once, so all text formats agree.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.text import Text

from monitor.analysis import report_capacity, sla
from monitor.analysis.report import (
    GroupSummary,
    Report,
    Verdict,
    rank_cell,
    verdict_word,
)
from monitor.core.numbers import dollars, duration, fixed, percent
from monitor.core.result import OUTCOMES
from monitor.core.tables import Cell, Column, say, show

# -- cells ------------------------------------------------------------------------------------


def ci_pct(ci: tuple[float, float] | None) -> str:
    """`[lo-hi]` in percent, one word: a narrow column wraps before it, not inside it."""
    return "" if ci is None else f"[{ci[0] * 100:.1f}-{ci[1] * 100:.1f}]"


def ci_secs(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{duration(ci[0])}, {duration(ci[1])}]"


def cost_cell(g: GroupSummary) -> str:
    cost = dollars(g.effective_usd_per_mtok)
    if g.effective_usd_per_mtok is not None and g.list_usd_per_mtok:
        cost += f" (list {dollars(g.list_usd_per_mtok)})"
    return cost


_VERDICT_STYLE = {"MEETS": "green", "MEETS?": "green", "MISSES": "red", "MISSES?": "red"}


def verdict_text(word: str) -> Text:
    return Text(word, style=_VERDICT_STYLE.get(word, "dim"))


# (header, cell, right-aligned, may wrap), compact first; `wide` adds the second list.
Field = tuple[str, Callable[[GroupSummary], Cell], bool, bool]
BUYER_SIDE: Field = ("key/\ncredits", lambda g: str(g.buyer_side) if g.buyer_side else "-",
                     True, False)
COMPACT: tuple[Field, ...] = (
    ("runs", lambda g: str(g.runs), True, False),
    ("availability\n[95% CI]",
     lambda g: f"{percent(g.availability, 2)} {ci_pct(g.availability_ci)}",
     True, True),
    ("TTFT\np95", lambda g: duration(g.ttft_p95_s), True, False),
    ("decode\ntok/s", lambda g: fixed(g.decode_tps_median), True, False),
    ("disc.", lambda g: percent(g.disconnect_rate, 2), True, False),
    ("wrong", lambda g: percent(g.wrong_output_rate, 2), True, False),
    ("rank", rank_cell, True, False),
    ("SLA", lambda g: verdict_text(verdict_word(g)), False, False),
)
COMPACT_CAPTION = ("disc.: disconnects · wrong: wrong answers (of completed runs) · rank: 1 is "
                   "best, tied = no significant difference · SLA: verdict against the "
                   "network's profile (? = more runs needed); --wide shows every column")
WIDE: tuple[Field, ...] = (
    ("runs", lambda g: str(g.runs), True, False),
    ("availability\n[95% CI]",
     lambda g: f"{percent(g.availability, 2)} {ci_pct(g.availability_ci)}",
     True, True),
    ("excl.\n429", lambda g: percent(g.availability_excl_rate_limited, 2), True, False),
    BUYER_SIDE,
    ("TTFT\np50", lambda g: duration(g.ttft_p50_s), True, False),
    ("TTFT p95\n[95% CI]", lambda g: f"{duration(g.ttft_p95_s)} {ci_secs(g.ttft_p95_ci)}", True,
     True),
    ("E2E\np99", lambda g: duration(g.e2e_p99_s), True, False),
    ("decode\ntok/s", lambda g: fixed(g.decode_tps_median), True, False),
    ("disconnects\n[95% CI]",
     lambda g: f"{percent(g.disconnect_rate, 2)} {ci_pct(g.disconnect_ci)}",
     True, True),
    ("wrong\nanswers", lambda g: percent(g.wrong_output_rate, 2), True, False),
    ("nodes", lambda g: str(g.nodes), True, False),
    ("$/Mtok\ngood out", cost_cell, True, True),
    ("rank", rank_cell, True, False),
    ("SLA", lambda g: verdict_text(verdict_word(g)), False, False),
    ("profile", lambda g: g.profile, False, False),
)


def comparison(report: Report, wide: bool = False) -> tuple[list[Column], list[list[Cell]]]:
    fields = WIDE if wide else COMPACT
    if not wide and any(g.buyer_side for g in report.groups):
        # runs our own key or account spoiled: shown whenever there are any
        fields = (*fields[:2], BUYER_SIDE, *fields[2:])
    columns = [Column(name) for name in report.by]
    columns += [Column(header, right=right, wrap=wrap) for header, _, right, wrap in fields]
    rows = [[*g.key, *(cell(g) for _, cell, _, _ in fields)] for g in report.groups]
    return columns, rows


# -- lines under the table ----------------------------------------------------------------------

_RATES = (sla.SLI_AVAILABILITY, sla.SLI_DISCONNECT, sla.SLI_WRONG_OUTPUT)


def _sli_value(v: Verdict) -> str:
    if v.sli in _RATES:
        bound = ">=" if v.sli == sla.SLI_AVAILABILITY else "<="
        return f"{percent(v.value, 2)} (target {bound} {percent(v.target, 2)})"
    if v.sli == sla.SLI_DECODE:
        return f"{fixed(v.value)} tok/s (target >= {v.target:g})"
    return f"{duration(v.value)} (target <= {v.target:g} s)"


def reasons(g: GroupSummary) -> str | None:
    """Why the verdict is what it is, unless it is a clear MEETS: each SLI missed with its
    measured value and target, then the SLIs met so far that need more runs to be sure."""
    missed = [v for v in g.verdicts if v.verdict.startswith("misses")]
    unsure = [v.sli for v in g.verdicts if v.verdict == "meets?"]
    if not missed and not unsure:
        return None
    parts = [f"{v.sli} {_sli_value(v)}{'' if v.verdict == 'misses' else ' (not yet certain)'}"
             for v in sorted(missed, key=lambda v: v.verdict != "misses")]
    text = f"{g.label} ({g.profile}) {verdict_word(g)}: " + "; ".join(parts)
    if unsure:
        text += ("; " if missed else "every SLI met so far; ") + \
            f"more runs needed to be sure of {', '.join(unsure)}"
    return text


def ties(report: Report) -> list[str]:
    """One line per set of tied groups (a group whose partners were not named already)."""
    where = report.by.index("network") if "network" in report.by else None
    named: set[tuple[tuple[str, ...], str]] = set()
    lines = []
    for g in report.groups:
        name = g.key[where] if where is not None else g.label
        within = tuple(k for i, k in enumerate(g.key) if i != where) if where is not None else ()
        if g.tied_with and not any((within, other) in named for other in g.tied_with):
            prefix = f"{'/'.join(within)}: " if within else ""
            lines.append(f"{prefix}{name} is tied with {', '.join(g.tied_with)} (rank "
                         f"{g.rank}): no difference significant at 95 %")
            named.add((within, name))
    return lines


def period(report: Report) -> str:
    if report.first_at is None or report.last_at is None:
        return "no runs"
    fmt = "%Y-%m-%d %H:%M UTC"
    return (f"{time.strftime(fmt, time.gmtime(report.first_at))} to "
            f"{time.strftime(fmt, time.gmtime(report.last_at))}, {report.runs} runs")


def breakdown(report: Report) -> list[str]:
    lines = ["Outcomes per group:"]
    for g in report.groups:
        parts = [f"{o}={g.outcomes[o]}" for o in OUTCOMES if g.outcomes.get(o)]
        lines.append(f"  {g.label}: " + " ".join(parts))
    return lines


# -- the tier ladder and the months ------------------------------------------------------------


def ladder(report: Report) -> tuple[list[Column], list[list[Cell]]]:
    """Networks down, model tiers across: the verdict of each network on each tier."""
    tiers = sorted({c.tier for c in report.tiers})
    networks = sorted({c.network for c in report.tiers})
    cells = {(c.network, c.tier): c for c in report.tiers}
    columns = [Column("network", wrap=True)] + [Column(t, wrap=True) for t in tiers]
    rows: list[list[Cell]] = []
    for network in networks:
        row: list[Cell] = [network]
        for tier in tiers:
            cell = cells.get((network, tier))
            if cell is None:
                row.append(Text("-", style="dim"))
                continue
            shown = cell.verdict
            if cell.quality and cell.quality.startswith("worse") and "worse" not in shown:
                shown += " · answers worse"  # the profile does not require "not worse"
            row.append(Text(shown, style=_VERDICT_STYLE.get(cell.verdict.split(" (")[0],
                                                            "dim")))
        rows.append(row)
    return columns, rows


MONTH_COLUMNS = [Column("network", wrap=True), Column("month"), Column("runs", right=True),
                 Column("availability", right=True), Column("target", right=True),
                 Column("credit", right=True), Column("spend", right=True),
                 Column("owed", right=True)]


def months(report: Report) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for m in report.months:
        met = {True: "green", False: "red", None: "dim"}[m.met]
        rows.append([m.network, m.month + ("*" if m.partial else ""), str(m.runs),
                     Text(percent(m.availability, 3), style=met), percent(m.target, 2),
                     "-" if m.credit_share is None else f"{m.credit_share * 100:g}%",
                     dollars(m.spend_usd, 2), dollars(m.credit_usd, 2)])
    return rows


MONTHS_CAPTION = ("Monthly SLA credits: availability per UTC calendar month, maintenance "
                  "windows excluded; credit = the schedule's share for that availability x the "
                  "month's spend. * = runs on only part of the month.")


# -- whole renderings ------------------------------------------------------------------------------


def print_report(report: Report, console: Console, wide: bool = False) -> None:
    """The report on a console: fitted to a terminal, the plain layout elsewhere."""

    def table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], title: str,
              keys: int = 1) -> None:
        show(console, columns, rows, title=title, keys=keys)

    table(*comparison(report, wide), f"depin-monitor report - {period(report)}",
          keys=len(report.by))
    if not wide:
        say(console, COMPACT_CAPTION)
    for g in report.groups:
        why = reasons(g)
        if why:
            say(console, why)
    for tie in ties(report):
        say(console, tie)
    if report.tiers:
        say(console)
        table(*ladder(report), "Tier ladder: which model tiers met the SLA")
    if report.months:
        say(console)
        table(MONTH_COLUMNS, months(report), "SLA by calendar month")
        say(console, MONTHS_CAPTION)
    if report.capacity:
        say(console)
        say(console, report_capacity.TITLE)
        for line in report_capacity.statements(report.capacity):
            say(console, line)
        for title, columns, rows in report_capacity.curves(report.capacity):
            table(columns, rows, title)
        say(console, report_capacity.NOTE)
    say(console)
    for note in report.notes:
        say(console, note)
    for text in breakdown(report):
        say(console, text)


def render_table(report: Report, wide: bool = True) -> str:
    """The plain layout as text (`--format table -o FILE`)."""
    out = io.StringIO()
    print_report(report, Console(file=out, force_terminal=False, width=10_000), wide)
    return out.getvalue()


def _md_row(cells: Sequence[Cell]) -> str:
    text = [(c.plain if isinstance(c, Text) else c).replace("|", "/").replace("\n", " ")
            for c in cells]
    return "| " + " | ".join(text) + " |"


def _md_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> list[str]:
    return [_md_row([c.header for c in columns]),
            "|" + "".join("---:|" if c.right else "---|" for c in columns),
            *(_md_row(r) for r in rows)]


def render_markdown(report: Report) -> str:
    out = [f"# depin-monitor report\n\n{period(report)}; sources: "
           f"{', '.join(report.sources) or '-'}\n"]
    out += _md_table(*comparison(report, wide=True))
    out.append("")
    out += [f"- {why}" for g in report.groups if (why := reasons(g))]
    out += [f"- {tie}" for tie in ties(report)]
    if report.tiers:
        out += ["", "## Tier ladder: which model tiers met the SLA", ""]
        out += _md_table(*ladder(report))
    if report.months:
        out += ["", "## SLA by calendar month", ""]
        out += _md_table(MONTH_COLUMNS, months(report))
        out += ["", MONTHS_CAPTION]
    if report.capacity:
        out += ["", f"## {report_capacity.TITLE}", ""]
        out += [f"- {line}" for line in report_capacity.statements(report.capacity)]
        for title, columns, rows in report_capacity.curves(report.capacity):
            out += ["", f"**{title}**", "", *_md_table(columns, rows)]
        out += ["", report_capacity.NOTE]
    out.append("")
    out += list(report.notes)
    out.append("")
    out += breakdown(report)
    return "\n".join(out) + "\n"


def render_csv(report: Report) -> str:
    """One row per group; the tier ladder as the tiers each network met and missed."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    fields = [*report.by, "rank", "tied_with", "runs", "availability", "availability_lo",
              "availability_hi", "availability_excl_rate_limited", "buyer_side", "ttft_p50_s",
              "ttft_p95_s",
              "e2e_p50_s", "e2e_p99_s", "decode_tps_median", "disconnect_rate",
              "wrong_output_rate", "nodes", "effective_usd_per_mtok", "profile", "sla_met",
              "tiers_met", "tiers_missed", *(f"outcome_{o}" for o in OUTCOMES)]
    writer.writerow(fields)
    where = report.by.index("network") if "network" in report.by else None
    for g in report.groups:
        lo, hi = g.availability_ci or (None, None)
        network = g.key[where] if where is not None else None
        met = [c.tier for c in report.tiers if c.network == network and c.state == "met"]
        missed = [c.tier for c in report.tiers if c.network == network and c.state == "missed"]
        writer.writerow([*g.key, g.rank, " ".join(g.tied_with), g.runs, g.availability, lo, hi,
                         g.availability_excl_rate_limited, g.buyer_side, g.ttft_p50_s,
                         g.ttft_p95_s,
                         g.e2e_p50_s, g.e2e_p99_s, g.decode_tps_median, g.disconnect_rate,
                         g.wrong_output_rate, g.nodes, g.effective_usd_per_mtok, g.profile,
                         g.sla_met, " ".join(met), " ".join(missed),
                         *(g.outcomes.get(o, 0) for o in OUTCOMES)])
    return buf.getvalue()

