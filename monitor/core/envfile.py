"""Read an environment file as systemd reads `EnvironmentFile=` (systemd.exec(5)).

`KEY=VALUE` lines; empty lines and lines starting with `#` or `;` are ignored; whitespace
around the key and an unquoted value is stripped; a value in double quotes keeps its spaces
and takes the escapes \\" \\\\ \\$ \\` \\n, one in single quotes is taken literally; a line
ending in a backslash goes on on the next line; nothing is expanded (`$X` stays `$X`). Lines
systemd would ignore (no `=`, or a key that is not a variable name) come back as problems, so
that `check --env-file` can say which ones the service will not see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from monitor.core.errors import UserError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ESCAPES = {'"': '"', "\\": "\\", "$": "$", "`": "`", "n": "\n"}


@dataclass(frozen=True, slots=True)
class EnvFile:
    values: dict[str, str]
    problems: list[str] = field(default_factory=list)  # "line N: why", as systemd skips them


def _unquote(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        out, inner, i = [], value[1:-1], 0
        while i < len(inner):
            if inner[i] == "\\" and i + 1 < len(inner) and inner[i + 1] in _ESCAPES:
                out.append(_ESCAPES[inner[i + 1]])
                i += 2
            else:
                out.append(inner[i])
                i += 1
        return "".join(out)
    return value


def parse_env_file(text: str) -> EnvFile:
    values: dict[str, str] = {}
    problems: list[str] = []
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending and line.lstrip().startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending, start = pending + line[:-1], start or number
            continue
        logical.append((start or number, pending + line))
        pending, start = "", 0
    if pending:
        logical.append((start, pending))
    for number, line in logical:
        if not line.strip():
            continue
        key, sep, raw = line.partition("=")
        key = key.strip()
        if not sep:
            problems.append(f"line {number}: no '=': not an assignment")
        elif not _KEY.match(key):
            problems.append(f"line {number}: {key[:40]!r} is not a variable name")
        else:
            values[key] = _unquote(raw)
    return EnvFile(values, problems)


def read_env_file(path: str) -> EnvFile:
    """The file's assignments; a file that cannot be read is the user's error (exit 2)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--env-file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"--env-file {path}: not UTF-8 text") from None
    return parse_env_file(text)
