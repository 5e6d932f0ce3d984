"""A verdict family's section added to a report already rendered in one of its formats: the
one place that says where a section goes in each format (its own key in the JSON, before the
end of the HTML body, after the rest in markdown and the table format)."""

from __future__ import annotations

import json
from collections.abc import Callable


def add_section(rendered: str, fmt: str, key: str, *, data: Callable[[], object],
                html: Callable[[], str], markdown: Callable[[], str], text: Callable[[], str],
                csv: Callable[[], str] | None = None) -> str:
    """The report as rendered in `fmt` with a section added: `data` under `key` in the JSON,
    `html` before </body>, `markdown` or `text` after the rest; in CSV only a family with a
    table of its own (`csv`), else the CSV stays one table (the section is in the JSON)."""
    if fmt == "json":
        report = json.loads(rendered)
        report[key] = data()
        return json.dumps(report, indent=2, default=str) + "\n"
    if fmt == "html" and "</body>" in rendered:
        head, _, tail = rendered.rpartition("</body>")
        return head + html() + "</body>" + tail
    if fmt == "markdown":
        return rendered + markdown()
    if fmt == "table":
        return rendered + text()
    if fmt == "csv" and csv is not None:
        return rendered + csv()
    return rendered
