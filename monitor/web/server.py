"""The monitor's HTTP side: /metrics, /healthz, /readyz and a small HTML status page.

Default listen address 127.0.0.1:9464 (loopback: expose it deliberately, e.g. `--listen
0.0.0.0:9464` behind a firewall). The status page reads the same registry Prometheus scrapes,
so it shows nothing the metrics do not.

    runner = await start_server("127.0.0.1", 0, registry=sink.registry)
    port = bound_port(runner)
    attach(runner, scheduler=scheduler, store=store)   # /readyz turns 200 once both are up
    ...
    await runner.cleanup()
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from monitor import __version__
from monitor.core.result import counts_toward_availability
from monitor.core.transport import DEFAULT_CERT_EXPIRY_WARNING_S

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464  # the port prometheus/exporter-toolkit's default-port list leaves free
DEFAULT_LISTEN = f"{DEFAULT_HOST}:{DEFAULT_PORT}"

REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)


class Scheduling(Protocol):
    """What /readyz asks of the scheduler (monitor.runtime.scheduler.Scheduler)."""

    @property
    def running(self) -> bool: ...


class Storing(Protocol):
    """What /readyz asks of the store (monitor.storage.store.Store)."""

    @property
    def is_open(self) -> bool: ...


@dataclass
class Components:
    """What /readyz waits for; mutable so they can be attached after the server started."""

    scheduler: Scheduling | None = None
    store: Storing | None = None


COMPONENTS_KEY = web.AppKey("components", Components)


async def metrics(request: web.Request) -> web.Response:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    # Off the event loop: the store-backed SLA collector may read SQLite for a while, and the
    # probes' timings must not wait for a scrape.
    body = await asyncio.to_thread(encoder, request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": content_type})


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    problems = []
    scheduler = request.app[COMPONENTS_KEY].scheduler
    store = request.app[COMPONENTS_KEY].store
    if scheduler is None or not scheduler.running:
        problems.append("scheduler not started")
    if store is None or not store.is_open:
        problems.append("store not open")
    if problems:
        return web.Response(status=503, text="not ready: " + ", ".join(problems) + "\n")
    return web.Response(text="ready\n")


def _samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in registry.collect():
        for s in family.samples:
            out[s.name].append((s.labels, s.value))
    return out


def _ago(t: float, now: float) -> str:
    if t <= 0:
        return "never"
    stamp = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp} ({max(now - t, 0):.0f} s ago)"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def _tls_cells(s: dict[str, list[tuple[dict[str, str], float]]], now: float
               ) -> dict[str, str]:
    """network -> its TLS cell: verification off (loud), else version and the earliest
    certificate expiry of its targets."""
    cells: dict[str, str] = {}
    expiry: dict[str, float] = {}
    version: dict[str, str] = {}
    for labels, v in s.get("depin_probe_tls_cert_expiry_timestamp_seconds", []):
        expiry[labels["network"]] = min(v, expiry.get(labels["network"], v))
    for labels, _ in s.get("depin_probe_tls_info", []):
        version[labels["network"]] = labels["version"]
    for net, when in expiry.items():
        days = (when - now) / 86400
        left = "EXPIRED" if days < 0 else f"{days:.0f} d left"
        stamp = dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%d")
        css = " class='below'" if when - now < DEFAULT_CERT_EXPIRY_WARNING_S else ""
        cells[net] = (f"<td{css}>{html.escape(version.get(net, 'TLS'))}, certificate until "
                      f"{stamp} ({left})</td>")
    for labels, v in s.get("depin_probe_tls_insecure", []):
        if v:
            cells[labels["network"]] = ("<td class='below'><strong>NOT VERIFIED</strong> "
                                        "(tls.insecure)</td>")
    return cells


def status_html(registry: CollectorRegistry, now: float | None = None) -> str:
    now = time.time() if now is None else now
    s = _samples(registry)
    runs: dict[str, float] = defaultdict(float)
    fails: dict[str, float] = defaultdict(float)
    buyer_side: dict[str, float] = defaultdict(float)  # the monitor's key or credits
    last_ok: dict[str, float] = defaultdict(float)
    for labels, v in s.get("depin_probe_runs_total", []):
        runs[labels["network"]] += v
    for labels, v in s.get("depin_probe_failures_total", []):
        counted = fails if counts_toward_availability(labels["outcome"]) else buyer_side
        counted[labels["network"]] += v
    for labels, v in s.get("depin_probe_last_success_timestamp_seconds", []):
        last_ok[labels["network"]] = max(last_ok[labels["network"]], v)
    objective = {lab["network"]: v for lab, v in s.get("depin_sla_objective", [])
                 if lab["sli"] == "availability"}
    month = {lab["network"]: v for lab, v in s.get("depin_sla_month_availability_ratio", [])}
    tls_cells = _tls_cells(s, now)
    rows = []
    for net in sorted(runs):
        n = runs[net] - buyer_side[net]  # the runs availability is judged on
        avail = (n - fails[net]) / n if n else None
        target = objective.get(net)
        verdict = "" if avail is None or target is None else (
            "meets" if avail >= target else "below")
        rows.append(
            f"<tr><td>{html.escape(net)}</td><td>{runs[net]:.0f}</td><td>{fails[net]:.0f}</td>"
            f"<td>{buyer_side[net]:.0f}</td><td class='{verdict}'>{_pct(avail)}</td>"
            f"<td>{_pct(target)}</td><td>{_pct(month.get(net))}</td>"
            f"<td>{html.escape(_ago(last_ok[net], now))}</td>"
            f"{tls_cells.get(net, '<td>-</td>')}</tr>")
    in_flight = sum(v for _, v in s.get("depin_monitor_runs_in_flight", []))
    table = "\n".join(rows) or "<tr><td colspan='9'>no network configured yet</td></tr>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>depin-monitor</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:right}}
td:first-child,th:first-child{{text-align:left}}.below{{color:#b00}}.meets{{color:#070}}</style>
</head><body>
<h1>depin-monitor {html.escape(__version__)}</h1>
<p>Counts since this monitor started (a restart resets them); the month column comes from the
store. Runs refused for the monitor's own key or credits (auth_error, quota_exhausted) are not
the network's failures: shown apart, left out of availability. Runs in flight: {in_flight:.0f}.
<a href="/metrics">/metrics</a></p>
<table><tr><th>network</th><th>runs</th><th>failed</th><th>key/credits</th>
<th>availability</th><th>target</th>
<th>this month</th><th>last success</th><th>TLS</th></tr>
{table}
</table></body></html>
"""


async def status_page(request: web.Request) -> web.Response:
    return web.Response(text=status_html(request.app[REGISTRY_KEY]), content_type="text/html")


def build_app(registry: CollectorRegistry, scheduler: Scheduling | None = None,
              store: Storing | None = None) -> web.Application:
    app = web.Application()
    app[REGISTRY_KEY] = registry
    app[COMPONENTS_KEY] = Components(scheduler, store)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", status_page)
    return app


async def start_server(host: str, port: int, *, registry: CollectorRegistry,
                       scheduler: Scheduling | None = None, store: Storing | None = None
                       ) -> web.AppRunner:
    """Serve on host:port (0 = a free port, see bound_port); stop with `await runner.cleanup()`."""
    runner = web.AppRunner(build_app(registry, scheduler, store), handle_signals=False,
                           access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def attach(runner: web.AppRunner, *, scheduler: Scheduling | None = None,
           store: Storing | None = None) -> None:
    """Hand the scheduler and/or store to a running server (for /readyz)."""
    components = runner.app[COMPONENTS_KEY]
    if scheduler is not None:
        components.scheduler = scheduler
    if store is not None:
        components.store = store


def bound_port(runner: web.AppRunner) -> int:
    """The port the server listens on (useful with port 0)."""
    return int(runner.addresses[0][1])


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` or `PORT` -> (host, port); host defaults to 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or DEFAULT_HOST
    try:
        value = int(port)
    except ValueError:
        raise ValueError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9464") from None
    if not 0 <= value <= 65535:
        raise ValueError(f"--listen {text!r}: port must be 0-65535")
    return host, value
