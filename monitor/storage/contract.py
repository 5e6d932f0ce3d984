"""Contract runs in the store: tables of their own, never `probe_results` (the suite's and the
matrix's requests are not canaries, and no SLA read may count them).

Tables (migration 008 of monitor.storage.schema):
- `contract_runs`: one row per network and model per run (monitor.core.contract.ContractRun
  without its grades and cells), keyed by run_id;
- `contract_tool_grades`: one row per suite item answered (ToolGrade);
- `contract_params`: one row per matrix cell (ParamCell).
Runs are rare (every few hours), so one is written at once, in one transaction, on a
connection of its own, not through the batched run writer.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import sqlite_utils

from monitor.core.contract import (
    Cell,
    ContractRun,
    Grade,
    Param,
    ParamCell,
    ToolGrade,
)
from monitor.core.logs import OncePer
from monitor.storage.files import read_table
from monitor.storage.filters import RunFilter
from monitor.storage.rows import column_types, sql_columns

log = logging.getLogger(__name__)
log.addFilter(OncePer(60.0))

RUNS = "contract_runs"
GRADES = "contract_tool_grades"
PARAMS = "contract_params"

# Columns: the fields of ContractRun (without its grades and cells), ToolGrade and ParamCell.
_RUN_TYPES = {name: kind for name, kind in column_types(ContractRun).items()
              if name not in ("grades", "cells")}
_GRADE_TYPES = column_types(ToolGrade)
_PARAM_TYPES = column_types(ParamCell)
_RUN_COLUMNS = tuple(_RUN_TYPES)
_GRADE_COLUMNS = tuple(_GRADE_TYPES)
_PARAM_COLUMNS = tuple(_PARAM_TYPES)


def create_tables(db: sqlite_utils.Database) -> None:
    """Migration 008."""
    runs = db.table(RUNS)
    runs.create(sql_columns(_RUN_TYPES), pk="run_id", if_not_exists=True,
                not_null={"network", "tier", "model", "started_at", "suite", "suite_digest",
                          "requests"})
    runs.create_index(["network", "started_at"], index_name=f"{RUNS}_by_network",
                      if_not_exists=True)
    grades = db.table(GRADES)
    grades.create(sql_columns(_GRADE_TYPES), if_not_exists=True,
                  not_null={"run_id", "network", "tier", "model", "started_at", "suite",
                            "item", "stream", "outcome", "calls"})
    grades.create_index(["run_id"], index_name=f"{GRADES}_by_run", if_not_exists=True)
    params = db.table(PARAMS)
    params.create(sql_columns(_PARAM_TYPES), if_not_exists=True,
                  not_null={"run_id", "network", "tier", "model", "started_at", "param",
                            "cell"})
    params.create_index(["run_id"], index_name=f"{PARAMS}_by_run", if_not_exists=True)


def _insert(conn: sqlite3.Connection, table: str, columns: Sequence[str],
            rows: Sequence[Sequence[object]]) -> None:
    if rows:
        conn.executemany(f"insert into {table} ({', '.join(columns)}) values "
                         f"({', '.join('?' * len(columns))})", rows)


def write_run(path: str | Path, run: ContractRun) -> None:
    """Append one run (the store file must exist: monitor.storage.store.Store made it)."""
    conn = sqlite3.connect(str(path), timeout=30)
    try:
        with conn:
            _insert(conn, RUNS, _RUN_COLUMNS, [(
                run.run_id, run.network, run.tier, run.model, run.reference, run.started_at,
                run.suite, run.suite_digest, run.requests, run.spend_usd, run.duration_s,
                run.capped)])
            _insert(conn, GRADES, _GRADE_COLUMNS, [(
                g.run_id, g.network, g.tier, g.model, g.started_at, g.suite, g.item,
                int(g.stream), None if g.grade is None else g.grade.value, g.outcome,
                g.finish_reason, g.calls, g.detail) for g in run.grades])
            _insert(conn, PARAMS, _PARAM_COLUMNS, [(
                c.run_id, c.network, c.tier, c.model, c.started_at, c.param.value,
                c.cell.value, c.detail, c.value) for c in run.cells])
    finally:
        conn.close()


def read_contract_runs(paths: Sequence[str | Path], *, since: float | None = None,
              until: float | None = None, networks: Sequence[str] = ()) -> list[ContractRun]:
    """Runs with their grades and cells from each store file, oldest first; a file from
    before migration 008 has none. FileNotFoundError for a missing file."""
    where = RunFilter(since=since, until=until, networks=networks).where()
    out: list[ContractRun] = []
    for path in paths:
        grades: dict[str, list[ToolGrade]] = {}
        for g in read_table([path], GRADES, _GRADE_COLUMNS, where, order_by="rowid"):
            grades.setdefault(g["run_id"], []).append(ToolGrade(
                run_id=g["run_id"], network=g["network"], tier=g["tier"],
                model=g["model"], started_at=g["started_at"], suite=g["suite"],
                item=g["item"], stream=bool(g["stream"]),
                grade=None if g["grade"] is None else Grade(g["grade"]),
                outcome=g["outcome"], finish_reason=g["finish_reason"], calls=g["calls"],
                detail=g["detail"] or ""))
        cells: dict[str, list[ParamCell]] = {}
        for c in read_table([path], PARAMS, _PARAM_COLUMNS, where, order_by="rowid"):
            cells.setdefault(c["run_id"], []).append(ParamCell(
                run_id=c["run_id"], network=c["network"], tier=c["tier"],
                model=c["model"], started_at=c["started_at"], param=Param(c["param"]),
                cell=Cell(c["cell"]), detail=c["detail"] or "", value=c["value"]))
        for r in read_table([path], RUNS, _RUN_COLUMNS, where):
            out.append(ContractRun(
                **{**r, "capped": r["capped"] or ""},
                grades=tuple(grades.get(r["run_id"], ())),
                cells=tuple(cells.get(r["run_id"], ()))))
    out.sort(key=lambda r: r.started_at)
    return out


class ContractWriter:
    """A contract sink (monitor.runtime.contract.ContractSink) into a store file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_contract(self, run: ContractRun) -> None:
        try:
            write_run(self.path, run)
        except (sqlite3.Error, OSError) as exc:  # a failing store: one line, not a traceback
            log.error("contract: the run on %s %s was not stored (%s)", run.network,
                      run.model, exc)
