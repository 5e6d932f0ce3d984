"""The report's charts, drawn by matplotlib as inline SVG: nothing to fetch when the page is
opened, crisp when printed. Each function takes the `Report` and returns one <svg> element
(or None when the report has nothing to draw for it).

matplotlib is a core dependency; monitor.analysis.report_html still renders the tables
without the charts when it cannot be imported (a broken install).
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from matplotlib import rcParams
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from monitor.analysis.capacity import CurvePoint
from monitor.analysis.report import PERCENTILES, Report
from monitor.core.result import OUTCOMES

WIDTH_IN = 8.0
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
OUTCOME_COLOURS = {"ok": "#4caf50", "wrong_output": "#9c27b0", "timeout": "#ff9800",
                   "stalled": "#ffc107", "connect_error": "#795548", "disconnect": "#f44336",
                   "rate_limited": "#2196f3", "http_error": "#e91e63", "malformed": "#607d8b",
                   "job_failed": "#3f51b5", "auth_error": "#9e9e9e",
                   "quota_exhausted": "#bdbdbd"}
STATE_COLOURS = {"met": "#c8e6c9", "missed": "#ffcdd2", "no data": "#eeeeee"}


@dataclass(frozen=True, slots=True)
class Chart:
    name: str  # an id for the page
    title: str
    caption: str  # how to read it
    svg: str


def charts(report: Report) -> list[Chart]:
    """Every chart the report has data for, in the page's order."""
    out = []
    for name, title, caption, draw in CHARTS:
        svg = draw(report, name)
        if svg is not None:
            out.append(Chart(name, title, caption, svg))
    return out


def _colours(labels: Sequence[str]) -> dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(sorted(set(labels)))}


def _svg(fig: Figure, salt: str) -> str:
    """The figure as an <svg> element for inline use: no XML prolog or DOCTYPE (which names an
    external DTD), no metadata, ids unique to this chart."""
    rcParams["svg.hashsalt"] = salt  # deterministic ids that differ between charts
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight",
                metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    text = buf.getvalue()
    return text[text.index("<svg"):].strip()


def _figure(rows: int = 1, height: float = 3.0) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, max(height, 0.45 * rows + 1.2)), layout="constrained")
    ax = fig.subplots()
    ax.grid(True, axis="both", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def availability_per_day(report: Report, name: str) -> str | None:
    days = [d for d in report.days if d.availability is not None]
    if not days:
        return None
    fig, ax = _figure()
    colours = _colours([d.network for d in days])

    def ordinal(day: str) -> int:
        return dt.date.fromisoformat(day).toordinal()

    for network, colour in colours.items():
        points = [d for d in days if d.network == network]
        ax.plot([ordinal(d.day) for d in points], [100 * (d.availability or 0.0) for d in points],
                marker="o", markersize=3, linewidth=1.4, color=colour, label=network)
    lowest = min(d.availability or 0.0 for d in days)
    ax.set_ylabel("availability, %")
    ax.set_ylim(max(0.0, 100 * lowest - 2), 100.5)
    first, last = ordinal(min(d.day for d in days)), ordinal(max(d.day for d in days))
    ax.set_xlim(first - 1, last + 1)
    step = max(1, math.ceil((last - first + 1) / 8))  # at most about 8 dates on the axis
    ticks = list(range(first, last + 1, step))
    ax.set_xticks(ticks, [dt.date.fromordinal(t).isoformat() for t in ticks], rotation=30,
                  ha="right")
    ax.legend(loc="lower left", fontsize="small", frameon=False)
    return _svg(fig, name)


def ttft_cdf(report: Report, name: str) -> str | None:
    groups = [g for g in report.groups if g.ttft_percentiles_s]
    if not groups:
        return None
    fig, ax = _figure()
    colours = _colours([g.label for g in groups])
    for g in groups:
        values = [max(v, 1e-4) for v in g.ttft_percentiles_s]  # a log axis has no 0
        ax.step(values, PERCENTILES, where="post", color=colours[g.label], linewidth=1.4,
                label=g.label)
    ax.set_xscale("log")
    ax.set_xlabel("time to first token, s (log scale)")
    ax.set_ylabel("share of runs")
    ax.set_ylim(0, 1.01)
    ax.axhline(0.95, color="#9e9e9e", linewidth=0.8, linestyle="--")
    ax.legend(loc="lower right", fontsize="small", frameon=False)
    return _svg(fig, name)


def decode_distribution(report: Report, name: str) -> str | None:
    groups = [g for g in report.groups if g.decode_percentiles]
    if not groups:
        return None
    fig, ax = _figure(len(groups))
    stats = []
    for g in groups:
        p = g.decode_percentiles
        stats.append({"label": g.label, "whislo": p[5], "q1": p[25], "med": p[50],
                      "q3": p[75], "whishi": p[95], "fliers": []})
    boxes = ax.bxp(stats, orientation="horizontal", patch_artist=True, showfliers=False,
                   widths=0.5)
    colours = _colours([g.label for g in groups])
    for patch, g in zip(boxes["boxes"], groups, strict=True):
        patch.set_facecolor(colours[g.label])
        patch.set_alpha(0.6)
    ax.set_xlabel("decode rate, tokens/s (box: p25-p75, line: median, whiskers: p5-p95)")
    ax.invert_yaxis()
    return _svg(fig, name)


def outcome_breakdown(report: Report, name: str) -> str | None:
    groups = [g for g in report.groups if g.runs]
    if not groups:
        return None
    fig, ax = _figure(len(groups))
    labels = [g.label for g in groups]
    left = [0.0] * len(groups)
    present = [o for o in OUTCOMES if any(g.outcomes.get(o) for g in groups)]
    present += sorted({o for g in groups for o in g.outcomes} - set(OUTCOMES))
    for outcome in present:
        shares = [100 * g.outcomes.get(outcome, 0) / g.runs for g in groups]
        ax.barh(labels, shares, left=left, color=OUTCOME_COLOURS.get(outcome, "#000000"),
                label=outcome, height=0.6)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of runs, %")
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=5, fontsize="small",
              frameon=False)
    return _svg(fig, name)


def tier_grid(report: Report, name: str) -> str | None:
    if not report.tiers:
        return None
    networks = sorted({c.network for c in report.tiers})
    tiers = sorted({c.tier for c in report.tiers})
    cells = {(c.network, c.tier): c for c in report.tiers}
    states = ("met", "missed", "no data")
    grid = [[states.index(cells[n, t].state) if (n, t) in cells else 2 for t in tiers]
            for n in networks]
    fig, ax = _figure(len(networks), height=1.0 + 0.5 * len(networks))
    ax.grid(False)
    ax.imshow(grid, cmap=ListedColormap([STATE_COLOURS[s] for s in states]), vmin=0, vmax=2,
              aspect="auto")
    for i, network in enumerate(networks):
        for j, tier in enumerate(tiers):
            cell = cells.get((network, tier))
            text = "no data" if cell is None else (
                f"{cell.verdict.split(' (')[0]}\n{cell.runs} runs")
            ax.text(j, i, text, ha="center", va="center", fontsize="small")
    ax.set_xticks(range(len(tiers)), tiers)
    ax.set_yticks(range(len(networks)), networks)
    ax.xaxis.tick_top()
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _svg(fig, name)


def cost(report: Report, name: str) -> str | None:
    groups = [g for g in report.groups if g.effective_usd_per_mtok is not None]
    if not groups:
        return None
    fig, ax = _figure(len(groups))
    labels = [g.label for g in groups]
    colours = _colours(labels)
    ax.barh(labels, [g.effective_usd_per_mtok or 0.0 for g in groups], height=0.6,
            color=[colours[label] for label in labels], label="effective: per good token")
    listed = [(g.label, g.list_usd_per_mtok) for g in groups if g.list_usd_per_mtok]
    if listed:
        ax.scatter([v for _, v in listed], [label for label, _ in listed], marker="|", s=400,
                   color="#212121", zorder=3, label="list price")
    ax.set_xlabel("USD per million good output tokens")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize="small", frameon=False)
    return _svg(fig, name)


def _capacity_curve(report: Report, name: str, value: Callable[[CurvePoint], float | None],
                    ylabel: str) -> str | None:
    """One line per network tier over concurrent streams (log2 axis), from the ladders."""
    tiers = [t for t in report.capacity if t.curve]
    if not tiers:
        return None
    fig, ax = _figure(height=3.2)
    colours = _colours([f"{t.network}/{t.target}" for t in tiers])
    for tier in tiers:
        label = f"{tier.network}/{tier.target}"
        points = [(p.streams, v) for p in tier.curve if (v := value(p)) is not None]
        ax.plot([s for s, _ in points], [v for _, v in points], marker="o", label=label,
                color=colours[label])
        if tier.sustained_p50:
            ax.axvline(tier.sustained_p50, color=colours[label], linestyle=":", linewidth=1)
    ax.set_xscale("log", base=2)
    streams = sorted({p.streams for t in tiers for p in t.curve})
    ax.set_xticks(streams, [str(s) for s in streams])
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    return _svg(fig, name)


def capacity_throughput(report: Report, name: str) -> str | None:
    return _capacity_curve(report, name, lambda p: p.tokens_per_s, "output tokens/s")


def capacity_latency(report: Report, name: str) -> str | None:
    return _capacity_curve(report, name, lambda p: p.ttft_p95_s, "TTFT p95, s")


Draw = Callable[[Report, str], "str | None"]
CHARTS: tuple[tuple[str, str, str, Draw], ...] = (
    ("availability-per-day", "Availability per day",
     "Share of runs that ended ok, per UTC day and network (runs that count toward "
     "availability, maintenance windows excluded).", availability_per_day),
    ("ttft-cdf", "Time to first token",
     "Cumulative distribution: the share of runs whose first generated token came within x "
     "seconds; further left is faster. The dashed line marks p95.", ttft_cdf),
    ("decode-rate", "Decode rate",
     "Tokens per second after the first token, completed runs.", decode_distribution),
    ("outcomes", "Outcomes",
     "What every run ended in: ok, or the failure that ended it.", outcome_breakdown),
    ("tier-ladder", "Tier ladder",
     "Each network's model tiers judged against its SLA profile: met, missed or no data.",
     tier_grid),
    ("cost", "Cost per million good output tokens",
     "Every token billed, failed runs included, divided by the output tokens of ok runs; "
     "the bar is that effective price, the tick the list price.", cost),
    ("capacity-throughput", "Throughput by concurrency",
     "Aggregate output tokens/s of ok runs at each step of the capacity ladders (median over "
     "the ladders), one line per network tier: it grows with the streams up to the capacity, "
     "then flattens. Dotted: the sustained concurrency.", capacity_throughput),
    ("capacity-latency", "Latency by concurrency",
     "TTFT p95 at each step of the capacity ladders, one line per network tier: past the "
     "capacity requests queue and it jumps. Dotted: the sustained concurrency.",
     capacity_latency),
)
