"""Store files: what a path holds (a store, an empty file, another program's database), a
read-only connection to one, and the introspection every read of an older, unmigrated file
needs (which tables and columns it has)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from monitor.storage.rows import NOT_NULL, TABLE

MIGRATIONS_TABLE = "_migrations"
SQLITE_MAGIC = b"SQLite format 3\x00"


class NotAStoreError(sqlite3.DatabaseError):
    """A path that cannot hold a store: a directory, a file of another kind, the database of
    another program."""


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to one store file (FileNotFoundError if there is none)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such store file")
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)


def each_file(paths: Sequence[str | Path]) -> Iterator[sqlite3.Connection]:
    """A read-only connection to each store file in turn, closed once the caller moves on
    (FileNotFoundError for a missing file)."""
    for path in paths:
        conn = open_readonly(path)
        try:
            yield conn
        finally:
            conn.close()


def has_table(conn: sqlite3.Connection, table: str) -> bool:
    """The file has `table` (a file older than the migration that made it has not)."""
    return conn.execute("select 1 from sqlite_master where type = 'table' and name = ?",
                        [table]).fetchone() is not None


def table_columns(conn: sqlite3.Connection, table: str = TABLE, schema: str = "") -> set[str]:
    """The columns `table` has in this file (`schema`: an attached file's prefix, `s0.`)."""
    return {row[1] for row in conn.execute(f"pragma {schema}table_info({table})")}


def select_list(conn: sqlite3.Connection, columns: Sequence[str], *, table: str = TABLE,
                schema: str = "", required: frozenset[str] = NOT_NULL) -> str:
    """`columns` for a select, NULL for those an older store file (opened read-only, so not
    migrated) does not have yet; sqlite3.DatabaseError when a `required` one is missing."""
    have = table_columns(conn, table, schema)
    if not have:  # not a store: let the select fail with sqlite's own message
        return ", ".join(columns)
    missing = sorted(required - have)
    if missing:
        raise sqlite3.DatabaseError(f"its {table} table has no column {', '.join(missing)}: "
                                    "a table of another program, not a depin-monitor store")
    return ", ".join(c if c in have else f"null as {c}" for c in columns)


def store_problem(path: str | Path, *, writing: bool = False) -> str | None:
    """Why `path` cannot be a store, in a few words ("is a directory", "not an SQLite
    database", "an SQLite database of another program"); None when it can (a store, an empty
    file or, for writing, no file yet)."""
    p = Path(path)
    if p.is_dir():
        return "is a directory, not a store file"
    if not p.exists():
        return None if writing else "no such file"
    if not p.is_file():
        return "is not a regular file"
    try:
        with open(p, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if not head:
        return None  # an empty file: SQLite makes it a database
    if head != SQLITE_MAGIC:
        return "not an SQLite database (a file of another kind)"
    try:
        conn = open_readonly(p)
    except sqlite3.OperationalError:  # locked, a read-only disk: the store's to retry
        return None
    try:
        tables = {r[0] for r in conn.execute("select name from sqlite_master "
                                             "where type in ('table', 'view')")}
        if TABLE not in tables:
            if tables - {MIGRATIONS_TABLE} and (not writing or MIGRATIONS_TABLE not in tables):
                return (f"an SQLite database of another program (no {TABLE} table), not a "
                        "depin-monitor store")
            return None
        missing = sorted(NOT_NULL - table_columns(conn))
        if missing:
            return (f"its {TABLE} table has no column {', '.join(missing)}: a table of "
                    "another program, not a depin-monitor store")
    except sqlite3.OperationalError:  # locked, a read-only disk: the store's to retry
        return None
    except sqlite3.DatabaseError as exc:
        return f"not a readable SQLite database ({exc})"
    finally:
        conn.close()
    return None


def integrity_ok(path: str | Path) -> bool:
    """`PRAGMA integrity_check` says ok."""
    conn = open_readonly(path)
    try:
        return bool(conn.execute("pragma integrity_check").fetchone()[0] == "ok")
    finally:
        conn.close()


def read_table(paths: Sequence[str | Path], table: str, columns: Sequence[str],
               where: tuple[str, Sequence[object]] = ("1=1", ()), *,
               order_by: str = "started_at", later: Collection[str] = ()
               ) -> Iterator[dict[str, Any]]:
    """The rows of one table of each store file, oldest first within a file, as dicts of
    `columns`: how every verdict family reads its tables back. A file from before the
    migration that made the table has none; a column in `later` (added by a later migration)
    reads NULL in a file from before it. FileNotFoundError for a missing file."""
    clause, params = where
    for conn in each_file(paths):
        if not has_table(conn, table):
            continue
        have = table_columns(conn, table)
        selected = [c if c in have or c not in later else f"null as {c}" for c in columns]
        for values in conn.execute(f"select {', '.join(selected)} from {table} where "
                                   f"{clause} order by {order_by}", list(params)):
            yield dict(zip(columns, values, strict=True))
