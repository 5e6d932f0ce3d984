"""Contract runs in the store: tables of their own, never `probe_results` (the suite's and the
matrix's requests are not canaries, and no SLA read may count them).

Tables (migration 008 of monitor.storage.store):
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

from monitor.core.contract import (
    Cell,
    ContractRun,
    Grade,
    Param,
    ParamCell,
    ToolGrade,
)
from monitor.core.logs import OncePer

log = logging.getLogger(__name__)
log.addFilter(OncePer(60.0))

RUNS = "contract_runs"
GRADES = "contract_tool_grades"
PARAMS = "contract_params"

_RUN_COLUMNS = ("run_id", "network", "tier", "model", "reference", "started_at", "suite",
                "suite_digest", "requests", "spend_usd", "duration_s", "capped")
_GRADE_COLUMNS = ("run_id", "network", "tier", "model", "started_at", "suite", "item",
                  "stream", "grade", "outcome", "finish_reason", "calls", "detail")
_PARAM_COLUMNS = ("run_id", "network", "tier", "model", "started_at", "param", "cell",
                  "detail", "value")


def create_tables(conn: sqlite3.Connection) -> None:
    conn.execute(f"""create table if not exists {RUNS} (run_id text primary key,
        network text not null, tier text not null, model text not null, reference text,
        started_at float not null, suite text not null, suite_digest text not null,
        requests integer not null, spend_usd float, duration_s float, capped text)""")
    conn.execute(f"create index if not exists {RUNS}_by_network on {RUNS} "
                 "(network, started_at)")
    conn.execute(f"""create table if not exists {GRADES} (run_id text not null,
        network text not null, tier text not null, model text not null,
        started_at float not null, suite text not null, item text not null,
        stream integer not null, grade text, outcome text not null, finish_reason text,
        calls integer not null, detail text)""")
    conn.execute(f"create index if not exists {GRADES}_by_run on {GRADES} (run_id)")
    conn.execute(f"""create table if not exists {PARAMS} (run_id text not null,
        network text not null, tier text not null, model text not null,
        started_at float not null, param text not null, cell text not null, detail text,
        value float)""")
    conn.execute(f"create index if not exists {PARAMS}_by_run on {PARAMS} (run_id)")


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


def read_runs(paths: Sequence[str | Path], *, since: float | None = None,
              until: float | None = None, networks: Sequence[str] = ()) -> list[ContractRun]:
    """Runs with their grades and cells from each store file, oldest first; a file from
    before migration 008 has none. FileNotFoundError for a missing file."""
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
    clause = " and ".join(where)
    out: list[ContractRun] = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such store file")
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
        try:
            if not conn.execute("select 1 from sqlite_master where name = ?",
                                [RUNS]).fetchone():
                continue
            grades: dict[str, list[ToolGrade]] = {}
            for row in conn.execute(f"select {', '.join(_GRADE_COLUMNS)} from {GRADES} "
                                    f"where {clause}", params):
                g = dict(zip(_GRADE_COLUMNS, row, strict=True))
                grades.setdefault(g["run_id"], []).append(ToolGrade(
                    run_id=g["run_id"], network=g["network"], tier=g["tier"],
                    model=g["model"], started_at=g["started_at"], suite=g["suite"],
                    item=g["item"], stream=bool(g["stream"]),
                    grade=None if g["grade"] is None else Grade(g["grade"]),
                    outcome=g["outcome"], finish_reason=g["finish_reason"], calls=g["calls"],
                    detail=g["detail"] or ""))
            cells: dict[str, list[ParamCell]] = {}
            for row in conn.execute(f"select {', '.join(_PARAM_COLUMNS)} from {PARAMS} "
                                    f"where {clause}", params):
                c = dict(zip(_PARAM_COLUMNS, row, strict=True))
                cells.setdefault(c["run_id"], []).append(ParamCell(
                    run_id=c["run_id"], network=c["network"], tier=c["tier"],
                    model=c["model"], started_at=c["started_at"], param=Param(c["param"]),
                    cell=Cell(c["cell"]), detail=c["detail"] or "", value=c["value"]))
            for row in conn.execute(f"select {', '.join(_RUN_COLUMNS)} from {RUNS} where "
                                    f"{clause} order by started_at", params):
                r = dict(zip(_RUN_COLUMNS, row, strict=True))
                out.append(ContractRun(
                    **{**r, "capped": r["capped"] or ""},
                    grades=tuple(grades.get(r["run_id"], ())),
                    cells=tuple(cells.get(r["run_id"], ()))))
        finally:
            conn.close()
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
