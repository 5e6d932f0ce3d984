"""Stored runs a page at a time, newest first, for the read-only API: keyset paging on
(started_at, rowid), so a page costs the same deep in the history as at its top and runs
written meanwhile never shift a page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.storage import domain
from monitor.storage.filters import RunFilter
from monitor.storage.store import COLUMNS, TABLE, open_readonly

Position = tuple[float, int]  # (started_at, rowid) of a page's last run


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    next: Position | None  # where the next page starts; None on the last page


def read_page(path: str | Path, columns: Sequence[str], runs: RunFilter, *,
              outcomes: Sequence[str] = (), targets: Sequence[str] = (), limit: int = 100,
              after: Position | None = None) -> Page:
    """Up to `limit` runs that `runs` (and `outcomes`, `targets`; empty: any) select, newest
    first, starting after `after`."""
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown columns {unknown}")
    where, params = runs.where()
    # rows out of domain are not shown (monitor.storage.domain; the report counts them)
    where += f" and {domain.problem_sql(('started_at', *columns))} is null"
    for column, values in (("outcome", outcomes), ("target", targets)):
        if values:
            where += f" and {column} in ({', '.join('?' * len(values))})"
            params += list(values)
    if after is not None:
        where += " and (started_at < ? or (started_at = ? and rowid < ?))"
        params += [after[0], after[0], after[1]]
    conn = open_readonly(path)
    try:
        rows = conn.execute(
            f"select rowid, started_at, {', '.join(columns)} from {TABLE} where {where} "
            "order by started_at desc, rowid desc limit ?", [*params, limit + 1]).fetchall()
    finally:
        conn.close()
    page = [dict(zip(columns, row[2:], strict=True)) for row in rows[:limit]]
    if len(rows) <= limit:
        return Page(page, None)
    rowid, started_at = rows[limit - 1][:2]
    return Page(page, (float(started_at), int(rowid)))
