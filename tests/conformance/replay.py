"""A loopback HTTP server that replays one fixture: its status, headers and writes, each at its
moment (absolute deadlines from the request's arrival, so delays never accumulate), recording
when each write really went out: on a loaded machine that, not the schedule, is the truth."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from tests.conformance.corpus import Fixture


@dataclass
class Replay:
    url: str = ""
    paths: list[str] = field(default_factory=list)  # what the probe asked for
    sent: list[float] = field(default_factory=list)  # each batch, really, after the arrival


@contextlib.asynccontextmanager
async def replay_server(fixture: Fixture) -> AsyncIterator[Replay]:
    """Serve `fixture` to any POST on 127.0.0.1; always stopped."""
    seen = Replay()

    async def answer(request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        seen.paths.append(request.path)
        await request.read()
        resp = web.StreamResponse(status=fixture.status, headers=fixture.headers)
        prepared = False
        for batch in fixture.batches():
            await asyncio.sleep(max(0.0, arrived + batch.at - loop.time()))
            if not prepared:  # the status line and headers go out with the first bytes
                await resp.prepare(request)
                prepared = True
            # Stamped as the bytes are handed to the transport (write() does that before it
            # can yield): a stamp after the await would include other tasks' turns.
            seen.sent.append(loop.time() - arrived)
            if batch.data:  # an empty write: the headers alone, before any body
                await resp.write(batch.data)
        if not prepared:
            await resp.prepare(request)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    seen.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield seen
    finally:
        await runner.cleanup()
