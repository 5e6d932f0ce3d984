"""A loopback server that records what a probe sends and answers with canned responses."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class Capture:
    url: str
    seen: list[Seen] = field(default_factory=list)


@contextlib.asynccontextmanager
async def capture_server(routes: dict[tuple[str, str], Handler]) -> AsyncIterator[Capture]:
    """Serve `{(method, path): handler}` on 127.0.0.1; every request is recorded first."""
    cap = Capture(url="")

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed = await request.json() if body else None
        except ValueError:
            parsed = body
        cap.seen.append(Seen(request.method, request.path, dict(request.headers), parsed))
        return await handler(request)

    app = web.Application(middlewares=[record])
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    cap.url = f"http://127.0.0.1:{port}"
    try:
        yield cap
    finally:
        await runner.cleanup()
