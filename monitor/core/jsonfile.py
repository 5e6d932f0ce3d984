"""The reference files `--save` writes (equality sample sets, quality answer sets): a JSON
object tagged with its format, written readable, read back with a one-line reason when it is
not what it should be."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_tagged(path: str | Path, body: dict[str, Any]) -> None:
    """`body` (with its "format") as indented UTF-8 JSON."""
    Path(path).write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n",
                          encoding="utf-8")


def read_tagged(path: str | Path, fmt: str, what: str, command: str) -> dict[str, Any]:
    """The JSON object at `path` whose "format" is `fmt`; ValueError with a one-line reason
    naming `what` it should be and the `command` that makes one."""
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no such file; make one with `{command}`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a readable JSON {what} ({exc})") from None
    if not isinstance(body, dict) or body.get("format") != fmt:
        raise ValueError(f"not {_a(what)} (expected \"format\": \"{fmt}\"); make one with "
                         f"`{command}`")
    return body


def _a(what: str) -> str:
    return f"an {what}" if what[0] in "aeiou" else f"a {what}"
