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


def duration(value: float | None, ms_below: float = 1.0) -> str:
    """A duration in the unit that reads best: whole milliseconds under `ms_below` seconds,
    then seconds, two decimals under 10 s and one above: 0.4213 -> "421 ms", 2.5 -> "2.50 s",
    12.34 -> "12.3 s"."""
    if value is None:
        return NONE
    if value < ms_below:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def significant(value: float | None, digits: int = 3) -> str:
    """A number to `digits` significant digits (a p-value): 0.000999 -> "0.000999"."""
    return NONE if value is None else f"{value:.{digits}g}"


def dollars(value: float | None, digits: int = 3) -> str:
    """An amount in US dollars: 1234.5 -> "$1,234.500"."""
    return NONE if value is None else f"${value:,.{digits}f}"


def setting(value: float | None, unit: str, scale: float = 1.0) -> str:
    """A configured figure as short as it was written, its unit after a space: (0.999, "%",
    100) -> "99.9 %", (2.0, "s") -> "2 s"."""
    return NONE if value is None else f"{value * scale:g} {unit}"
