"""Fault helpers shared by the simulator's protocol modules (openai, ollama, livepeer, jobapi).

`early_fault()` plays the dice's whole-response faults in a protocol's own error shape;
`cut()` drops the connection mid-response the way a dying node does (FIN or RST).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from monitor.simulator.network import SimNetwork, Truth
from monitor.simulator.profiles import Plan

ErrorBody = Callable[[int, str], web.Response]

# Ollama's answer when its queue is full (ErrMaxQueue, ollama/ollama server/sched.go), 503.
MAX_QUEUE = "server busy, please try again.  maximum pending requests exceeded"
# (status, message) a struggling node or its gateway sends; 502 comes as an nginx HTML page.
SERVER_ERRORS = (
    (500, "llama runner process has terminated: signal: killed"),
    (503, MAX_QUEUE),
    (504, "No backend available"),
    (502, None),
)
HTML_PAGE = ("<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
             "<p>Checking your browser before accessing the gateway.</p></body></html>")
NGINX_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
             "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
             "</body>\r\n</html>\r\n")


def html_variant(sim: SimNetwork, plan: Plan) -> bool:
    """Whether a `malformed` fault is a whole HTML page (else a broken chunk mid-stream)."""
    mode = sim.profile.malformed_mode
    return mode == "html" or (mode == "any" and plan.fault_at % 2 == 0)


def early_fault(sim: SimNetwork, plan: Plan, truth: Truth, error_body: ErrorBody
                ) -> web.StreamResponse | None:
    """Faults that replace the whole response, with errors in the protocol's own JSON shape."""
    headers = {"x-request-id": truth.request_id}
    if plan.fault == "http_5xx":
        status, message = SERVER_ERRORS[plan.fault_at % len(SERVER_ERRORS)]
        if message is None:
            return web.Response(status=status, text=NGINX_502, content_type="text/html",
                                headers=headers)
        resp = error_body(status, message)
        resp.headers.update(headers)
        return resp
    if plan.fault == "rate_limit":
        resp = error_body(429, "rate limit exceeded")
        resp.headers.update(headers)
        resp.headers["Retry-After"] = str(sim.profile.retry_after_s)
        return resp
    if plan.fault == "malformed" and html_variant(sim, plan):
        return web.Response(status=200, text=HTML_PAGE, content_type="text/html",
                            headers=headers)
    return None


def cut(request: web.Request, fault: str) -> None:
    """Drop the connection: `reset` sends an RST, `eof` a FIN. Raises to end the handler."""
    transport = request.transport
    if transport is not None:
        if fault == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
    raise ConnectionResetError(fault)


async def play_stream(request: web.Request, resp: web.StreamResponse, truth: Truth,
                      produce: Callable[[], Awaitable[None]]) -> web.StreamResponse:
    """Send a streamed answer. A client that goes away, or a cut the dice played, just ends
    it (a cancelled handler included); the truth records when it ended."""
    try:
        await resp.prepare(request)
        await produce()
    except (ConnectionError, asyncio.CancelledError):
        pass
    truth.ended = time.perf_counter()
    return resp
