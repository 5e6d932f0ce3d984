"""The API behind the page of one network and the maintenance list (docs/api.md):

    /api/v1/networks/{name}   its public side and state, daily availability with a 95 %
                              interval, TTFT and decode-rate history, its maintenance windows
    /api/v1/maintenance       declared windows under way or ahead

Reads go through monitor.web.api's cache and worker threads, like every other resource."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from monitor.analysis.maintenance import UPCOMING_S, ListedWindow, listed
from monitor.analysis.queries import ttft_by_interval
from monitor.analysis.stats import wilson
from monitor.analysis.status import DayBar, daily_bars, day_label, network_states
from monitor.web.api import (
    MAX_DAYS,
    StatusSource,
    _answer,
    _error_json,
    _key,
    _networks,
    _number,
    _read,
    _source,
)

BADGES = ("uptime-24h", "uptime-7d", "uptime-30d", "state", "ttft-p95")


def known_network(request: web.Request, source: StatusSource) -> str:
    """The {name} of the path when it is a configured network, else 404."""
    name = request.match_info["name"]
    if name not in source.names:
        raise web.HTTPNotFound(text=_error_json(
            f"unknown network {name!r}; configured: {', '.join(source.names)}"),
            content_type="application/json")
    return name


def window_json(w: ListedWindow, source: StatusSource) -> dict[str, Any]:
    return {"start": w.start, "end": w.end, "active": w.active, "reason": w.reason,
            "every_network": not w.networks,
            "networks": list(w.networks) or source.names}


async def maintenance(request: web.Request) -> web.Response:
    source = _source(request)
    now = source.clock()
    days = _number(request, "days", UPCOMING_S / 86400, 0, MAX_DAYS)
    names = _networks(request, source) if "network" in request.query else []
    found = listed(source.maintenance, now=now, networks=names, ahead_s=days * 86400)
    return _answer({"days": days, "windows": [window_json(w, source) for w in found]}, now)


def _day_json(b: DayBar) -> dict[str, Any]:
    interval = wilson(b.ok, b.ok + b.failed)
    return {"date": day_label(b.day), "runs": b.runs, "ok": b.ok, "failed": b.failed,
            "set_aside": dict(b.set_aside), "maintenance": b.maintenance,
            "availability": b.availability,
            "interval": None if interval is None else list(interval)}


def _history(source: StatusSource, name: str, since: float, now: float, step: float
             ) -> list[dict[str, Any]]:
    ttft = ttft_by_interval(source.stores, since=since, until=now, step_s=step, networks=[name])
    decode = ttft_by_interval(source.stores, since=since, until=now, step_s=step,
                              networks=[name], column="tokens_per_s")
    points = []
    for i in range(max(1, math.ceil((now - since) / step))):
        t, d = ttft.get((name, i)), decode.get((name, i))
        points.append({
            "start": since + i * step, "runs": t.count() if t else 0,
            "ttft_p50_s": t.quantile(0.5) if t else None,
            "ttft_p95_s": t.quantile(0.95) if t else None,
            "decode_runs": d.count() if d else 0,
            "decode_p50_tps": d.quantile(0.5) if d else None,
            # the slowest 5 %: the rate 95 % of the runs reached
            "decode_p5_tps": d.quantile(0.05) if d else None})
    return points


async def network(request: web.Request) -> web.Response:
    source = _source(request)
    name = known_network(request, source)
    now = source.clock()
    days = int(_number(request, "days", 90, 1, MAX_DAYS))
    hours = _number(request, "hours", 48, 1, 168)
    step = _number(request, "step", 3600, 300, 86400)
    since = math.floor((now - hours * 3600) / step) * step
    public = next(n for n in source.networks if n.name == name)

    def read() -> dict[str, Any]:
        state = network_states(source.stores, {name: source.plans()[name]}, now=now,
                               min_failures=source.min_failures,
                               maintenance=source.maintenance)[name]
        bars = daily_bars(source.stores, [name], days=days, now=now,
                          maintenance=source.maintenance)[name]
        return {"state": state.state, "reason": state.reason,
                "last_run_at": state.last_run_at, "failing": dict(state.failing),
                "days": [_day_json(b) for b in bars],
                "history": {"since": since, "step_s": step,
                            "points": _history(source, name, since, now, step)}}

    found = await _read(request, _key(request), read)
    path = f"/api/v1/networks/{quote(name, safe='')}"
    return _answer({
        "name": name, "kind": public.kind, "sla_profile": public.sla,
        "interval_s": public.interval_s,
        "targets": [{"name": tier, "model": model} for tier, model in public.targets],
        "jobs": list(public.jobs), **found,
        "maintenance": [window_json(w, source) for w in listed(
            source.maintenance, now=now, networks=[name])],
        "feed": f"{path}/feed.atom",
        "badges": {b: f"{path}/badges/{b}.svg" for b in BADGES}}, now)


ROUTES: tuple[tuple[str, Callable[[web.Request], Any]], ...] = (
    ("/api/v1/maintenance", maintenance),
    ("/api/v1/networks/{name}", network),
)
