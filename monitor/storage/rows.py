"""Columns and rows: the column types of every stored dataclass, derived from its fields, and
the row form of a `ProbeResult` in `probe_results` (and in `capacity_runs`, which has the
same columns plus its ladder's)."""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import operator
import sqlite3
import types
import typing
from collections.abc import Mapping
from typing import Any

from monitor.core.result import Outcome, ProbeResult

TABLE = "probe_results"
CAPACITY_RUNS = "capacity_runs"


def column_type(annotation: Any) -> type:
    """A dataclass field's column type: its own (or its optional's) int, float or str; a bool
    as int, an enum by its str value, a mapping or a sequence as JSON text."""
    kind = annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (kind,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(kind) or kind
    if origin is bool:
        return int
    for column in (int, float, str):
        if isinstance(origin, type) and issubclass(origin, column):
            return column
    if isinstance(origin, type) and issubclass(origin, collections.abc.Mapping | tuple | list):
        return str  # JSON
    raise TypeError(f"field of type {annotation!r} has no column type")


def column_types(cls: type) -> dict[str, type]:
    """Each field of the dataclass `cls` -> its column type (int, float or str), in order."""
    hints = typing.get_type_hints(cls)
    return {f.name: column_type(hints[f.name]) for f in dataclasses.fields(cls)}


# The declared SQLite type of each column type, as the family tables have always declared it.
# sqlite-utils maps a Python float to FLOAT before 4.0 and to REAL since; named here, a
# declaration does not depend on the installed version. Both have REAL affinity.
SQL_TYPES: Mapping[type, str] = {int: "INTEGER", float: "FLOAT", str: "TEXT"}


def sql_columns(columns: Mapping[str, type]) -> dict[str, str]:
    """Column name -> declared SQLite type, for sqlite-utils' `Table.create`."""
    return {name: SQL_TYPES[kind] for name, kind in columns.items()}


TYPES: dict[str, type] = column_types(ProbeResult)
COLUMNS: tuple[str, ...] = tuple(TYPES)
NOT_NULL = frozenset({"network", "target", "job", "model", "outcome", "started_at"})

_get_fields = operator.attrgetter(*COLUMNS)
# json.dumps(details, separators=(",", ":"), default=str) without building an encoder per row
_details_json = json.JSONEncoder(separators=(",", ":"), default=str).encode
_OUTCOME = COLUMNS.index("outcome")
_DETAILS = COLUMNS.index("details")
_LAGGED = COLUMNS.index("lagged")


def to_row(r: ProbeResult) -> tuple[Any, ...]:
    """A result's values in COLUMNS order, as stored."""
    row = list(_get_fields(r))
    row[_OUTCOME] = r.outcome.value
    row[_DETAILS] = _details_json(r.details) if r.details else "{}"
    row[_LAGGED] = int(r.lagged)
    return tuple(row)


def from_row(row: sqlite3.Row | dict[str, Any]) -> ProbeResult:
    """The result a stored row holds (its columns by name)."""
    values = {name: row[name] for name in COLUMNS}
    values["outcome"] = Outcome(values["outcome"])
    values["details"] = json.loads(values["details"] or "{}")
    values["lagged"] = bool(values["lagged"])
    values["error"] = values["error"] or ""
    values["prompt_hash"] = values["prompt_hash"] or ""
    values["location"] = values["location"] or ""
    values["bytes"] = values["bytes"] or 0
    return ProbeResult(**values)


def storable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """`row` with what SQLite cannot hold replaced: an integer beyond 64 bits by NULL,
    another object by its text."""
    out: list[Any] = []
    for v in row:
        if isinstance(v, int) and not -(2**63) <= v < 2**63:
            v = None
        elif v is not None and not isinstance(v, int | float | str | bytes):
            v = str(v)
        out.append(v)
    return tuple(out)
