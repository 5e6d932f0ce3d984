"""SVG badges of one network for READMEs and wikis (docs/api.md, "Badges"), in the flat style
of shields.io and Gatus, built with xml.etree (every text escaped by the serializer):

    /api/v1/networks/{name}/badges/uptime-24h.svg   uptime-7d.svg   uptime-30d.svg
    /api/v1/networks/{name}/badges/state.svg        ttft-p95.svg

Colours come from the network's SLA profile: uptime is green at or above the availability
target, amber within five error budgets of it, red below; TTFT p95 (last 24 h) green within
the profile's target, amber up to twice it, red beyond; grey without data."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from monitor.analysis.incidents import set_aside
from monitor.analysis.queries import daily_outcomes, ttft_by_interval
from monitor.analysis.status import DEGRADED, DOWN, MAINTENANCE, UP, network_states
from monitor.core.result import Outcome
from monitor.core.slaprofile import SLAProfile
from monitor.web import api
from monitor.web.api import StatusSource, _error_json, _read, _source
from monitor.web.conditional import cached_response
from monitor.web.detail import known_network

SVG = "http://www.w3.org/2000/svg"
CONTENT_TYPE = "image/svg+xml; charset=utf-8"
MAX_AGE_S = 60.0
GREEN, AMBER, RED, GREY, BLUE = "#2e9f4a", "#c48a00", "#d2372c", "#8a8f98", "#3b6fd1"
UPTIME_PERIODS = {"uptime-24h": ("24h", 86400.0), "uptime-7d": ("7d", 7 * 86400.0),
                  "uptime-30d": ("30d", 30 * 86400.0)}
STATE_COLOURS = {UP: GREEN, DEGRADED: AMBER, DOWN: RED, MAINTENANCE: BLUE}
DEFAULT_AVAILABILITY = 0.99  # a network without an SLA profile, as on the status page
AMBER_BUDGETS = 5  # uptime within this many error budgets of the target is amber


@dataclass(frozen=True, slots=True)
class Badge:
    label: str
    value: str
    colour: str


def uptime_colour(value: float | None, target: float) -> str:
    if value is None:
        return GREY
    if value >= target:
        return GREEN
    return AMBER if value >= 1 - AMBER_BUDGETS * (1 - target) else RED


def ttft_colour(value: float | None, target: float | None) -> str:
    if value is None:
        return GREY
    if target is None:
        return BLUE  # nothing to judge it against
    return GREEN if value <= target else AMBER if value <= 2 * target else RED


def percent(value: float) -> str:
    """Rounded down at two decimals: 99.999 % never shows as 100 %."""
    return f"{math.floor(value * 10000) / 100:.2f}%"


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _uptime(source: StatusSource, name: str, now: float, period_s: float) -> float | None:
    counts = daily_outcomes(source.stores, since=now - period_s, until=now, networks=[name],
                            maintenance=source.maintenance)
    ok = failed = 0
    for (network, _day), c in counts.items():
        if network != name:
            continue
        for outcome, n in c.kept.items():
            if outcome == Outcome.OK.value:
                ok += n
            elif not set_aside(outcome):
                failed += n
    return ok / (ok + failed) if ok + failed else None


def make(source: StatusSource, name: str, kind: str, now: float) -> Badge:
    """The badge `kind` of network `name` now (reads the store)."""
    profile: SLAProfile | None = source.profiles.get(name)
    if kind in UPTIME_PERIODS:
        label, period = UPTIME_PERIODS[kind]
        value = _uptime(source, name, now, period)
        target = (profile.availability if profile and profile.availability is not None
                  else DEFAULT_AVAILABILITY)
        return Badge(f"uptime {label}", "no data" if value is None else percent(value),
                     uptime_colour(value, target))
    if kind == "state":
        state = network_states(source.stores, {name: source.plans()[name]}, now=now,
                               min_failures=source.min_failures,
                               maintenance=source.maintenance)[name].state
        return Badge(name, state, STATE_COLOURS.get(state, GREY))
    samples = ttft_by_interval(source.stores, since=now - 86400, until=now, step_s=86400,
                               networks=[name]).get((name, 0))
    p95 = samples.quantile(0.95) if samples else None
    return Badge("TTFT p95 24h", "no data" if p95 is None else seconds(p95),
                 ttft_colour(p95, profile.ttft_p95_s if profile else None))


KINDS = (*UPTIME_PERIODS, "state", "ttft-p95")


def text_width(text: str) -> int:
    """About how wide `text` is in 11 px Verdana (the SVG's textLength makes it exact)."""
    wide = sum(1 for c in text if c.isupper() or c in "mwMW%@")
    narrow = sum(1 for c in text if c in "ijlt.,:;|!' ()")
    return round(7.5 * wide + 4.0 * narrow + 6.6 * (len(text) - wide - narrow))


def render(badge: Badge) -> bytes:
    ET.register_namespace("", SVG)
    left, right = text_width(badge.label) + 12, text_width(badge.value) + 12
    width = left + right
    said = f"{badge.label}: {badge.value}"
    svg = ET.Element(f"{{{SVG}}}svg", {"width": str(width), "height": "20", "role": "img",
                                       "viewBox": f"0 0 {width} 20", "aria-label": said})

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, f"{{{SVG}}}{tag}",
                             {k.replace("_", "-"): v for k, v in attrs.items()})
        node.text = text
        return node

    sub(svg, "title", said)
    shade = sub(svg, "linearGradient", id="s", x2="0", y2="100%")
    sub(shade, "stop", offset="0", stop_color="#bbb", stop_opacity=".1")
    sub(shade, "stop", offset="1", stop_opacity=".1")
    clip = sub(svg, "clipPath", id="r")
    sub(clip, "rect", width=str(width), height="20", rx="3", fill="#fff")
    g = sub(svg, "g", clip_path="url(#r)")
    sub(g, "rect", width=str(left), height="20", fill="#555")
    sub(g, "rect", x=str(left), width=str(right), height="20", fill=badge.colour)
    sub(g, "rect", width=str(width), height="20", fill="url(#s)")
    words = sub(svg, "g", fill="#fff", text_anchor="middle", font_size="11",
                font_family="Verdana,Geneva,DejaVu Sans,sans-serif")
    sub(words, "text", badge.label, x=str(left / 2), y="14",
        textLength=str(left - 12), lengthAdjust="spacingAndGlyphs")
    sub(words, "text", badge.value, x=str(left + right / 2), y="14",
        textLength=str(right - 12), lengthAdjust="spacingAndGlyphs")
    out: bytes = ET.tostring(svg, encoding="utf-8", xml_declaration=False)
    return out


async def badge(request: web.Request) -> web.Response:
    source = _source(request)
    name = known_network(request, source)
    kind = request.match_info["badge"]
    if kind not in KINDS:
        raise web.HTTPNotFound(text=_error_json(
            f"no badge {kind!r}; badges: {', '.join(k + '.svg' for k in KINDS)}"),
            content_type="application/json")
    now = source.clock()
    made: Badge = await _read(request, ("badge", name, kind),
                              lambda: make(source, name, kind, now),
                              ttl_s=min(MAX_AGE_S, api.INCIDENTS_TTL_S))
    return cached_response(request, render(made), CONTENT_TYPE, MAX_AGE_S)


ROUTES: tuple[tuple[str, Callable[[web.Request], Any]], ...] = (
    ("/api/v1/networks/{name}/badges/{badge}.svg", badge),
)
