"""Fingerprints in the store (migrations 009 and 011 of monitor.storage.schema).

- `fingerprint_sets`: one row per (network, model, version): the border inputs and their
  reference observations (JSON), how they were found and what finding them cost;
- `fingerprint_verdicts`: one row per run, the fields of
  monitor.core.fingerprint.FingerprintResult, today's observations as JSON (the next runs'
  trailing baseline is read back from them after a restart); `reference_network` (011) the
  reference network the run was compared with, NULL for the set's stored reference (and in
  rows from before 011).

Runs are rare (daily), so each row is written at once on a connection of its own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.core.fingerprint import BorderSet, FingerprintResult, Method, Verdict
from monitor.core.logs import OncePer
from monitor.core.times import MAX_TIME_S, MIN_TIME_S
from monitor.storage.domain import Ignored
from monitor.storage.files import read_table
from monitor.storage.filters import RunFilter
from monitor.storage.rows import SQL_TYPES, column_types, sql_columns

log = logging.getLogger(__name__)
log.addFilter(OncePer(60.0))

SETS = "fingerprint_sets"
VERDICTS = "fingerprint_verdicts"
_COLUMNS = column_types(FingerprintResult)
_FIELDS = tuple(_COLUMNS)
# Columns added after 009, each by its own migration: 009 creates the others.
_LATER = ("reference_network",)
_SET_COLUMNS = column_types(BorderSet)
_SET_FIELDS = tuple(_SET_COLUMNS)


def create_tables(db: sqlite_utils.Database) -> None:
    """Migration 009."""
    db.table(SETS).create(sql_columns(_SET_COLUMNS), pk=("network", "model", "version"),
                          if_not_exists=True)
    verdicts = db.table(VERDICTS)
    verdicts.create(sql_columns({k: v for k, v in _COLUMNS.items() if k not in _LATER}),
                    if_not_exists=True)
    verdicts.create_index(["network", "started_at"], index_name=f"{VERDICTS}_by_network",
                          if_not_exists=True)


def add_reference_column(db: sqlite_utils.Database) -> None:
    """Migration 011: the reference network a run was compared with (NULL: the set's)."""
    verdicts = db.table(VERDICTS)
    if "reference_network" not in verdicts.columns_dict:
        verdicts.add_column("reference_network", SQL_TYPES[_COLUMNS["reference_network"]])


def write_result(path: str | Path, result: FingerprintResult) -> None:
    conn = sqlite3.connect(str(path), timeout=30)
    try:
        with conn:
            row: dict[str, Any] = dataclasses.asdict(result)
            row["verdict"] = result.verdict.value
            row["method"] = result.method.value
            row["observations"] = json.dumps(result.observations, separators=(",", ":"))
            conn.execute(f"insert into {VERDICTS} ({', '.join(_FIELDS)}) values "
                         f"({', '.join('?' * len(_FIELDS))})", [row[f] for f in _FIELDS])
    finally:
        conn.close()


def write_set(path: str | Path, border: BorderSet) -> None:
    conn = sqlite3.connect(str(path), timeout=30)
    try:
        with conn:
            row: dict[str, Any] = dataclasses.asdict(border)
            row["method"] = border.method.value
            row["prompts"] = json.dumps(border.prompts)
            row["reference"] = json.dumps(border.reference, separators=(",", ":"))
            conn.execute(f"insert or replace into {SETS} ({', '.join(_SET_FIELDS)}) values "
                         f"({', '.join('?' * len(_SET_FIELDS))})",
                         [row[f] for f in _SET_FIELDS])
    finally:
        conn.close()


def read_fingerprints(paths: Sequence[str | Path], *, since: float | None = None,
                 until: float | None = None, networks: Sequence[str] = (),
                 observations: bool = False, ignored: Ignored | None = None
                 ) -> list[FingerprintResult]:
    """Verdicts from each store file, oldest first (their observations only when asked); a
    file from before migration 009 has none. FileNotFoundError for a missing file. A row this
    version cannot read (an unknown verdict or method, observations that are not its JSON, a
    start time outside 1970-2200) is left out, counted in `ignored`."""
    runs = RunFilter(since=since, until=until, networks=networks)
    out: list[FingerprintResult] = []
    # a file from before 011 (read-only, not migrated) has no reference column
    for row in read_table(paths, VERDICTS, _FIELDS, runs.where(), later=_LATER):
        try:
            row["verdict"] = Verdict(row["verdict"])
            row["method"] = Method(row["method"])
            row["error"] = row["error"] or ""
            if not isinstance(row["reference_network"], str | None):
                raise ValueError("reference_network")
            row["observations"] = (json.loads(row["observations"] or "{}")
                                   if observations else {})
            if not (isinstance(row["started_at"], int | float)
                    and MIN_TIME_S <= row["started_at"] <= MAX_TIME_S):
                raise ValueError("started_at")
            out.append(FingerprintResult(**row))
        except (ValueError, TypeError):  # json.JSONDecodeError is a ValueError
            if ignored is not None:
                ignored.add(VERDICTS)
    out.sort(key=lambda r: r.started_at)
    return out


def read_border_sets(path: str | Path) -> dict[tuple[str, str], BorderSet]:
    """The latest border set of each (network, model) in a store file."""
    out: dict[tuple[str, str], BorderSet] = {}
    for row in read_table([path], SETS, _SET_FIELDS, order_by="version"):
        row["method"] = Method(row["method"])
        row["prompts"] = tuple(json.loads(row["prompts"]))
        row["reference"] = json.loads(row["reference"])
        border = BorderSet(**row)
        out[(border.network, border.model)] = border
    return out


def fingerprint_history(path: str | Path, keep: int
                        ) -> dict[tuple[str, str], list[FingerprintResult]]:
    """The latest `keep` runs of each (network, model), oldest first, with observations."""
    out: dict[tuple[str, str], list[FingerprintResult]] = {}
    for r in read_fingerprints([path], observations=True):
        out.setdefault((r.network, r.model), []).append(r)
    return {k: v[-keep:] for k, v in out.items()}


class FingerprintWriter:
    """A verdict and set sink (monitor.runtime.fingerprint) into a store file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_fingerprint(self, result: FingerprintResult) -> None:
        try:
            write_result(self.path, result)
        except (sqlite3.Error, OSError) as exc:
            log.error("fingerprint: the verdict on %s %s was not stored (%s)",
                      result.network, result.model, exc)

    def on_border_set(self, border: BorderSet) -> None:
        try:
            write_set(self.path, border)
        except (sqlite3.Error, OSError) as exc:
            log.error("fingerprint: border set v%d of %s %s was not stored (%s)",
                      border.version, border.network, border.model, exc)
