"""Serve simulated networks: build the aiohttp app for one network and run it on loopback.

`start_network(profile)` listens on 127.0.0.1 (port 0 = a free port; `host="::1"` for IPv6)
and plays node churn by really closing the listening socket (connections refused) and aborting
live connections. With an `ssl_context` (monitor.simulator.tls.server_context) it serves
HTTPS, optionally requiring client certificates.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass, field

from aiohttp import web

from monitor.simulator import account, akashml, chutes, livepeer_gateway, theta
from monitor.simulator import jobapi as jobapi_protocol
from monitor.simulator import livepeer as livepeer_protocol
from monitor.simulator import ollama as ollama_protocol
from monitor.simulator import openai as openai_protocol
from monitor.simulator.network import SimNetwork
from monitor.simulator.openai import SIM_KEY
from monitor.simulator.profiles import PROFILES, FaultProfile

# Protocol modules, each with add_routes(app). Adding a protocol is one line here.
# After them, networks whose wire details differ from their protocol's (docs/networks.md).
PROTOCOLS = (openai_protocol, ollama_protocol, livepeer_protocol, jobapi_protocol,
             livepeer_gateway, theta, chutes, akashml)


async def _truth(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    truth = sim.truth.get(request.match_info["request_id"])
    if truth is None:
        raise web.HTTPNotFound(text="unknown request id\n")
    return web.json_response(truth.to_dict())


async def _stats(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    faults: dict[str, int] = {}
    for t in sim.truth.values():
        key = t.fault or "none"
        faults[key] = faults.get(key, 0) + 1
    return web.json_response({"profile": sim.profile.name, "requests": sim.requests,
                              "up": sim.up, "faults": faults})


async def _health(request: web.Request) -> web.Response:
    received = time.perf_counter()
    sim = request.app[SIM_KEY]
    if sim.initializing:
        return web.Response(status=503, text="Service Initializing\n")
    # written here, not after returning, so that the truth can say when the answer left
    response = web.json_response({"status": "ok", "profile": sim.profile.name})
    await response.prepare(request)
    await response.write_eof()
    sim.health_log.append((received, time.perf_counter()))
    return response


async def _health_log(request: web.Request) -> web.Response:
    """The truth of GET /health, in arrival order: [received, written] perf_counter stamps of
    each answer (a benchmark of sequential health checks pairs them with its probes)."""
    return web.json_response(list(request.app[SIM_KEY].health_log))


async def _close_connection(request: web.Request, response: web.StreamResponse) -> None:
    response.force_close()


async def _name_node(request: web.Request, response: web.StreamResponse) -> None:
    """The serving node in its header, on every answer of a profile that names nodes."""
    sim = request.app[SIM_KEY]
    node = sim.serving_node() if not request.path.startswith("/sim/") else None
    if node is not None:
        response.headers[sim.profile.node_header] = node


def build_app(sim: SimNetwork) -> web.Application:
    checks = [account.middleware(sim)] if account.metered(sim.profile) else []
    app = web.Application(client_max_size=16 << 20, middlewares=checks)
    app[SIM_KEY] = sim
    app.on_response_prepare.append(_name_node)
    for protocol in PROTOCOLS:
        protocol.add_routes(app)
    app.router.add_get("/health", _health)
    app.router.add_get("/sim/truth/{request_id}", _truth)
    app.router.add_get("/sim/stats", _stats)
    app.router.add_get("/sim/health-log", _health_log)
    if not sim.profile.keep_alive:
        app.on_response_prepare.append(_close_connection)
    return app


@dataclass
class RunningNetwork:
    """A simulated network listening on loopback."""

    name: str
    sim: SimNetwork
    host: str
    port: int
    _runner: web.AppRunner
    _server: asyncio.base_events.Server | None
    _churn: asyncio.Task[None] | None = field(default=None)
    ssl_context: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (with /v1)."""
        return self.url + "/v1"

    async def go_down(self) -> None:
        """The node disappears: refuse new connections and reset the live ones."""
        self.sim.up = False
        if self._server is not None:
            self._server.close()
            self._server = None
        server = self._runner.server
        for handler in list(server.connections) if server else []:
            transport = handler.transport
            if transport is not None:
                transport.abort()

    async def come_up(self) -> None:
        if self._server is None:
            loop = asyncio.get_running_loop()
            protocol = self._runner.server
            assert protocol is not None  # the runner is set up
            self._server = await loop.create_server(protocol, self.host, self.port,
                                                    reuse_address=True, ssl=self.ssl_context)
        self.sim.up = True

    async def _play_churn(self) -> None:
        profile = self.sim.profile
        while True:
            await asyncio.sleep(max(profile.churn_every_s - profile.churn_down_s, 0.1))
            await self.go_down()
            self.sim.replace_node()  # the node that went away does not come back
            await asyncio.sleep(profile.churn_down_s)
            await self.come_up()

    async def stop(self) -> None:
        if self._churn is not None:
            self._churn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._churn
        await self.go_down()  # reset live streams so that shutdown does not wait for them
        await self._runner.cleanup()


async def start_network(
    profile: FaultProfile | str,
    *,
    name: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 0,
    model: str = "sim-llama-3.1-8b-instruct",
    ssl_context: ssl.SSLContext | None = None,
) -> RunningNetwork:
    if isinstance(profile, str):
        profile = PROFILES[profile]
    sim = SimNetwork(profile=profile, seed=seed, model=model)
    runner = web.AppRunner(build_app(sim), handle_signals=False, access_log=None,
                           handler_cancellation=True)
    await runner.setup()
    loop = asyncio.get_running_loop()
    assert runner.server is not None
    server = await loop.create_server(runner.server, host, port, reuse_address=True,
                                      backlog=4096, ssl=ssl_context)
    bound = server.sockets[0].getsockname()[1]
    net = RunningNetwork(name or profile.name, sim, host, bound, runner, server,
                         ssl_context=ssl_context)
    if profile.churn_every_s > 0 and profile.churn_down_s > 0:
        net._churn = asyncio.create_task(net._play_churn())
    return net


