"""The quorum view of the report: when was a network down as seen from several locations at
once, and when did only some places see it fail (their path, not the network)?

Time is cut into slots (5 minutes by default, the page alert's short window). In a slot, a
location sees the network down when most of its judged runs there failed. The network is down
in a slot when at least `quorum` locations see it down; a slot is judged only when at least
`quorum` locations ran it (fewer cannot form a quorum, and say nothing either way). Uptime is
1 - down slots / judged slots; consecutive down slots make one incident. The same rule the
generated alerts apply (monitor.exporter.rules), over stored runs instead of live series.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.core.result import NOT_THE_NETWORKS_FAULT
from monitor.storage.filters import RunFilter
from monitor.storage.reads import SlotKey, slot_counts

DEFAULT_SLOT_S = 300.0


@dataclass(frozen=True, slots=True)
class QuorumSummary:
    """One network over the period, by the quorum rule."""

    network: str
    quorum: int
    slot_s: float
    locations: tuple[str, ...]  # every location with runs of it in the period
    judged_slots: int  # slots with at least `quorum` locations' runs
    down_slots: int  # judged slots where at least `quorum` locations saw it down
    local_slots: int  # slots where some locations, fewer than `quorum`, saw it down
    incidents: tuple[tuple[float, float], ...]  # (start, end) of consecutive down slots

    @property
    def uptime(self) -> float | None:
        return 1 - self.down_slots / self.judged_slots if self.judged_slots else None


def summarise(judged: Mapping[SlotKey, int], failed: Mapping[SlotKey, int], *, quorum: int,
              slot_s: float) -> list[QuorumSummary]:
    """Per network, from judged and failed run counts per (network, location, slot)."""
    if quorum < 1:
        raise ValueError("quorum must be at least 1")
    ran: dict[tuple[str, int], set[str]] = defaultdict(set)
    down: dict[tuple[str, int], set[str]] = defaultdict(set)
    locations: dict[str, set[str]] = defaultdict(set)
    for (network, location, slot), n in judged.items():
        locations[network].add(location)
        if n <= 0:  # only runs that are not the network's fault (e.g. the key refused)
            continue
        ran[network, slot].add(location)
        if 2 * failed.get((network, location, slot), 0) > n:
            down[network, slot].add(location)
    summaries = []
    for network in sorted(locations):
        slots = sorted(s for (net, s) in ran if net == network)
        judged_slots = [s for s in slots if len(ran[network, s]) >= quorum]
        down_slots = [s for s in judged_slots if len(down[network, s]) >= quorum]
        local = [s for s in slots if 0 < len(down[network, s]) < quorum]
        summaries.append(QuorumSummary(
            network=network, quorum=quorum, slot_s=slot_s,
            locations=tuple(sorted(locations[network])), judged_slots=len(judged_slots),
            down_slots=len(down_slots), local_slots=len(local),
            incidents=_incidents(down_slots, slot_s)))
    return summaries


def _incidents(down_slots: Sequence[int], slot_s: float) -> tuple[tuple[float, float], ...]:
    spans: list[list[int]] = []
    for slot in down_slots:
        if spans and slot == spans[-1][1] + 1:
            spans[-1][1] = slot
        else:
            spans.append([slot, slot])
    return tuple((first * slot_s, (last + 1) * slot_s) for first, last in spans)


def quorum_from_stores(paths: Sequence[str | Path], *, quorum: int,
                       slot_s: float = DEFAULT_SLOT_S, runs: RunFilter | None = None,
                       not_judged: Collection[str] = NOT_THE_NETWORKS_FAULT
                       ) -> list[QuorumSummary]:
    """The quorum view over store files (one per agent and location, merged)."""
    judged, failed = slot_counts(paths, slot_s, runs or RunFilter(), not_judged=not_judged)
    return summarise(judged, failed, quorum=quorum, slot_s=slot_s)


# -- rendering ---------------------------------------------------------------------------------

HEADERS = ("network", "locations", "judged slots", "down (quorum)", "uptime",
           "seen down locally", "incidents", "longest")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _cells(s: QuorumSummary) -> list[str]:
    longest = max((end - start for start, end in s.incidents), default=0.0)
    return [s.network, f"{len(s.locations)} ({', '.join(s.locations)})", str(s.judged_slots),
            str(s.down_slots), "-" if s.uptime is None else f"{s.uptime * 100:.3f}%",
            str(s.local_slots), str(len(s.incidents)), _minutes(longest) if longest else "-"]


def title(summaries: Sequence[QuorumSummary]) -> str:
    if not summaries:
        return "Quorum: no runs"
    s = summaries[0]
    return (f"Quorum: down only when at least {s.quorum} locations saw most runs fail in the "
            f"same {_minutes(s.slot_s)} slot")


def render_text(summaries: Sequence[QuorumSummary]) -> str:
    rows = [list(HEADERS), *(_cells(s) for s in summaries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = [title(summaries)]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    lines += [f"  {s.network} down {_when(start)} - {_when(end)}"
              for s in summaries for start, end in s.incidents]
    return "\n".join(lines) + "\n"


def render_markdown(summaries: Sequence[QuorumSummary]) -> str:
    lines = [f"## {title(summaries)}", "", "| " + " | ".join(HEADERS) + " |",
             "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(_cells(s)) + " |" for s in summaries]
    return "\n".join(lines) + "\n"


def to_json(summaries: Sequence[QuorumSummary]) -> list[dict[str, object]]:
    return [{"network": s.network, "quorum": s.quorum, "slot_s": s.slot_s,
             "locations": list(s.locations), "judged_slots": s.judged_slots,
             "down_slots": s.down_slots, "local_slots": s.local_slots, "uptime": s.uptime,
             "incidents": [{"start": start, "end": end} for start, end in s.incidents]}
            for s in summaries]


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))
