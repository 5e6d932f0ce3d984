"""Declared maintenance windows as the status page tells them: which are under way or ahead,
whether a network is inside one now, and whether an incident began inside one (docs/api.md).
The SLA's own exclusion of maintenance runs is monitor.analysis.queries'."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.core.slaprofile import MaintenanceWindow

UPCOMING_S = 30 * 86400.0  # how far ahead the page and the API list windows


@dataclass(frozen=True, slots=True)
class ListedWindow:
    """A window as the page lists it: `networks` empty means every network."""

    start: float
    end: float
    networks: tuple[str, ...]
    reason: str
    active: bool  # under way now


def listed(windows: Sequence[MaintenanceWindow], *, now: float, networks: Sequence[str] = (),
           ahead_s: float = UPCOMING_S) -> list[ListedWindow]:
    """The windows under way at `now` or starting within `ahead_s`, soonest first; with
    `networks`, only those that concern one of them (a window for every network always does)."""
    out = [ListedWindow(w.start, w.end, tuple(w.networks), w.reason, w.start <= now)
           for w in windows
           if w.end > now and w.start <= now + ahead_s
           and (not networks or not w.networks or any(n in w.networks for n in networks))]
    out.sort(key=lambda w: (w.start, w.end))
    return out


def active_window(windows: Sequence[MaintenanceWindow], network: str, t: float
                  ) -> MaintenanceWindow | None:
    """The window covering `network` at `t` that ends last, or None."""
    covering = [w for w in windows if w.covers(network, t)]
    return max(covering, key=lambda w: w.end) if covering else None


def began_in_maintenance(windows: Sequence[MaintenanceWindow], network: str,
                         started_at: float) -> bool:
    """An incident is marked planned when its first failed run started inside a window for its
    network (one that merely runs into a window is not)."""
    return any(w.covers(network, started_at) for w in windows)
