"""The monitor's HTTP side: /metrics, /healthz, /readyz, the status page at / and each
network's at /network/NAME (static files in static/) and the read-only API they read, /api/v1/
(monitor/web/api.py; its feed, badges and per-network resources beside it; docs/api.md).

Default listen address 127.0.0.1:9464 (loopback: expose it deliberately, e.g. `--listen
0.0.0.0:9464` behind a firewall).

    runner = await start_server("127.0.0.1", 0, registry=sink.registry,
                                status=StatusSource.from_config(config, store.path))
    port = bound_port(runner)
    attach(runner, scheduler=scheduler, store=store)   # /readyz turns 200 once both are up
    ...
    await runner.cleanup()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.core.logs import OncePer
from monitor.core.warmup import Warming
from monitor.exporter.exposition import Exposition, negotiate
from monitor.storage.store import StoreHealth
from monitor.web import api, badges, detail, feed
from monitor.web.api import StatusSource, bad_requests
from monitor.web.guard import Guard
from monitor.web.webconfig import WebConfig

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464  # the port prometheus/exporter-toolkit's default-port list leaves free
DEFAULT_LISTEN = f"{DEFAULT_HOST}:{DEFAULT_PORT}"

REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
EXPOSITION_KEY = web.AppKey("exposition", Exposition)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Bounds on what a client can make the server hold: every endpoint is a GET, so a body is
# never needed; header lines and counts stay at aiohttp's limits, set here explicitly; an idle
# keep-alive connection is closed after 75 s (aiohttp's default is an hour). The request rate
# and authentication are monitor/web/guard.py's.
MAX_REQUEST_BODY = 64 << 10
# What aiohttp logs about a request it could not handle (a malformed one: each with a
# traceback): one line a minute at most, so that no client can fill the log.
REQUEST_ERRORS = logging.getLogger("monitor.web.requests")
REQUEST_ERRORS.addFilter(OncePer(60.0))
KEEPALIVE_TIMEOUT_S = 75.0
MAX_LINE = MAX_FIELD = 8190
MAX_HEADERS = 100


class Scheduling(Protocol):
    """What /readyz asks of the scheduler (monitor.runtime.scheduler.Scheduler)."""

    @property
    def running(self) -> bool: ...


class Storing(Protocol):
    """What /readyz asks of the store (monitor.storage.store.Store)."""

    @property
    def is_open(self) -> bool: ...

    def health(self) -> StoreHealth: ...


class WarmingUp(Protocol):
    """What /readyz and the status API ask of the warm-up (monitor.core.warmup.WarmUp)."""

    def warming(self) -> Mapping[str, Warming]: ...


@dataclass
class Components:
    """What /readyz waits for; mutable so they can be attached after the server started."""

    scheduler: Scheduling | None = None
    store: Storing | None = None
    warmup: WarmingUp | None = None


COMPONENTS_KEY = web.AppKey("components", Components)


async def metrics(request: web.Request) -> web.StreamResponse:
    fmt, encoder, content_type = negotiate(request.headers.get("Accept", ""))
    if fmt is None:  # a format the fast renderer does not write: prometheus_client's own
        body = await asyncio.to_thread(encoder, request.app[REGISTRY_KEY])
        return web.Response(body=body, headers={"Content-Type": content_type})
    # The same bytes as prometheus_client's encoder, from cached text, on the event loop in
    # slices of about a millisecond: a rendering thread would slow the loop far more
    # (monitor/exporter/exposition.py). The store-backed SLA figures are never read here:
    # their collector serves what it evaluated in the background.
    parts = await request.app[EXPOSITION_KEY].render_parts(fmt)
    # Written as rendered, a batch at a time, never joined into one body: joining 20 MB
    # would hold the loop for ~20 ms and keep a second copy of it in memory.
    response = web.StreamResponse(headers={"Content-Type": content_type})
    response.content_length = sum(map(len, parts))
    await response.prepare(request)
    try:
        for batch in _batches(parts, WRITE_BATCH):
            await response.write(batch)
        await response.write_eof()
    except ConnectionResetError:  # the scraper gave up (its timeout) or went away
        pass
    return response


WRITE_BATCH = 1 << 18  # bytes joined per write: the socket takes them while the loop goes on


def _batches(parts: list[bytes], size: int) -> Iterator[bytes]:
    """`parts` joined into pieces of about `size` bytes (or one part, when larger)."""
    batch: list[bytes] = []
    held = 0
    for part in parts:
        batch.append(part)
        held += len(part)
        if held >= size:
            yield b"".join(batch)
            batch, held = [], 0
    if batch:
        yield b"".join(batch)


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
    elif not (health := store.health()).writable:  # results cannot be stored: not ready
        problems.append(health.describe())
    if problems:
        return web.Response(status=503, text="not ready: " + ", ".join(problems) + "\n")
    warmup = request.app[COMPONENTS_KEY].warmup
    warming = warmup.warming() if warmup is not None else {}
    # Ready all the same: the alerts' windows are filling (docs/sla.md, "Warm-up"), or the
    # store's rollups are not updated while every result is stored
    note = store.health().rollup_note() if store is not None else ""
    detail = (f"{note}\n" if note else "") + "".join(
        f"{net}: {w.describe()} (1h page window)\n" for net, w in sorted(warming.items()))
    return web.Response(text="ready\n" + detail)


STATIC = Path(__file__).with_name("static")
# The page and its assets come from this server only: nothing from a CDN, no inline script.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def status_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


async def network_page(request: web.Request) -> web.FileResponse:
    """The page of one network (static/network.html, drawn from /api/v1/networks/{name});
    404 for a network the config does not have."""
    source = request.app.get(api.SOURCE_KEY)
    if source is not None and request.match_info["name"] not in source.names:
        raise web.HTTPNotFound(text="404: no such network; see /\n")
    return web.FileResponse(STATIC / "network.html", headers=PAGE_HEADERS)


@web.middleware
async def page_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if request.path.startswith("/static/"):
        response.headers.update(PAGE_HEADERS)
    return response


def build_app(registry: CollectorRegistry, scheduler: Scheduling | None = None,
              store: Storing | None = None, status: StatusSource | None = None,
              web_config: WebConfig | None = None) -> web.Application:
    """Every route and middleware of the monitor's HTTP side, registered here and only here
    (a middleware added to this list wraps them all). The guard's come first: whatever a
    route does, a request reaches it only past the method, rate and authentication checks."""
    guard = Guard(web_config)
    app = web.Application(middlewares=[*guard.middlewares, bad_requests,
                                       page_headers], client_max_size=MAX_REQUEST_BODY)
    app.on_response_prepare.append(guard.add_headers)
    app[REGISTRY_KEY] = registry
    app[EXPOSITION_KEY] = Exposition(registry)
    components = app[COMPONENTS_KEY] = Components(scheduler, store)
    app[api.WARMING_KEY] = lambda: (components.warmup.warming()
                                    if components.warmup is not None else {})
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", status_page)
    app.router.add_get("/network/{name}", network_page)
    app.router.add_static("/static/", STATIC)
    # the feed, badges and a network's page resources, before the API's catch-all 404
    for path, handler in (*detail.ROUTES, *feed.ROUTES, *badges.ROUTES):
        app.router.add_get(path, handler)
    api.add_routes(app, status, registry)
    return app


async def start_server(host: str, port: int, *, registry: CollectorRegistry,
                       scheduler: Scheduling | None = None, store: Storing | None = None,
                       status: StatusSource | None = None,
                       web_config: WebConfig | None = None) -> web.AppRunner:
    """Serve on host:port (0 = a free port, see bound_port); stop with `await runner.cleanup()`.
    `status` (the store files and the config's public side) feeds /api/v1/ and the page;
    `web_config` (monitor/web/webconfig.py) adds TLS and authentication."""
    runner = web.AppRunner(build_app(registry, scheduler, store, status, web_config),
                           handle_signals=False, access_log=None,
                           keepalive_timeout=KEEPALIVE_TIMEOUT_S, max_line_size=MAX_LINE,
                           max_field_size=MAX_FIELD, max_headers=MAX_HEADERS,
                           logger=REQUEST_ERRORS)
    await runner.setup()
    site = web.TCPSite(runner, host, port,
                       ssl_context=web_config.tls if web_config is not None else None)
    await site.start()
    return runner


def attach(runner: web.AppRunner, *, scheduler: Scheduling | None = None,
           store: Storing | None = None, warmup: WarmingUp | None = None) -> None:
    """Hand the scheduler, store and/or warm-up to a running server (for /readyz)."""
    components = runner.app[COMPONENTS_KEY]
    if warmup is not None:
        components.warmup = warmup
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
