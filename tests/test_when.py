"""One grammar for a moment a user writes (`report --since`, the status API's `?since=`):
unix seconds, a duration before now, or an ISO-8601 time; anything else is refused in words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.cli.commands.report import parse_when as report_when
from monitor.core.errors import UserError
from monitor.core.times import parse_when

NOW = 1_767_225_600.0


@given(st.integers(0, 4_000_000_000) | st.floats(0, 4e9, allow_nan=False))
def test_unix_seconds_are_that_moment(t: float) -> None:
    assert parse_when(str(t), NOW) == report_when(str(t), "--since", NOW) == float(t)


@given(st.integers(1, 365), st.sampled_from([("s", 1), ("m", 60), ("h", 3600),
                                                ("d", 86400)]))
def test_a_duration_is_that_long_before_now(n: int, unit: tuple[str, int]) -> None:
    text = f"{n}{unit[0]}"
    assert parse_when(text, NOW) == report_when(text, "--since", NOW) == NOW - n * unit[1]


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_an_iso_time_without_offset_is_utc(moment: datetime) -> None:
    text = moment.isoformat()
    assert parse_when(text, NOW) == moment.replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("text", ["yesterday", "", "7 days", "2026-13-01"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_when(text, NOW)
    with pytest.raises(UserError, match="expected a duration like 24h"):
        report_when(text, "--since", NOW)
