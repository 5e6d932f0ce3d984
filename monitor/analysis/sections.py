"""A verdict family's section of the report: where it goes in each rendered format (its own
key in the JSON, before the end of the HTML body, after the rest in markdown and the table
format), and how it shows on a console (fitted to a terminal like the report's tables, its
plain lines elsewhere)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from rich.console import Console

from monitor.core.tables import Cell, Column, say, show


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


def show_section(out: Console, plain: Callable[[], str], title: str, columns: Sequence[Column],
                 rows: Sequence[Sequence[Cell]], notes: Sequence[str] = (), *,
                 keys: int | None = None) -> None:
    """A section on `out`: in a terminal its title, its table fitted (with `keys`, turned on
    its side when a few rows are too wide; see tables.show) and its notes wrapped; elsewhere
    its `plain` text as it is."""
    if not out.is_terminal:
        out.file.write(plain())
        return
    say(out)
    say(out, title)
    show(out, columns, rows, keys=keys)
    for note in notes:
        say(out, note)
