"""Capacity ladders in the store: one row per ladder (`capacity_ladders`), per step
(`capacity_steps`) and per run (`capacity_runs`: every probe_results column plus `ladder_id`
and `streams`). Tables from migration 005 (monitor.storage.schema).

The runs of a ladder are ordinary runs kept apart from the canaries' `probe_results`: a ladder
loads a network on purpose, so its runs must never reach the canary SLA, the rollups, the
report's comparison or the status page, and with a table of their own no reader can count them
by mistake (docs/capacity.md). A ladder is written in one transaction, from its own connection
(the agent calls `save_ladder` in a worker thread; SQLite serialises it with the batch writer).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.core.capacity import Ladder, Step, StepCriteria, Stop
from monitor.core.logs import OncePer
from monitor.core.result import ProbeResult
from monitor.storage.domain import Ignored
from monitor.storage.files import each_file, has_table, open_readonly
from monitor.storage.filters import RunFilter
from monitor.storage.rows import CAPACITY_RUNS, COLUMNS, NOT_NULL, TYPES, from_row, to_row

log = logging.getLogger(__name__)
log.addFilter(OncePer(60.0))  # a failing store fails every ladder

LADDERS = "capacity_ladders"
STEPS = "capacity_steps"
LADDER_COLUMNS = ("id", "network", "target", "job", "job_version", "model", "location",
                  "started_at", "elapsed_s", "stopped", "detail", "requests", "spend_usd",
                  "retry_after_s", "sustained", "knee", "criteria")
STEP_COLUMNS = ("ladder_id", "streams", "started_at", "elapsed_s", "runs", "outcomes",
                "output_tokens", "tokens_per_s", "stream_tps_p50", "ttft_p50_s", "ttft_p95_s",
                "error_rate", "disconnect_rate", "held", "broke")


def create_tables(db: sqlite_utils.Database) -> None:
    """Migration 005. `capacity_steps` is a WITHOUT ROWID table (stored in its primary key
    order): sqlite-utils cannot declare one, so its DDL is written out."""
    text, integer, real = "TEXT", "INTEGER", "FLOAT"
    ladders = db.table(LADDERS)
    ladders.create({"id": text, "network": text, "target": text, "job": text,
                    "job_version": integer, "model": text, "location": text,
                    "started_at": real, "elapsed_s": real, "stopped": text, "detail": text,
                    "requests": integer, "spend_usd": real, "retry_after_s": real,
                    "sustained": integer, "knee": integer, "criteria": text},
                   pk="id", not_null={"network", "target", "job", "started_at", "stopped"},
                   if_not_exists=True)
    ladders.create_index(["network", "started_at"],
                         index_name=f"{LADDERS}_network_started", if_not_exists=True)
    db.execute(f"""create table if not exists {STEPS} (ladder_id text not null,
        streams integer not null, started_at float, elapsed_s float, runs integer,
        outcomes text, output_tokens integer, tokens_per_s float, stream_tps_p50 float,
        ttft_p50_s float, ttft_p95_s float, error_rate float, disconnect_rate float,
        held integer, broke text, primary key (ladder_id, streams)) without rowid""")
    runs = db.table(CAPACITY_RUNS)
    runs.create({"ladder_id": str, "streams": int, **TYPES},
                not_null={"ladder_id", "streams", *NOT_NULL}, if_not_exists=True)
    runs.create_index(["ladder_id"], if_not_exists=True)


def _insert(table: str, columns: Sequence[str]) -> str:
    return f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"


def save_ladder(path: str | Path, ladder: Ladder) -> None:
    """Write a ladder, its steps and its runs in one transaction (the store must exist)."""
    conn = sqlite3.connect(str(path), timeout=30)
    try:
        with conn:
            conn.execute(_insert(LADDERS, LADDER_COLUMNS), _ladder_row(ladder))
            conn.executemany(_insert(STEPS, STEP_COLUMNS),
                             [_step_row(ladder.id, step) for step in ladder.steps])
            conn.executemany(_insert(CAPACITY_RUNS, ("ladder_id", "streams", *COLUMNS)),
                             [(ladder.id, step.streams, *to_row(r))
                              for step in ladder.steps for r in step.results])
    finally:
        conn.close()


class LadderStore:
    """Sink: every finished ladder into the store file (blocking: called in a worker thread)."""

    blocking = True

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.saved = 0

    def on_ladder(self, ladder: Ladder) -> None:
        try:
            save_ladder(self.path, ladder)
        except (sqlite3.Error, OSError) as exc:  # a failing store: one line, not a traceback
            log.error("capacity: the ladder of %s/%s was not stored (%s)", ladder.network,
                      ladder.target, exc)
            return
        self.saved += 1


def _ladder_row(ladder: Ladder) -> tuple[Any, ...]:
    criteria = {"ttft_p95_s": ladder.criteria.ttft_p95_s,
                "decode_tps_min": ladder.criteria.decode_tps_min,
                "availability": ladder.criteria.availability}
    return (ladder.id, ladder.network, ladder.target, ladder.job, ladder.job_version,
            ladder.model, ladder.location, ladder.started_at, ladder.elapsed_s,
            ladder.stopped.value, ladder.detail, ladder.requests, ladder.spend_usd,
            ladder.retry_after_s, ladder.sustained, ladder.knee, json.dumps(criteria))


def _step_row(ladder_id: str, step: Step) -> tuple[Any, ...]:
    return (ladder_id, step.streams, step.started_at, step.elapsed_s, step.runs,
            json.dumps(dict(step.outcomes)), step.output_tokens, step.tokens_per_s,
            step.stream_tps_p50, step.ttft_p50_s, step.ttft_p95_s, step.error_rate,
            step.disconnect_rate, None if step.held is None else int(step.held),
            json.dumps(list(step.broke)))


# -- reading ----------------------------------------------------------------------------------

def read_ladders(paths: Sequence[str | Path], *, since: float | None = None,
                 until: float | None = None, networks: Sequence[str] = (),
                 ignored: Ignored | None = None) -> list[Ladder]:
    """The ladders started in [since, until) in each store file, oldest first, with their
    steps (not their runs: `read_ladder_runs`). A ladder this version cannot read (criteria
    or steps that are not its JSON, a value out of domain) is left out, counted in
    `ignored`. A store older than migration 005 (opened read-only, so not migrated) has
    none."""
    where = RunFilter(since=since, until=until, networks=networks).where()
    ladders: list[Ladder] = []
    for conn in each_file(paths):
        if has_table(conn, LADDERS):
            ladders += _read(conn, where, ignored)
    return sorted(ladders, key=lambda ladder: ladder.started_at)


def _read(conn: sqlite3.Connection, where: tuple[str, list[object]],
          ignored: Ignored | None) -> Iterator[Ladder]:
    clause, params = where
    conn.row_factory = sqlite3.Row
    rows = conn.execute(f"select {', '.join(LADDER_COLUMNS)} from {LADDERS} where "
                        f"{clause} order by started_at", params).fetchall()
    for row in rows:
        try:
            ladder = _ladder(conn, row)
        except (ValueError, TypeError, KeyError, AttributeError, sqlite3.Error):
            # json.JSONDecodeError is a ValueError; an unknown field a TypeError
            if ignored is not None:
                ignored.add(LADDERS)
            continue
        yield ladder


def _ladder(conn: sqlite3.Connection, row: sqlite3.Row) -> Ladder:
    """One stored ladder; ValueError or TypeError for values this version does not write."""
    steps = conn.execute(f"select {', '.join(STEP_COLUMNS)} from {STEPS} where "
                         "ladder_id = ? order by streams", [row["id"]]).fetchall()
    criteria = json.loads(row["criteria"] or "{}")
    if not isinstance(criteria, dict) or not _finite(row["started_at"], *criteria.values()):
        raise ValueError("criteria")
    for s in steps:
        numbers = (s[c] for c in STEP_COLUMNS if c not in ("ladder_id", "outcomes", "broke"))
        if not _finite(*numbers):
            raise ValueError("step")
    return Ladder(
        id=row["id"], network=row["network"], target=row["target"], job=row["job"],
        job_version=row["job_version"] or 1, model=row["model"] or "",
        location=row["location"] or "", started_at=row["started_at"],
        elapsed_s=row["elapsed_s"] or 0.0, criteria=StepCriteria(**criteria),
        steps=tuple(_step(s) for s in steps), stopped=Stop(row["stopped"]),
        detail=row["detail"] or "", requests=row["requests"] or 0,
        spend_usd=row["spend_usd"], retry_after_s=row["retry_after_s"])


def _finite(*values: object) -> bool:
    """Every value None or a finite number of sane size."""
    return all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)
                             and math.isfinite(v) and abs(v) < 1e15) for v in values)


def _step(row: sqlite3.Row) -> Step:
    held = row["held"]
    outcomes, broke = json.loads(row["outcomes"] or "{}"), json.loads(row["broke"] or "[]")
    if not (isinstance(outcomes, dict) and _finite(*outcomes.values())
            and isinstance(broke, list) and all(isinstance(b, str) for b in broke)):
        raise ValueError("step outcomes")
    return Step(
        streams=row["streams"], started_at=row["started_at"], elapsed_s=row["elapsed_s"],
        runs=row["runs"], outcomes=outcomes,
        output_tokens=row["output_tokens"] or 0, tokens_per_s=row["tokens_per_s"],
        stream_tps_p50=row["stream_tps_p50"], ttft_p50_s=row["ttft_p50_s"],
        ttft_p95_s=row["ttft_p95_s"], error_rate=row["error_rate"],
        disconnect_rate=row["disconnect_rate"], held=None if held is None else bool(held),
        broke=tuple(broke))


def read_ladder_runs(path: str | Path, ladder_id: str) -> list[tuple[int, ProbeResult]]:
    """(streams, run) of every run of one ladder, in the order they started."""
    conn = open_readonly(path)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(f"select streams, {', '.join(COLUMNS)} from {CAPACITY_RUNS} "
                            "where ladder_id = ? order by started_at", [ladder_id]).fetchall()
        return [(row["streams"], from_row(row)) for row in rows]
    finally:
        conn.close()
