"""The report as one self-contained HTML page: the comparison, the verdict reasons, the tier
ladder, the monthly SLA credits, the capacity section and the charts (inline SVG from
monitor.analysis.charts), with its styles inline. Nothing is fetched when it is opened, so it
works offline and prints.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from rich.text import Text

from monitor.analysis import report_capacity
from monitor.analysis import report_text as text
from monitor.analysis.report import Report
from monitor.core.tables import Cell, Column

CHARTS_MISSING = ("Charts need matplotlib, which did not import: pip install "
                  "'depin-monitor[charts]' (or reinstall matplotlib). The numbers above are "
                  "complete without them.")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222;
       padding: 0 1em; }
table { border-collapse: collapse; font-size: 14px; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td.left, th.left { text-align: left; }
td.meets { background: #e3f6e5; } td.misses { background: #fbe4e4; }
td.dim { color: #888; }
figure.chart { margin: 1.5em 0; break-inside: avoid; }
figure.chart svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 13px; }
pre { background: #f8f8f8; padding: 1em; } ul.reasons li { margin: 0.2em 0; }
"""


_STYLE_CLASSES = {"green": "meets", "red": "misses", "dim": "dim"}  # the terminal's colours


def _cell(cell: Cell, column: Column) -> str:
    value = cell.plain if isinstance(cell, Text) else cell
    classes = []
    if not column.right:
        classes.append("left")
    if isinstance(cell, Text) and str(cell.style) in _STYLE_CLASSES:
        classes.append(_STYLE_CLASSES[str(cell.style)])
    cls = f" class='{' '.join(classes)}'" if classes else ""
    return f"<td{cls}>{html.escape(value)}</td>"


def _table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> str:
    head = "".join(f"<th{'' if c.right else ' class=left'}>{html.escape(c.header)}</th>"
                   for c in columns)
    body = "\n".join("<tr>" + "".join(_cell(cell, c) for cell, c in zip(row, columns,
                                                                           strict=True))
                     + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _charts(report: Report) -> str:
    try:
        from monitor.analysis.charts import charts
    except ImportError:  # matplotlib missing or broken
        return f"<p class='note'>{html.escape(CHARTS_MISSING)}</p>"
    return "\n".join(
        f"<figure class='chart' id='{c.name}'><h3>{html.escape(c.title)}</h3>\n{c.svg}\n"
        f"<figcaption>{html.escape(c.caption)}</figcaption></figure>"
        for c in charts(report))


def render_html(report: Report) -> str:
    reasons = [why for g in report.groups if (why := text.reasons(g))] + text.ties(report)
    parts = [
        f"<h1>depin-monitor report</h1>\n<p>{html.escape(text.period(report))}. Sources: "
        f"{html.escape(', '.join(report.sources) or '-')}. Intervals are 95 % (Wilson for "
        "rates, order statistics for percentiles).</p>",
        "<h2>Comparison</h2>",
        _table(*text.comparison(report, wide=True)),
    ]
    if reasons:
        parts.append("<ul class='reasons'>" + "".join(f"<li>{html.escape(r)}</li>"
                                                      for r in reasons) + "</ul>")
    if report.tiers:
        parts += ["<h2>Tier ladder: which model tiers met the SLA</h2>",
                  _table(*text.ladder(report))]
    if report.months:
        parts += ["<h2>SLA by calendar month</h2>",
                  _table(text.MONTH_COLUMNS, text.months(report)),
                  f"<p>{html.escape(text.MONTHS_CAPTION)}</p>"]
    if report.capacity:
        parts += [f"<h2>{html.escape(report_capacity.TITLE)}</h2>",
                  "<ul class='reasons'>" + "".join(
                      f"<li>{html.escape(line)}</li>"
                      for line in report_capacity.statements(report.capacity)) + "</ul>"]
        for title, columns, rows in report_capacity.curves(report.capacity):
            parts += [f"<h3>{html.escape(title)}</h3>", _table(columns, rows)]
        parts.append(f"<p>{html.escape(report_capacity.NOTE)}</p>")
    parts += ["<h2>Charts</h2>", _charts(report)]
    parts += [f"<p>{html.escape(n)}</p>" for n in report.notes]
    parts.append(f"<pre>{html.escape(chr(10).join(text.breakdown(report)))}</pre>")
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>depin-monitor report</title>\n<style>{STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")
