"""Quality audits in the store.

Tables (migration 007 of monitor.storage.schema), kept apart from the canaries' runs:
`quality_audits`, one row per audit and comparison (the fields of
monitor.core.quality.QualityResult, the breakdowns as JSON), and `quality_answers`, one row
per item and side: the item's family, difficulty and seed (so it can be regenerated), the
reply (scrubbed of secrets before it gets here, cut), the extracted answer and its grade.
Audits are rare, so they are written at once on a connection of their own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

import sqlite_utils

from monitor.core.comparisons import Comparison, in_a_row
from monitor.core.logs import OncePer
from monitor.core.quality import Answer, Cell, QualityResult, Verdict
from monitor.core.quality_grading import Grade
from monitor.storage.files import read_table
from monitor.storage.filters import RunFilter
from monitor.storage.rows import column_types, sql_columns

log = logging.getLogger(__name__)
log.addFilter(OncePer(60.0))

AUDITS = "quality_audits"
ANSWERS = "quality_answers"
_COLUMNS = column_types(QualityResult)
_FIELDS = tuple(_COLUMNS)
_ANSWER_FIELDS = ("audit_id", "side", "network", "tier", "model", "suite", "idx", "family",
                  "difficulty", "seed", "outcome", "grade", "extracted", "raw", "error")


def create_tables(db: sqlite_utils.Database) -> None:
    """Migration 007. `quality_answers` is a WITHOUT ROWID table (stored in its primary key
    order): sqlite-utils cannot declare one, so its DDL is written out."""
    audits = db.table(AUDITS)
    audits.create(sql_columns(_COLUMNS), if_not_exists=True)
    audits.create_index(["network", "started_at"], index_name=f"{AUDITS}_by_network",
                        if_not_exists=True)
    db.execute(f"""create table if not exists {ANSWERS} (audit_id text not null,
        side text not null, network text not null, tier text not null, model text,
        suite text not null, idx integer not null, family text not null,
        difficulty integer not null, seed integer not null, outcome text not null,
        grade text, extracted text, raw text, error text,
        primary key (audit_id, side, network, tier, idx)) without rowid""")


def _cells_text(cells: Mapping[str, Cell] | None) -> str | None:
    if cells is None:
        return None
    return json.dumps({k: [c.pairs, c.correct, c.reference_correct] for k, c in cells.items()})


def _cells(text: str | None) -> dict[str, Cell] | None:
    if not text:
        return None
    return {k: Cell(*v) for k, v in json.loads(text).items()}


def write_audit(path: str | Path, result: QualityResult,
                answers: Sequence[tuple[str, str, str, str, Answer]] = ()) -> None:
    """Append one audit and its answers, each (side, network, tier, model, answer) with side
    "network" or "reference" (the store file must exist: monitor.storage.store.Store made
    it). An answer already stored for that audit, side, network and tier is kept."""
    conn = sqlite3.connect(str(path), timeout=30)
    try:
        with conn:
            row = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
            row["verdict"] = result.verdict.value
            row["by_family"] = _cells_text(result.by_family)
            row["by_difficulty"] = _cells_text(result.by_difficulty)
            conn.execute(f"insert into {AUDITS} ({', '.join(_FIELDS)}) values "
                         f"({', '.join('?' * len(_FIELDS))})", [row[f] for f in _FIELDS])
            conn.executemany(
                f"insert or ignore into {ANSWERS} ({', '.join(_ANSWER_FIELDS)}) values "
                f"({', '.join('?' * len(_ANSWER_FIELDS))})",
                [(result.audit_id, side, network, tier, model, result.suite, a.index,
                  a.family, a.difficulty, a.seed, a.outcome,
                  None if a.grade is None else a.grade.value, a.extracted, a.raw, a.error)
                 for side, network, tier, model, a in answers])
    finally:
        conn.close()


def read_audits(paths: Sequence[str | Path], *, since: float | None = None,
                until: float | None = None, networks: Sequence[str] = ()
                ) -> list[QualityResult]:
    """Audits from each store file, oldest first; a file from before migration 007 has none.
    FileNotFoundError for a missing file."""
    out: list[QualityResult] = []
    runs = RunFilter(since=since, until=until, networks=networks)
    for row in read_table(paths, AUDITS, _FIELDS, runs.where()):
        row["verdict"] = Verdict(row["verdict"])
        row["error"] = row["error"] or ""
        row["by_family"] = _cells(row["by_family"])
        row["by_difficulty"] = _cells(row["by_difficulty"])
        out.append(QualityResult(**row))
    out.sort(key=lambda r: r.started_at)
    return out


def read_answers(path: str | Path, audit_id: str, side: str = "network"
                 ) -> list[tuple[str, str, Answer]]:
    """(network, tier, answer) of one audit's side, in item order."""
    columns = ("network", "tier", "idx", "family", "difficulty", "seed", "outcome", "raw",
               "extracted", "grade", "error")
    rows = read_table([path], ANSWERS, columns, ("audit_id = ? and side = ?", [audit_id, side]),
                      order_by="network, tier, idx")
    return [(r["network"], r["tier"],
             Answer(r["idx"], r["family"], r["difficulty"], r["seed"], r["outcome"],
                    r["raw"] or "", r["extracted"],
                    None if r["grade"] is None else Grade(r["grade"]), r["error"] or ""))
            for r in rows]


def worse_in_a_row(results: Sequence[QualityResult]) -> dict[Comparison, int]:
    """(network, model, reference) -> how many of its latest audits said "worse" in a row
    (an audit without enough items neither breaks nor extends the run)."""
    return in_a_row(results, Verdict.WORSE, Verdict.NOT_WORSE)


class AuditWriter:
    """An audit sink (monitor.runtime.quality.AuditSink) into a store file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_audit(self, result: QualityResult,
                 answers: Sequence[tuple[str, str, str, str, Answer]] = ()) -> None:
        try:
            write_audit(self.path, result, answers)
        except (sqlite3.Error, OSError) as exc:
            log.error("quality: the audit of %s %s was not stored (%s)", result.network,
                      result.model, exc)
