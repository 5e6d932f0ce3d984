"""Shape checks for what a network sends: decode JSON and read typed fields, or say what is wrong.

Readers judge what they rely on: a field they time, count or check must have the protocol's
type, else `ProtocolError` (the run is `malformed`, with a reason naming the field); `null`
counts as absent. Metadata a reader merely records (a model name, a fingerprint) goes through
`text_or_none`, which keeps it only when it is a string.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

try:  # optional accelerator: ~4x faster per chunk than the stdlib (benchmarks/RESULTS.md)
    import orjson

    _fast_loads: Callable[[str | bytes], Any] | None = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = None

MAX_TEXT_CHARS = 200  # recorded metadata (model names, ids) is clipped to this


class ProtocolError(Exception):
    """A 2xx answer that breaks the protocol; its message is the run's error text."""


def parse_json(data: str | bytes) -> Any:
    """The decoded JSON value; ValueError for anything that is not JSON, nested too deep
    included (the stdlib raises RecursionError there). orjson is stricter (NaN, huge ints,
    lone surrogates), never looser, so on any orjson error the stdlib decides."""
    if _fast_loads is not None:
        try:
            return _fast_loads(data)
        except ValueError:
            pass
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def json_type(value: object) -> str:
    """The JSON type of a decoded value, with its article, for error texts."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


Path = tuple[str | int, ...]  # where a value sits: ("choices", 0, "delta") is choices[0].delta


def where(path: Path) -> str:
    """A path as it reads in an error text: `choices[0].delta.content`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the document"


def wrong(path: Path, value: object, want: str) -> ProtocolError:
    return ProtocolError(f"{where(path)} is {json_type(value)}, not {want}")


# Paths are passed as tuples and only formatted on error: these run for every streamed chunk.

def obj(value: object, path: Path) -> dict[str, Any]:
    """`value` as a JSON object, else ProtocolError."""
    if isinstance(value, dict):
        return value
    raise wrong(path, value, "an object")


def opt_obj(parent: dict[str, Any], key: str, path: Path = ()) -> dict[str, Any] | None:
    value = parent.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise wrong((*path, key), value, "an object")


def opt_list(parent: dict[str, Any], key: str, path: Path = ()) -> list[Any] | None:
    value = parent.get(key)
    if value is None or isinstance(value, list):
        return value
    raise wrong((*path, key), value, "a list")


def opt_str(parent: dict[str, Any], key: str, path: Path = ()) -> str | None:
    value = parent.get(key)
    if value is None or isinstance(value, str):
        return value
    raise wrong((*path, key), value, "a string")


MAX_COUNT = 2**53  # counts above this are nonsense, and would not fit a float or SQLite


def opt_count(parent: dict[str, Any], key: str, path: Path = ()) -> int | None:
    """A count (tokens, nanoseconds): an integer from 0 to 2^53 (a boolean is no count)."""
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
        return value
    raise wrong((*path, key), value, "a count (an integer from 0 to 2^53)")


def opt_bool(parent: dict[str, Any], key: str, path: Path = ()) -> bool | None:
    value = parent.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise wrong((*path, key), value, "a boolean")


def text_or_none(value: object) -> str | None:
    """Recorded metadata: a non-empty string, clipped; anything else is not recorded."""
    if isinstance(value, str) and value:
        return value[:MAX_TEXT_CHARS]
    return None


def first_choice(response: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """A non-streamed chat completion's `choices[0]` and its `message`; ProtocolError when
    the body is not one."""
    value = obj(response, ("response",))
    choices = opt_list(value, "choices")
    if not choices:
        raise ProtocolError("not a chat completion: no choices[0]")
    choice = obj(choices[0], ("choices", 0))
    message = opt_obj(choice, "message", ("choices", 0))
    if message is None:
        raise ProtocolError("not a chat completion: no choices[0].message")
    return choice, message
