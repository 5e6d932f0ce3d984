"""The store's schema: the named migrations (001-011) that bring any store file up to date,
applied once each and recorded in `_migrations`, and the connection the writer uses.

Tables are made through sqlite-utils (`Table.create`, `create_index`, `add_column`, its
introspection), with column types derived from the dataclasses they store
(monitor.storage.rows). Hand-written DDL stays only where sqlite-utils cannot say it:
`WITHOUT ROWID` tables (the rollups, `capacity_steps`, `quality_answers`), a CHECK constraint
(`rollup_state`), columns without a declared type (`rollup_ignored`) and a table filled from
another in the same step (`rollup_hist_week`). A released migration keeps making what it
made: a store file created now and one migrated from an earlier version have the same
schema (tests/test_schema.py).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from monitor.storage import capacity, contract, equality, fingerprint, quality, rollups
from monitor.storage.files import MIGRATIONS_TABLE
from monitor.storage.rows import NOT_NULL, TABLE, TYPES

# -- named migrations, applied once each, recorded in _migrations ----------------------
# Each family's tables are made by its own module (monitor/storage/<family>.py), which reads
# and writes them; the migrations below say when.


def _m001_create_probe_results(db: sqlite_utils.Database) -> None:
    # Python types, as released: sqlite-utils declares float as FLOAT before 4.0, REAL since.
    table = db.table(TABLE)
    table.create(dict(TYPES), not_null=set(NOT_NULL), if_not_exists=True)
    table.create_index(["network", "started_at"], if_not_exists=True)
    table.create_index(["job", "started_at"], if_not_exists=True)


def _m002_create_rollups(db: sqlite_utils.Database) -> None:
    # Daily pre-aggregates for reports over long periods (monitor/storage/rollups.py); the
    # writer folds rows into them as it goes, and folds an older store's rows on first use.
    rollups.create_tables(db.conn)


def _m003_connection_columns(db: sqlite_utils.Database) -> None:
    # Connection phases and TLS facts. A store created since has them from 001.
    table = db.table(TABLE)
    have = table.columns_dict
    for name in ("dns_s", "tcp_s", "tls_s", "ip_version", "tls_version", "tls_cipher",
                 "tls_cert_expiry"):
        if name not in have:
            table.add_column(name, TYPES[name])


def _m004_equality_verdicts(db: sqlite_utils.Database) -> None:
    # Model equality tests: one row per test (monitor/storage/equality.py).
    equality.create_table(db)


def _m005_capacity_tables(db: sqlite_utils.Database) -> None:
    # Capacity ladders (monitor/storage/capacity.py). Their runs are ordinary runs in a table
    # of their own, `capacity_runs`, linked by ladder_id: a ladder loads the network on
    # purpose, so no canary read (SLA, rollups, reports, status) can ever count them. A
    # migration that adds a probe_results column adds it here too.
    capacity.create_tables(db)


def _m006_weekly_rollups(db: sqlite_utils.Database) -> None:
    # Histograms per UTC week next to the daily ones, filled from the daily ones:
    # about 10 s for a store of 10M runs, once. A store created since has them from 002.
    rollups.create_weekly(db.conn)


def _m007_quality_tables(db: sqlite_utils.Database) -> None:
    # Quality audits: one row per audit and comparison, one per item and side answered
    # (monitor/storage/quality.py), apart from the canaries' runs.
    quality.create_tables(db)


def _m008_contract_tables(db: sqlite_utils.Database) -> None:
    # The contract checks: tool-call grades and parameter cells (monitor/storage/contract.py),
    # in tables of their own so that no canary read counts their requests.
    contract.create_tables(db)


def _m009_fingerprint_tables(db: sqlite_utils.Database) -> None:
    # Fingerprints: border-input sets and one verdict a run (monitor/storage/fingerprint.py).
    fingerprint.create_tables(db)


def _m010_rollup_ignored(db: sqlite_utils.Database) -> None:
    # Rows the rollups' fold passed over, a value out of domain (monitor.storage.domain): a
    # read of the rolled days still says how many rows it ignored.
    db.execute(rollups.IGNORED_SCHEMA)


def _m011_fingerprint_reference(db: sqlite_utils.Database) -> None:
    # Which reference each fingerprint run was compared with: a reference network sampled in
    # the same run, or NULL for its border set's stored reference (and for older rows).
    fingerprint.add_reference_column(db)


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("001_create_probe_results", _m001_create_probe_results),
    ("002_create_rollups", _m002_create_rollups),
    ("003_connection_columns", _m003_connection_columns),
    ("004_equality_verdicts", _m004_equality_verdicts),
    ("005_capacity_tables", _m005_capacity_tables),
    ("006_weekly_rollups", _m006_weekly_rollups),
    ("007_quality_tables", _m007_quality_tables),
    ("008_contract_tables", _m008_contract_tables),
    ("009_fingerprint_tables", _m009_fingerprint_tables),
    ("010_rollup_ignored", _m010_rollup_ignored),
    ("011_fingerprint_reference", _m011_fingerprint_reference),
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations this file has not seen, each in its own transaction."""
    recorded = db.table(MIGRATIONS_TABLE)
    recorded.create({"name": "TEXT", "applied_at": "FLOAT"}, pk="name",
                    not_null={"applied_at"}, if_not_exists=True)
    done = {row["name"] for row in recorded.rows}
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with db.conn:
            step(db)
            recorded.insert({"name": name, "applied_at": time.time()})
        applied.append(name)
    return applied


def schema_version(db: sqlite_utils.Database) -> int:
    """How many migrations the file has had (0: none, or not a store)."""
    table = db.table(MIGRATIONS_TABLE)
    return table.count if table.exists() else 0


def connect(path: str | Path, busy_timeout_s: float = 30.0) -> sqlite_utils.Database:
    """A connection to write through: WAL, synchronous=NORMAL (a committed batch survives a
    process crash)."""
    conn = sqlite3.connect(str(path), check_same_thread=True, timeout=busy_timeout_s)
    db = sqlite_utils.Database(conn)
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=normal")
    return db
