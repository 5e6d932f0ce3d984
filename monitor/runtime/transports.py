"""Closed connections freed when they close, on Python 3.11 too.

On Python < 3.12 an asyncio socket transport keeps itself alive after its connection is lost:
`_SelectorSocketTransport._read_ready_cb` is a bound method of the transport itself, a
reference cycle that only the garbage collector breaks. The monitor tunes that collector for
timing (monitor.runtime.collector), so every connection a failure, a timeout or a
`Connection: close` ended waited minutes for it, with its socket objects, and the ones still
alive at a collection aged into generations collected hours apart (benchmarks/RESULTS.md,
soak). CPython fixed it in 3.12 (gh-100348, PR #100349: "Release
_SelectorSocketTransport._read_ready_cb on close() to free up cyclic reference"); the 3.11
branch never took the fix. `release_closed_transports()` applies the same release, once the
connection is lost, on Pythons without it.
"""

from __future__ import annotations

import sys
from asyncio import selector_events
from typing import Any

_FIXED_UPSTREAM = sys.version_info >= (3, 12)


def _transport_class() -> Any:
    return getattr(selector_events, "_SelectorSocketTransport")  # noqa: B009 (private, untyped)


def release_closed_transports() -> bool:
    """Apply the release where Python lacks it (idempotent); True when it is in place."""
    if _FIXED_UPSTREAM:
        return False
    cls = _transport_class()
    original = cls._call_connection_lost
    if getattr(original, "__wrapped__", None) is not None:
        return True

    def _call_connection_lost(self: Any, exc: BaseException | None) -> None:
        try:
            original(self, exc)
        finally:
            self._read_ready_cb = None  # the reader was removed before this was scheduled

    _call_connection_lost.__wrapped__ = original  # type: ignore[attr-defined]
    cls._call_connection_lost = _call_connection_lost
    return True


def closed_transports_released() -> bool:
    """Whether release_closed_transports() is in place."""
    original = _transport_class()._call_connection_lost
    return getattr(original, "__wrapped__", None) is not None


def unrelease_closed_transports() -> None:
    """Undo release_closed_transports() (for tests that show what it prevents)."""
    cls = _transport_class()
    original = getattr(cls._call_connection_lost, "__wrapped__", None)
    if original is not None:
        cls._call_connection_lost = original
