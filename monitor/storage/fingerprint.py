"""Fingerprints in the store (migrations 009 and 011 of monitor.storage.store).

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

from monitor.core.fingerprint import BorderSet, FingerprintResult, Method, Verdict
from monitor.core.logs import OncePer
from monitor.core.times import MAX_TIME_S, MIN_TIME_S
from monitor.storage.domain import Ignored

log = logging.getLogger(__name__)
log.addFilter(OncePer(60.0))

SETS = "fingerprint_sets"
VERDICTS = "fingerprint_verdicts"
_FIELDS = tuple(f.name for f in dataclasses.fields(FingerprintResult))
# Columns added after 009, each by its own migration: 009 creates the others.
_LATER = ("reference_network",)
_SET_FIELDS = tuple(f.name for f in dataclasses.fields(BorderSet))
_TYPES = {"started_at": "float", "distance": "float", "p_value": "float",
          "reference_distance": "float", "reference_p_value": "float", "spend_usd": "float",
          "alpha": "float", "changed_since": "float", "duration_s": "float",
          "set_version": "integer", "samples": "integer", "requests": "integer",
          "failed": "integer", "output_tokens": "integer", "baseline_runs": "integer",
          "version": "integer", "created_at": "float", "tried": "integer"}


def create_tables(conn: sqlite3.Connection) -> None:
    columns = ", ".join(f"{name} {_TYPES.get(name, 'text')}" for name in _SET_FIELDS)
    conn.execute(f"create table if not exists {SETS} ({columns}, "
                 "primary key (network, model, version))")
    columns = ", ".join(f"{name} {_TYPES.get(name, 'text')}" for name in _FIELDS
                        if name not in _LATER)
    conn.execute(f"create table if not exists {VERDICTS} ({columns})")
    conn.execute(f"create index if not exists {VERDICTS}_by_network on {VERDICTS} "
                 "(network, started_at)")


def add_reference_column(conn: sqlite3.Connection) -> None:
    """Migration 011: the reference network a run was compared with (NULL: the set's)."""
    have = {row[1] for row in conn.execute(f"pragma table_info({VERDICTS})")}
    if "reference_network" not in have:
        conn.execute(f"alter table {VERDICTS} add column reference_network text")


def _connect(path: str | Path, *, write: bool) -> sqlite3.Connection:
    if write:
        return sqlite3.connect(str(path), timeout=30)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such store file")
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)


def write_result(path: str | Path, result: FingerprintResult) -> None:
    conn = _connect(path, write=True)
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
    conn = _connect(path, write=True)
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


def _has(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("select 1 from sqlite_master where name = ?", [table]).fetchone() \
        is not None


def read_results(paths: Sequence[str | Path], *, since: float | None = None,
                 until: float | None = None, networks: Sequence[str] = (),
                 observations: bool = False, ignored: Ignored | None = None
                 ) -> list[FingerprintResult]:
    """Verdicts from each store file, oldest first (their observations only when asked); a
    file from before migration 009 has none. FileNotFoundError for a missing file. A row this
    version cannot read (an unknown verdict or method, observations that are not its JSON, a
    start time outside 1970-2200) is left out, counted in `ignored`."""
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
    out: list[FingerprintResult] = []
    for path in paths:
        conn = _connect(path, write=False)
        try:
            if not _has(conn, VERDICTS):
                continue
            have = {row[1] for row in conn.execute(f"pragma table_info({VERDICTS})")}
            # a file from before 011 (read-only, not migrated) has no reference column
            columns = [f if f in have or f not in _LATER else f"null as {f}" for f in _FIELDS]
            cursor = conn.execute(f"select {', '.join(columns)} from {VERDICTS} where "
                                  f"{' and '.join(where)} order by started_at", params)
            for values in cursor:
                row: dict[str, Any] = dict(zip(_FIELDS, values, strict=True))
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
        finally:
            conn.close()
    out.sort(key=lambda r: r.started_at)
    return out


def read_sets(path: str | Path) -> dict[tuple[str, str], BorderSet]:
    """The latest border set of each (network, model) in a store file."""
    conn = _connect(path, write=False)
    out: dict[tuple[str, str], BorderSet] = {}
    try:
        if not _has(conn, SETS):
            return out
        cursor = conn.execute(f"select {', '.join(_SET_FIELDS)} from {SETS} order by version")
        for values in cursor:
            row: dict[str, Any] = dict(zip(_SET_FIELDS, values, strict=True))
            row["method"] = Method(row["method"])
            row["prompts"] = tuple(json.loads(row["prompts"]))
            row["reference"] = json.loads(row["reference"])
            border = BorderSet(**row)
            out[(border.network, border.model)] = border
    finally:
        conn.close()
    return out


def history(path: str | Path, keep: int) -> dict[tuple[str, str], list[FingerprintResult]]:
    """The latest `keep` runs of each (network, model), oldest first, with observations."""
    out: dict[tuple[str, str], list[FingerprintResult]] = {}
    for r in read_results([path], observations=True):
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
