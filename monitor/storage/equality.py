"""Model equality verdicts in the store.

Table `equality_verdicts` (migration 004 of monitor.storage.schema): one row per test, the
fields of monitor.core.equality.EqualityResult. Tests are rare (every few hours), so a verdict
is written at once on a connection of its own, not through the batched run writer.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.core.comparisons import Comparison, in_a_row
from monitor.core.equality import EqualityResult, Verdict
from monitor.core.logs import OncePer
from monitor.core.times import MAX_TIME_S, MIN_TIME_S
from monitor.storage.domain import Ignored
from monitor.storage.files import read_table
from monitor.storage.filters import RunFilter
from monitor.storage.rows import column_types, sql_columns

log = logging.getLogger(__name__)
log.addFilter(OncePer(60.0))  # a failing store fails every verdict

TABLE = "equality_verdicts"
_COLUMNS = column_types(EqualityResult)
_FIELDS = tuple(_COLUMNS)
_NUMBERS = {name for name, kind in _COLUMNS.items() if kind is not str}


def create_table(db: sqlite_utils.Database) -> None:
    """Migration 004."""
    table = db.table(TABLE)
    table.create(sql_columns(_COLUMNS), if_not_exists=True)
    table.create_index(["network", "started_at"], index_name=f"{TABLE}_by_network",
                       if_not_exists=True)


def write_verdict(path: str | Path, result: EqualityResult) -> None:
    """Append one verdict (the store file must exist: monitor.storage.store.Store made it)."""
    conn = sqlite3.connect(str(path), timeout=30)
    try:
        with conn:
            row = dataclasses.asdict(result)
            row["verdict"] = result.verdict.value
            conn.execute(f"insert into {TABLE} ({', '.join(_FIELDS)}) values "
                         f"({', '.join('?' * len(_FIELDS))})", [row[f] for f in _FIELDS])
    finally:
        conn.close()


def read_verdicts(paths: Sequence[str | Path], *, since: float | None = None,
                  until: float | None = None, networks: Sequence[str] = (),
                  ignored: Ignored | None = None) -> list[EqualityResult]:
    """Verdicts from each store file, oldest first; a file from before migration 004 has none.
    FileNotFoundError for a missing file. A row this version cannot read (an unknown verdict,
    a value out of domain) is left out, counted in `ignored`."""
    out: list[EqualityResult] = []
    runs = RunFilter(since=since, until=until, networks=networks)
    for row in read_table(paths, TABLE, _FIELDS, runs.where()):
        result = _verdict(row)
        if result is not None:
            out.append(result)
        elif ignored is not None:
            ignored.add(TABLE)
    out.sort(key=lambda r: r.started_at)
    return out


_OPTIONAL = {"p_value", "statistic", "spend_usd"}


def _verdict(row: dict[str, Any]) -> EqualityResult | None:
    """The stored verdict, or None when a value is not one this version writes (an unknown
    verdict, text or infinity for a number, a time outside 1970-2200)."""
    try:
        row["verdict"] = Verdict(row["verdict"])
    except ValueError:
        return None
    for name in _FIELDS:
        value = row[name]
        if name in _NUMBERS:
            if value is None and name in _OPTIONAL:
                continue
            if (not isinstance(value, int | float) or not math.isfinite(value)
                    or abs(value) > 1e15):
                return None
        elif name == "error":
            row["error"] = value if isinstance(value, str) else ""
        elif name != "verdict" and not isinstance(value, str):
            return None
    if not MIN_TIME_S <= row["started_at"] <= MAX_TIME_S:
        return None
    return EqualityResult(**row)


def differs_in_a_row(verdicts: Sequence[EqualityResult]) -> dict[Comparison, int]:
    """(network, model, reference) -> how many of its latest verdicts said "differs" in a row
    (a test without enough samples neither breaks nor extends the run)."""
    return in_a_row(verdicts, Verdict.DIFFERS, Verdict.SAME)


class VerdictWriter:
    """A verdict sink (monitor.runtime.equality.VerdictSink) into a store file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_verdict(self, result: EqualityResult) -> None:
        try:
            write_verdict(self.path, result)
        except (sqlite3.Error, OSError) as exc:  # a failing store: one line, not a traceback
            log.error("model equality: the verdict on %s %s was not stored (%s)",
                      result.network, result.model, exc)
