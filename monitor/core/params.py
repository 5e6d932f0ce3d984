"""The parts a probe kind's settings are defined with (monitor.core.kindsettings): `Param`, one
setting of a job's `params` (or of a job-based kind's base URL query) with its name, aliases
and reader, and the readers of what a value may be. The config loader checks a job's params
with these definitions (`depin-monitor check`: one line naming the field and the fix) and the
typed settings are read with the same ones, so a value that passed the check is read as it
was checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from monitor.core.times import clip, parse_duration

_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


@dataclass(frozen=True, slots=True)
class Param:
    """One setting: `read` turns a raw value (from YAML or a query string) into the value the
    probe uses, or raises ValueError saying what is wrong and how to fix it."""

    name: str
    read: Callable[[Any], Any]
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def options(known: Sequence[Param], *sources: Mapping[str, Any]) -> dict[str, Any]:
    """The known settings given in `sources` (later ones win; None is not given), read, by
    their canonical name. ValueError names the setting: "poll: 'x' is not ..."."""
    by_name = {name: param for param in known for name in param.names}
    out: dict[str, Any] = {}
    for source in sources:
        for key, value in source.items():
            param = by_name.get(key)
            if param is None or value is None:
                continue
            try:
                out[param.name] = param.read(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
    return out


def query_problems(known: Sequence[Param], url: str) -> list[str]:
    """What is wrong with the settings in a URL's query string, one "name: why" each; other
    query parameters are the URL's own, not ours to judge."""
    by_name = {name: param for param in known for name in param.names}
    problems = []
    for key, value in parse_qsl(urlsplit(url).query):
        param = by_name.get(key)
        if param is None:
            continue
        try:
            param.read(value)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    return problems


# -- what a value may be ---------------------------------------------------------------------

def seconds(*, example: str, zero: bool = False, most: float | None = None,
            why: str = "") -> Callable[[Any], float]:
    """A number of seconds or a duration ("5", 5, "5s", "2m"), > 0 (>= 0 with `zero`), at
    most `most` (`why` says why)."""
    wanted = f"a number of seconds or a duration; write e.g. {example} or {example}s"

    def read(value: Any) -> float:
        try:
            number = _number(value, wanted)
        except ValueError:
            if not isinstance(value, str) or not re.search(r"[a-z]", value):
                raise
            try:
                number = parse_duration(value)
            except ValueError:
                raise ValueError(f"{clip(value)!r} is not {wanted}") from None
        if number < 0 or (number == 0 and not zero):
            raise ValueError(f"{clip(value)!r} must be {'0 or more' if zero else 'more than 0'}"
                             f" seconds; write e.g. {example}")
        if most is not None and number > most:
            raise ValueError(f"{clip(value)!r} is more than {most:g} seconds{why}; write e.g. "
                             f"{example}")
        return number
    return read


def count(*, example: str) -> Callable[[Any], int]:
    """A whole number, 1 or more."""
    def read(value: Any) -> int:
        number = _number(value, f"a whole number; write e.g. {example}")
        if number != int(number) or number < 1:
            raise ValueError(f"{clip(value)!r} is not a whole number of 1 or more; write e.g. "
                             f"{example}")
        return int(number)
    return read


def scale(*, example: str) -> Callable[[Any], float]:
    """A number, 0 or more."""
    def read(value: Any) -> float:
        number = _number(value, f"a number; write e.g. {example}")
        if number < 0:
            raise ValueError(f"{clip(value)!r} is negative; write e.g. {example}")
        return number
    return read


def flag(value: Any) -> bool:
    """true or false (YAML's), or 1/0, yes/no, true/false in a query string."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError(f"{clip(value)!r} is not true or false; write true or false")


def text(value: Any) -> str:
    """Words: not empty, not a list or mapping."""
    if isinstance(value, list | dict) or not str(value).strip():
        raise ValueError(f"{clip(value)!r} is not a text value; write e.g. a name or an address")
    return str(value).strip()


def url(value: Any) -> str:
    """An http(s) URL with a host."""
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{clip(value)!r} is not an http(s) URL; write e.g. "
                         "https://gateway.example.com/ipfs/")
    return str(value)


def statuses(value: Any) -> frozenset[int]:
    """HTTP statuses: one (200), a list ([200, 204]) or, in a query, "200,204"."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    out = set()
    for item in items:
        if isinstance(item, bool) or not str(item).strip().isdigit() or not (
                100 <= int(str(item).strip()) <= 599):
            raise ValueError(f"{clip(value)!r} is not an HTTP status or a list of them; write "
                             "e.g. 200 or [200, 204]")
        out.add(int(str(item).strip()))
    if not out:
        raise ValueError("no status given; write e.g. 200 or [200, 204]")
    return frozenset(out)


def regex(value: Any) -> re.Pattern[str]:
    """A Python regular expression."""
    if not isinstance(value, str):
        raise ValueError(f"{clip(value)!r} is not a regular expression; write it as a string, "
                         "e.g. 'ok|healthy'")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ValueError(f"{clip(value)!r} does not compile ({exc}); write a Python regular "
                         "expression") from None


def _number(value: Any, wanted: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not {wanted}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{clip(value)!r} is not {wanted}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{clip(value)!r} is not {wanted}")
    return number
