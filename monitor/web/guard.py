"""The monitor's HTTP server defending itself: aiohttp middlewares wrapped around every route
(whatever routes monitor/web registers), configured by the web config file
(monitor/web/webconfig.py) or by nothing at all:

- methods: only GET and HEAD reach a handler (no endpoint changes state); anything else 405;
- rate: each client address gets CLIENT_RATE_PER_S requests a second (bursts of
  CLIENT_BURST), always; the file's `rate_limit` adds the toolkit's global token bucket.
  Over either: 429 with Retry-After;
- authentication, when the file has `basic_auth_users` or `bearer_auth_tokens`: every path
  but /healthz and /readyz (orchestrators' probes) needs a valid password or token, checked
  against its bcrypt hash in a worker thread (bcrypt takes ~70 ms of CPU: never on the event
  loop that times the probes), one check at a time, at most MAX_WAITING_CHECKS waiting, the
  answer cached (bounded) like the toolkit's; an unknown user is checked against a fixed
  hash so that timing does not tell which users exist. 401 with WWW-Authenticate otherwise;
- a client certificate must carry one of `client_allowed_sans` when the file lists them (403);
- the file's response headers (HSTS, nosniff, ...) on every answer, errors included.
The request body limit, header limits and idle timeout are the server's (monitor/web/server.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import bcrypt
from aiohttp import web

from monitor.web.webconfig import WebConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SAFE_METHODS = ("GET", "HEAD")
PUBLIC_PATHS = ("/healthz", "/readyz")
CLIENT_RATE_PER_S = 20.0  # a browser on the status page and a Prometheus use far less
CLIENT_BURST = 60
MAX_CLIENTS = 4096  # client addresses remembered for the rate limit (the oldest forgotten)
MAX_WAITING_CHECKS = 16  # bcrypt checks waiting for their turn; more are turned away (429)
AUTH_CACHE_SIZE = 1024
# bcrypt (cost 10) of a password nobody has: an unknown user costs as much as a known one
DUMMY_HASH = b"$2b$10$jU2enQQ40.TDoW.A1McucOJsBxGNHWDKxOMCo3QPvEx7Uu6dtF3lG"


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; each request takes one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Guard:
    def __init__(self, config: WebConfig | None = None) -> None:
        self.config = config or WebConfig()
        self._clients: OrderedDict[str, TokenBucket] = OrderedDict()
        self._global = (TokenBucket(1 / self.config.rate_interval_s, self.config.rate_burst)
                        if self.config.rate_interval_s else None)
        self._checks = asyncio.Lock()
        self._waiting = 0
        self._cache: dict[bytes, bool] = {}
        self.rejected: dict[int, int] = {}  # status -> count, for tests and the curious

    @property
    def middlewares(self) -> list[Any]:
        """Outermost first: the limits, then authentication (`add_headers` stamps every
        answer)."""
        return [self.limit, self.authenticate]

    def _refuse(self, status: int, text: str, **headers: str) -> web.Response:
        self.rejected[status] = self.rejected.get(status, 0) + 1
        return web.Response(status=status, text=text + "\n", headers=headers)

    async def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """The configured headers on every answer, errors and streamed ones included: an
        `on_response_prepare` signal, called as the headers are sent (a middleware would come
        too late for a response the handler streamed itself, such as /metrics)."""
        response.headers.update(self.config.headers)

    @web.middleware
    async def limit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in SAFE_METHODS:
            return self._refuse(405, "405: read-only server: GET and HEAD only",
                                Allow=", ".join(SAFE_METHODS))
        if not self._client_bucket(request.remote or "").take():
            return self._refuse(429, "429: too many requests from this address",
                                **{"Retry-After": "1"})
        if self._global is not None and not self._global.take():
            return self._refuse(429, "429: too many requests", **{"Retry-After": "1"})
        return await handler(request)

    def _client_bucket(self, address: str) -> TokenBucket:
        bucket = self._clients.get(address)
        if bucket is None:
            bucket = self._clients[address] = TokenBucket(CLIENT_RATE_PER_S, CLIENT_BURST)
            if len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(address)
        return bucket

    @web.middleware
    async def authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.config.allowed_sans and not self._san_allowed(request):
            return self._refuse(403, "403: client certificate not allowed")
        if not self.config.auth_required or request.path in PUBLIC_PATHS:
            return await handler(request)
        if self._waiting >= MAX_WAITING_CHECKS:
            return self._refuse(429, "429: too many authentication attempts",
                                **{"Retry-After": "1"})
        if await self._authorized(request.headers.get("Authorization", "")):
            return await handler(request)
        challenges = []
        if self.config.basic_users:
            challenges.append('Basic realm="depin-monitor"')
        if self.config.bearer_hashes:
            challenges.append('Bearer realm="depin-monitor"')
        return self._refuse(401, "401: unauthorized", **{
            "WWW-Authenticate": ", ".join(challenges)})

    async def _authorized(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and self.config.basic_users:
            try:
                user, _, password = base64.b64decode(credentials.strip(), validate=True
                                                     ).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            known = self.config.basic_users.get(user)
            ok = await self._check(password.encode(), [known or DUMMY_HASH], user.encode())
            return ok and known is not None
        if scheme == "bearer" and self.config.bearer_hashes:
            return await self._check(credentials.strip().encode(),
                                     list(self.config.bearer_hashes), b"bearer")
        return False

    async def _check(self, secret: bytes, hashes: list[bytes], who: bytes) -> bool:
        """Whether `secret` matches one of `hashes` (bcrypt), off the event loop, cached by a
        digest of (who, hashes, secret): never the secret itself."""
        key = hashlib.sha256(b"\0".join([who, *hashes, secret])).digest()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self._waiting += 1
        try:
            async with self._checks:
                ok = await asyncio.to_thread(_matches, secret, hashes)
        finally:
            self._waiting -= 1
        if len(self._cache) >= AUTH_CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = ok
        return ok

    def _san_allowed(self, request: web.Request) -> bool:
        transport = request.transport
        cert = transport.get_extra_info("peercert") if transport is not None else None
        sans = [value for _, value in (cert or {}).get("subjectAltName", ())]
        return any(san in self.config.allowed_sans for san in sans)


def _matches(secret: bytes, hashes: list[bytes]) -> bool:
    found = False
    for hashed in hashes:  # every hash is tried: the time does not tell which one matched
        with contextlib.suppress(ValueError):  # a malformed hash matches nothing
            found |= bcrypt.checkpw(secret, hashed)
    return found
