"""Declared maintenance as the status page tells it (monitor/analysis/maintenance.py): which
windows are listed, which network is inside one, which incidents began in one."""

from __future__ import annotations

from monitor.analysis.maintenance import active_window, began_in_maintenance, listed
from monitor.core.slaprofile import MaintenanceWindow

NOW = 1_000_000.0
DAY = 86400.0
PAST = MaintenanceWindow(NOW - 7200, NOW - 3600, ("a",), "over")
NOW_A = MaintenanceWindow(NOW - 60, NOW + 60, ("a",), "now")
LATER_ALL = MaintenanceWindow(NOW + DAY, NOW + DAY + 60, (), "everyone")
LATER_B = MaintenanceWindow(NOW + 2 * DAY, NOW + 2 * DAY + 60, ("b",), "b only")
FAR = MaintenanceWindow(NOW + 40 * DAY, NOW + 41 * DAY, ("a",), "too far")
WINDOWS = (LATER_B, FAR, PAST, LATER_ALL, NOW_A)


def test_windows_under_way_or_ahead_are_listed_soonest_first() -> None:
    found = listed(WINDOWS, now=NOW)
    assert [w.reason for w in found] == ["now", "everyone", "b only"]
    assert [w.active for w in found] == [True, False, False]
    assert [w.reason for w in listed(WINDOWS, now=NOW, ahead_s=50 * DAY)][-1] == "too far"
    # a network's list: its own windows and those of every network
    assert [w.reason for w in listed(WINDOWS, now=NOW, networks=["b"])] == ["everyone",
                                                                          "b only"]


def test_a_network_is_in_maintenance_only_inside_its_window() -> None:
    assert active_window(WINDOWS, "a", NOW) == NOW_A
    assert active_window(WINDOWS, "b", NOW) is None
    assert active_window(WINDOWS, "b", NOW + DAY) == LATER_ALL
    assert active_window(WINDOWS, "a", NOW + 60) is None  # the end is not in it
    longer = MaintenanceWindow(NOW - 10, NOW + 600, (), "longer")
    assert active_window((*WINDOWS, longer), "a", NOW) == longer  # the one that ends last


def test_an_incident_is_planned_when_it_began_inside_a_window() -> None:
    assert began_in_maintenance(WINDOWS, "a", NOW - 30)
    assert not began_in_maintenance(WINDOWS, "a", NOW - 120)  # ran into it: not planned
    assert not began_in_maintenance(WINDOWS, "b", NOW - 30)
