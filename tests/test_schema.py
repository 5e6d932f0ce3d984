"""Existing store files keep working: a file written by the release before the schema moved to
sqlite-utils (schema 011, tests/data/store_011.sql) opens, migrates to exactly the schema a
new file gets, and reads back what it held."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import sqlite_utils

from monitor.storage.reads import open_stores, read_fingerprints, read_verdicts
from monitor.storage.schema import MIGRATIONS, schema_version
from monitor.storage.store import Store

STORE_011 = Path(__file__).parent / "data" / "store_011.sql"


def spelled_alike(sql: str | None) -> str | None:
    """`sql` as SQLite reads it: identifiers unquoted, keywords and types in one case, spacing
    and a trailing ";" dropped, and the type names of REAL affinity spelled one way
    (sqlite-utils 3 writes `"ttft_s" FLOAT`, sqlite-utils 4 `"ttft_s" REAL`, a hand-written
    statement `ttft_s real`: the same column, the same affinity, sqlite.org/datatype3.html
    section 3.1 rule 4)."""
    if sql is None:
        return None
    sql = re.sub(r'["`\[\]]', "", sql).lower()
    sql = re.sub(r"\b(double precision|double|float)\b", "real", sql)
    sql = re.sub(r"\s+", " ", sql)
    return re.sub(r" ?([(),]) ?", r"\1", sql).strip().rstrip(";")


def schema(path: Path) -> list[tuple[str, str, str, str | None]]:
    """Every table, index, view and trigger of a store file: (type, name, table, its SQL)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("select type, name, tbl_name, sql from sqlite_master").fetchall()
    finally:
        conn.close()
    return sorted((kind, name, table, spelled_alike(sql)) for kind, name, table, sql in rows)


def test_a_store_from_schema_011_migrates_to_the_schema_of_a_new_one(tmp_path: Path) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    conn = sqlite3.connect(old)
    conn.executescript(STORE_011.read_text())
    conn.close()
    before = schema(old)
    Store(old).close()  # what the agent does on start: open the file and migrate it
    Store(new).close()
    assert schema(old) == schema(new)
    assert schema(old) == before  # nothing a store at 011 needed was missing
    assert schema_version(sqlite_utils.Database(old)) == len(MIGRATIONS)
    # what it held reads back through the read interface
    runs = list(open_stores([old]).results())
    assert [(r.network, r.outcome.value, r.location) for r in runs] == [
        ("akash", "ok", "eu"), ("akash", "timeout", "eu"), ("akash", "ok", "eu")]
    (verdict,) = read_verdicts([old])
    assert (verdict.network, verdict.reference, verdict.samples) == ("akash", "ref", 20)
    (fingerprint,) = read_fingerprints([old])
    assert fingerprint.reference_network == "ref"


def test_the_spelling_of_a_statement_is_all_that_is_set_aside() -> None:
    """The comparison above tells apart what a store would hold differently."""
    assert spelled_alike('CREATE TABLE "t" (\n   "a" FLOAT NOT NULL\n)') == \
        spelled_alike("CREATE TABLE t (a real not null)")
    assert spelled_alike("CREATE TABLE t (a float)") != spelled_alike("CREATE TABLE t (a text)")
    assert spelled_alike("CREATE TABLE t (a, b, primary key (a))") != \
        spelled_alike("CREATE TABLE t (a, b, primary key (a, b))")
    assert spelled_alike("CREATE TABLE t (a) without rowid") != \
        spelled_alike("CREATE TABLE t (a)")
