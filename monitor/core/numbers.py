"""Numbers as the terminal tables print them: one formatter per kind of figure, "-" for none."""

from __future__ import annotations

NONE = "-"


def milliseconds(seconds: float | None) -> str:
    """A duration in whole milliseconds, unit left to the column header: 0.4213 -> "421"."""
    return NONE if seconds is None else f"{seconds * 1000:.0f}"


def seconds(value: float | None, digits: int = 2) -> str:
    """A duration in seconds with its unit: 0.4213 -> "0.42s"."""
    return NONE if value is None else f"{value:.{digits}f}s"


def fixed(value: float | None, digits: int = 1) -> str:
    """A plain number with `digits` decimals: 48.25 -> "48.2"."""
    return NONE if value is None else f"{value:.{digits}f}"


def percent(share: float | None, digits: int = 0) -> str:
    """A share of 1 as a percentage: 0.125 -> "12%" (digits=1: "12.5%")."""
    return NONE if share is None else f"{share * 100:.{digits}f}%"
