"""How a probe reaches its target: which IP family first, which proxy, and a clear reason when
a connection could not be set up (DNS, proxy, TLS) — `connect_error` in every case.

IP family: `ip_preference` lists that family's addresses first; aiohttp connects with Happy
Eyeballs (RFC 8305, through aiohappyeyeballs), so the other family is tried 250 ms later or as
soon as the first attempt fails, like blackbox_exporter's `preferred_ip_protocol` with
`ip_protocol_fallback`. With `ip_fallback: false` only that family is asked for.

Proxy: `proxy: URL` always; `proxy: direct` never; otherwise the environment (HTTPS_PROXY,
HTTP_PROXY, NO_PROXY), read with the same function aiohttp's `trust_env` uses, but once per
target rather than on every request (which would cost a thread hop per request, and would
also pull credentials from ~/.netrc into requests that carry their own Authorization).
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from monitor.core.transport import PROXY_DIRECT, TransportSettings
from probes import tls

FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


class PreferFamily(AbstractResolver):
    """Resolve with `inner`, then list `family`'s addresses first (the order is otherwise kept)."""

    def __init__(self, family: socket.AddressFamily, inner: AbstractResolver | None = None
                 ) -> None:
        self.family = family
        self.inner = inner if inner is not None else aiohttp.DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_UNSPEC) -> list[ResolveResult]:
        hosts = await self.inner.resolve(host, port, family)
        return sorted(hosts, key=lambda h: h["family"] != self.family)

    async def close(self) -> None:
        await self.inner.close()


def connector_family(settings: TransportSettings) -> socket.AddressFamily:
    """The only family to resolve and connect to, or AF_UNSPEC (both)."""
    if settings.ip_preference and not settings.ip_fallback:
        return FAMILIES[settings.ip_preference]
    return socket.AF_UNSPEC


def resolver(settings: TransportSettings, inner: AbstractResolver | None = None
             ) -> AbstractResolver | None:
    """The resolver a target's connector needs (None: aiohttp's default will do)."""
    if settings.ip_preference and settings.ip_fallback:
        return PreferFamily(FAMILIES[settings.ip_preference], inner)
    return inner


def proxy(settings: TransportSettings, url: str) -> URL | None:
    """The proxy for requests to `url`. Credentials come from the environment only (in the
    proxy URL, or ~/.netrc for the proxy's host, as aiohttp reads them) and stay in the URL,
    which aiohttp turns into a Proxy-Authorization header; error texts are redacted."""
    if settings.proxy == PROXY_DIRECT:
        return None
    if settings.proxy:
        return URL(settings.proxy)
    try:
        found, auth = get_env_proxy_for_url(URL(url))
    except LookupError:  # no proxy for this scheme, or NO_PROXY matches the host
        return None
    if auth is not None and not found.user:
        found = found.with_user(auth.login).with_password(auth.password)
    return found


def connect_failure(exc: BaseException, clock: Any) -> str | None:
    """A clear reason when `exc` means the connection could not be set up, else None.
    `clock` is the request's probes.session.RequestClock (or None)."""
    if isinstance(exc, tls.TLSSettingsError):
        return f"TLS settings: tls.{exc.field}: {exc}"
    reason = tls.describe_failure(exc, getattr(clock, "handshake", None),
                                  bool(getattr(clock, "client_cert", False)))
    if reason is not None:
        return reason
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS: cannot resolve {exc.host}: {_strerror(exc)}"
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"proxy {exc.host}:{exc.port} unreachable: {_strerror(exc)}"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return f"proxy refused the tunnel: HTTP {exc.status} {exc.message}".rstrip()
    return None


def _strerror(exc: aiohttp.ClientConnectorError) -> str:
    return exc.strerror or str(exc.os_error) or type(exc.os_error).__name__
