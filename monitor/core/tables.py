"""Tables the CLI prints: one description, two layouts.

In a terminal, rich measures the width and fits the table to it (long cells wrap onto more
lines; values that must stay whole are cut with an ellipsis rather than overflow). When the
output is not a terminal (a pipe, a file, CI logs) the layout is plain and stable: one line a
row, columns padded with spaces, no colour, whatever the width, so scripts and diffs can
rely on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

Cell = str | Text


@dataclass(frozen=True, slots=True)
class Column:
    header: str  # "a\nb": two lines in a terminal, "a b" in plain text ("dis-\nc": "disc")
    right: bool = False  # right-aligned (numbers)
    wrap: bool = False  # may wrap onto several lines in a narrow terminal; else kept whole


def fitted(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *,
           title: str | None = None, caption: str | None = None) -> Table:
    """A rich table for a terminal: the console it is printed on fits it to its width."""
    table = Table(box=box.SIMPLE_HEAD, title=title, caption=caption, title_justify="left",
                  caption_justify="left", header_style="bold", show_edge=False,
                  pad_edge=False, padding=(0, 1), collapse_padding=True)
    for c in columns:
        table.add_column(c.header, justify="right" if c.right else "left", no_wrap=not c.wrap,
                         overflow="fold" if c.wrap else "ellipsis",
                         min_width=max(map(len, c.header.split())) if c.wrap else None)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
    return table


def transposed(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *, keys: int = 1
               ) -> tuple[list[Column], list[list[Cell]]]:
    """Fields down, rows across (headed by their first `keys` cells): how a table with many
    columns and few rows fits a narrow terminal."""
    out_columns = [Column("/".join(one_line(c.header) for c in columns[:keys]), wrap=True)]
    out_columns += [Column("/".join(_text(c) for c in row[:keys]), right=True, wrap=True)
                    for row in rows]
    out_rows: list[list[Cell]] = [[one_line(c.header), *(row[i] for row in rows)]
                                  for i, c in enumerate(columns) if i >= keys]
    return out_columns, out_rows


def one_line(header: str) -> str:
    """A header on one line: "a\nb" -> "a b", a hyphenated break "dis-\nc" -> "disc"."""
    return header.replace("-\n", "").replace("\n", " ")


def fits(out: Console, table: Table) -> bool:
    """Whether the table fits the console's width without wrapping or cutting a cell."""
    natural = Measurement.get(out, out.options.update_width(1 << 20), table)
    return natural.maximum <= out.width


def plain(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> str:
    """The stable layout: a header line and one line a row, columns two spaces apart."""
    lines = [[one_line(c.header) for c in columns]]
    lines += [[_text(cell) for cell in row] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    out = []
    for line in lines:
        cells = [cell.rjust(w) if c.right else cell.ljust(w)
                 for c, w, cell in zip(columns, widths, line, strict=True)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def _text(cell: Cell) -> str:
    text = cell.plain if isinstance(cell, Text) else cell
    return " ".join(text.split())  # one line a row


def console() -> Console:
    """The console for stdout; `is_terminal` decides between fitted and plain."""
    return Console(highlight=False)


def show(out: Console, columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *,
         title: str | None = None, caption: str | None = None, keys: int | None = None
         ) -> None:
    """Print a table the way `out` wants it: fitted in a terminal, plain elsewhere. With
    `keys`, a table too wide for the terminal that has fewer rows than fields is shown
    transposed (fields down, rows across, headed by their first `keys` cells), if that can
    be narrow enough."""
    if out.is_terminal:
        table = fitted(columns, rows, title=title, caption=caption)
        if keys is not None and len(rows) < len(columns) - keys and not fits(out, table):
            turned = transposed(columns, rows, keys=keys)
            if _narrowest(turned[0]) <= out.width:
                table = fitted(*turned, title=title, caption=caption)
        out.print(table)
        return
    if title:
        say(out, title)
    out.file.write(plain(columns, rows))
    if caption:
        say(out, caption)


def _narrowest(columns: Sequence[Column]) -> int:
    """How narrow a fitted table of wrapping columns can be: each as wide as its header's
    longest word (fitted's least width), a space on either side of the gaps between them."""
    return sum(max(map(len, c.header.split()), default=0) for c in columns) + 2 * (len(columns) - 1)


def say(out: Console, text: str = "") -> None:
    """A line of prose: wrapped at word boundaries in a terminal, one line elsewhere."""
    if out.is_terminal:
        out.print(text, highlight=False, markup=False)
    else:
        out.file.write(text + "\n")
