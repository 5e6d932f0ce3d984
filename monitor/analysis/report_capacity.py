"""The report's capacity section (docs/capacity.md): per network and model tier, the sustained
concurrency the capacity ladders found and its interval, or that the data is not enough; the
SLA capacity item's verdict; and the throughput- and latency-vs-concurrency curves of every
tier side by side. Read from the store's ladders, never from the canaries' runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from monitor.analysis.capacity import CurvePoint, TierCapacity, by_tier
from monitor.core.slaprofile import ENTERPRISE, SLAProfile
from monitor.core.tables import Cell, Column
from monitor.storage.domain import Ignored
from monitor.storage.reads import read_ladders

TITLE = "Capacity: the load each network sustains (concurrency ladders, docs/capacity.md)"
# (table title, the curve point's value, how to print it)
CURVES: tuple[tuple[str, Callable[[CurvePoint], float | None], Callable[[float], str]], ...] = (
    ("Aggregate output tokens/s by concurrent streams",
     lambda p: p.tokens_per_s, lambda v: f"{v:.0f}"),
    ("TTFT p95 by concurrent streams", lambda p: p.ttft_p95_s, lambda v: _s(v)),
    ("Decode tokens/s of one stream by concurrent streams",
     lambda p: p.stream_tps_p50, lambda v: f"{v:.1f}"),
    ("Errors by concurrent streams", lambda p: p.error_rate, lambda v: f"{v:.0%}"),
)


def capacity_section(paths: Sequence[str | Path], *, since: float | None = None,
                     until: float | None = None, networks: Sequence[str] = (),
                     profiles: Mapping[str, SLAProfile] | None = None,
                     default_profile: SLAProfile = ENTERPRISE,
                     ignored: Ignored | None = None) -> tuple[TierCapacity, ...]:
    """Every tier's capacity from the ladders in the store files, judged against the SLA
    capacity item of its network's profile (if the profile has one)."""
    ladders = read_ladders(paths, since=since, until=until, networks=networks,
                           ignored=ignored)
    profiles = profiles or {}
    objectives = {}
    for ladder in ladders:
        item = profiles.get(ladder.network, default_profile).capacity
        if item is not None:
            objectives[ladder.network] = item
    return tuple(by_tier(ladders, objectives))


def _s(v: float) -> str:
    return f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"


def verdict_text(tier: TierCapacity) -> str:
    v = tier.verdict
    if v is None:
        return ""
    word = v.verdict.upper() if v.verdict != "no data" else "no data"
    return (f"SLA capacity item (sustains {v.streams} streams in {v.share_required:.0%} of "
            f"ladders): {word} ({v.met} of {v.judged} ladders)")


def statements(tiers: Sequence[TierCapacity]) -> list[str]:
    """One line a tier: what it sustains, and the SLA capacity item's verdict."""
    out = []
    for tier in tiers:
        line = f"{tier.network}/{tier.target}: {tier.statement()}"
        verdict = verdict_text(tier)
        out.append(f"{line}. {verdict}" if verdict else line)
    return out


def curves(tiers: Sequence[TierCapacity]) -> list[tuple[str, list[Column], list[list[Cell]]]]:
    """(title, columns, rows) of each curve: a row per concurrency, a column per tier, so the
    networks read side by side (medians over the ladders that reached the step)."""
    streams = sorted({p.streams for tier in tiers for p in tier.curve})
    columns = [Column("streams", right=True),
               *(Column(f"{t.network}/{t.target}", right=True) for t in tiers)]
    points: list[dict[int, CurvePoint]] = [{p.streams: p for p in t.curve} for t in tiers]
    tables = []
    for title, value, fmt in CURVES:
        rows: list[list[Cell]] = []
        for n in streams:
            cells: list[Cell] = [str(n)]
            for by_streams in points:
                v = value(by_streams[n]) if n in by_streams else None
                cells.append("-" if v is None else fmt(v))
            rows.append(cells)
        tables.append((title, columns, rows))
    return tables


def to_data(tier: TierCapacity) -> dict[str, Any]:
    """A tier's capacity for the JSON report: every field, and the statement in words."""
    return {**asdict(tier), "enough": tier.enough, "statement": tier.statement()}


NOTE = ("Sustained: the most concurrent streams a ladder held before a step broke the "
        "profile's targets (TTFT p95, decode rate, availability); the median over the "
        "ladders that measured it, with its order-statistic 95 % interval. Curves: medians "
        "over the ladders that reached each step.")
