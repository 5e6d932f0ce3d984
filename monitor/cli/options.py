"""Command-line options checked by the same functions as their config fields
(monitor.core.values, monitor.core.times): one rule for both doors, and the CLI's error is the
config's with the option in front (`--url 'http://[::1/v1' is not ...`), one line, exit 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from monitor.core.errors import UserError
from monitor.core.times import parse_duration
from monitor.core.values import limit, number

T = TypeVar("T")
R = TypeVar("R")


def checked(option: str, check: Callable[[T], R], value: T) -> R:
    """`check(value)`, its ValueError made the option's UserError."""
    try:
        return check(value)
    except ValueError as exc:
        raise UserError(f"{option} {exc}") from None


def seconds(option: str, value: float | str | None) -> float | None:
    """A duration option (`30`, `30s`, `5m`): above 0, under a year, finite; None stays None."""
    if value is None:
        return None
    return checked(option, parse_duration, value)


def count(option: str, value: int | None, *, lo: int = 1, hi: int = 10_000_000) -> int | None:
    """A whole-number limit in [lo, hi]; None (not given) stays None: 0 is never "unset"."""
    if value is None:
        return None
    return checked(option, lambda v: limit(v, lo=lo, hi=hi), value)


def finite(option: str, value: float, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False) -> float:
    """A finite number in range (NaN and infinity refused)."""
    return checked(option, lambda v: number(v, lo=lo, hi=hi, lo_open=lo_open), value)
