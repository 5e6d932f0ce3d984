"""The report's output formats by name (`depin-monitor report --format`)."""

from __future__ import annotations

from collections.abc import Callable

from monitor.analysis.report import Report
from monitor.analysis.report_html import render_html
from monitor.analysis.report_json import render_json
from monitor.analysis.report_text import render_csv, render_markdown, render_table

RENDERERS: dict[str, Callable[[Report], str]] = {
    "table": render_table, "markdown": render_markdown, "csv": render_csv,
    "json": render_json, "html": render_html,
}
