"""Durations and points in time as users write them (`30s`, `1m30s`, ISO-8601), parsed and
formatted in one place for the config, the CLI and the Prometheus rules."""

from __future__ import annotations

import math
import re
import time as clock
from datetime import UTC, date, datetime, time

UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_DURATION_S = 366 * 86400.0
# Points in time users may give (config, CLI): 1970-01-01 .. 2200-01-01 UTC, unix seconds.
MIN_TIME_S = 0.0
MAX_TIME_S = 7_258_118_400.0
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")


def parse_duration(value: object) -> float:
    """`30s`, `5m`, `1h`, `1d`, `500ms`, `1m30s` or a number of seconds -> seconds (> 0).
    ValueError says what to write instead."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace(" ", "")
        parts = _PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"{clip(value)!r} is not a duration; write a number and a unit "
                             "(ms, s, m, h, d), e.g. 30s, 5m or 1h")
        seconds = sum(float(n) * UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"{clip(value)!r} is not a duration; write e.g. 30s, 5m or 1h")
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{clip(value)!r} is not a duration; write a finite one, e.g. 30s")
    if seconds <= 0:
        raise ValueError(f"{clip(value)!r}: a duration must be greater than 0, e.g. 30s")
    if not seconds < MAX_DURATION_S:  # also NaN and infinity
        raise ValueError(f"{clip(value)!r}: a duration must be under a year, e.g. 30d")
    return seconds


def format_duration(seconds: float) -> str:
    """The largest whole unit (`1d`, `30m`, `90s`), else milliseconds (`1500ms`): a duration
    Prometheus accepts, exact to the millisecond, that parse_duration reads back."""
    ms = max(1, round(seconds * 1000))
    for unit in ("d", "h", "m", "s"):
        size = round(UNITS[unit] * 1000)
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def parse_time(value: object) -> float:
    """An ISO-8601 time (UTC if no offset) or unix seconds -> unix seconds, from 1970 to
    2200 (a time outside is a mistake: ValueError)."""
    seconds = _parse_time(value)
    if not MIN_TIME_S <= seconds <= MAX_TIME_S:  # also NaN
        raise ValueError(f"{clip(value)!r} is not a time from 1970 to 2200; write ISO-8601 "
                         "like 2026-11-01T02:00:00Z, or unix seconds")
    return seconds


def _parse_time(value: object) -> float:
    if isinstance(value, datetime):  # YAML turns unquoted timestamps into datetimes ...
        moment = value
    elif isinstance(value, date):  # ... and unquoted dates into dates
        moment = datetime.combine(value, time(0, 0))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer of 400 digits
            return math.inf
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{clip(value)!r} is not a time; write ISO-8601 like "
                             "2026-11-01T02:00:00Z, or unix seconds") from None
    else:
        raise ValueError(f"{clip(value)!r} is not a time; write ISO-8601 like "
                         "2026-11-01T02:00:00Z, or unix seconds")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):  # year 1 with an offset, and the like
        return math.nan


def parse_when(text: str, now: float) -> float:
    """A moment as a user writes one (`--since`, `?since=`): unix seconds (`1767225600`), a
    duration meaning that long before `now` (`24h`, `7d`, `1d12h`), or an ISO-8601 time (UTC if
    no offset), from 1970 to 2200. ValueError if it is none of them."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not MIN_TIME_S <= seconds <= MAX_TIME_S:  # also NaN and infinity
            raise ValueError(f"{clip(text)!r} is not a time from 1970 to 2200; write unix "
                             "seconds, ISO-8601 like 2026-11-01T02:00:00Z, or a duration")
        return seconds
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    return parse_time(text)


def clip(value: object, limit: int = 40) -> str:
    """A user's value shortened for an error message."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ago(t: float, now: float | None = None) -> str:
    """How long ago `t` (unix seconds) was: minutes under an hour, then hours ("1.5 h ago")."""
    now = clock.time() if now is None else now
    hours = max(now - t, 0) / 3600
    return f"{hours * 60:.0f} min ago" if hours < 1 else f"{hours:.1f} h ago"
