"""Model equality verdicts in the store.

Table `equality_verdicts` (migration 004 of monitor.storage.store): one row per test, the
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

from monitor.core.equality import EqualityResult, Verdict
from monitor.core.logs import OncePer
from monitor.core.times import MAX_TIME_S, MIN_TIME_S
from monitor.storage.domain import Ignored

log = logging.getLogger(__name__)
log.addFilter(OncePer(60.0))  # a failing store fails every verdict

TABLE = "equality_verdicts"
_FIELDS = tuple(f.name for f in dataclasses.fields(EqualityResult))
_TYPES = {"started_at": "float", "p_value": "float", "statistic": "float", "spend_usd": "float",
          "alpha": "float", "duration_s": "float", "samples": "integer",
          "reference_samples": "integer", "requests": "integer", "failed": "integer",
          "permutations": "integer", "consecutive_differs": "integer"}


def create_table(conn: sqlite3.Connection) -> None:
    columns = ", ".join(f"{name} {_TYPES.get(name, 'text')}" for name in _FIELDS)
    conn.execute(f"create table if not exists {TABLE} ({columns})")
    conn.execute(f"create index if not exists {TABLE}_by_network on {TABLE} "
                 "(network, started_at)")


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
    where: list[str] = ["1"]
    params: list[object] = []
    if since is not None:
        where.append("started_at >= ?")
        params.append(since)
    if until is not None:
        where.append("started_at < ?")
        params.append(until)
    if networks:
        where.append(f"network in ({', '.join('?' * len(networks))})")
        params.extend(networks)
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such store file")
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
        try:
            if not conn.execute("select 1 from sqlite_master where name = ?", [TABLE]).fetchone():
                continue
            cursor = conn.execute(f"select {', '.join(_FIELDS)} from {TABLE} where "
                                  f"{' and '.join(where)} order by started_at", params)
            for values in cursor:
                result = _verdict(dict(zip(_FIELDS, values, strict=True)))
                if result is not None:
                    out.append(result)
                elif ignored is not None:
                    ignored.add(TABLE)
        finally:
            conn.close()
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
        if name in _TYPES:
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


def differs_in_a_row(verdicts: Sequence[EqualityResult]) -> dict[tuple[str, str, str], int]:
    """(network, model, reference) -> how many of its latest verdicts said "differs" in a row
    (a test without enough samples neither breaks nor extends the run)."""
    streak: dict[tuple[str, str, str], int] = {}
    for v in verdicts:  # oldest first
        key = (v.network, v.model, v.reference)
        if v.verdict is Verdict.DIFFERS:
            streak[key] = streak.get(key, 0) + 1
        elif v.verdict is Verdict.SAME:
            streak[key] = 0
        else:
            streak.setdefault(key, 0)
    return streak


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
