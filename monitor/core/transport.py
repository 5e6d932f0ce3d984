"""How a target is reached: TLS trust and identity, proxy, IP family (a network's config).

Plain data, no I/O: `probes/tls.py` and `probes/transport.py` turn it into an SSL context, a
proxy and a resolver. Only the *names* of secrets live here (the key password's variable),
never their values, so a TransportSettings can be printed, logged and compared freely.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_CERT_EXPIRY_WARNING_S = 14 * 86400.0  # warn (alert, status page) this long before
PROXY_DIRECT = "direct"  # `proxy: direct`: never a proxy, whatever HTTPS_PROXY says
IP_FAMILIES = ("ipv4", "ipv6")


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """Per-network connection settings; the defaults are a public HTTPS API's."""

    ca_file: str | None = None  # PEM bundle trusted instead of the system store (private CA)
    cert_file: str | None = None  # client certificate (PEM, may hold the key too): mTLS
    key_file: str | None = None  # its private key (PEM)
    key_password_env: str | None = None  # variable holding the key's password
    server_name: str | None = None  # SNI and the name the certificate must carry
    insecure: bool = False  # do not verify the certificate (still TLS; loud everywhere)
    proxy: str | None = None  # None: HTTPS_PROXY/HTTP_PROXY/NO_PROXY; PROXY_DIRECT; or a URL
    ip_preference: str | None = None  # "ipv4" or "ipv6" first; None: the resolver's order
    ip_fallback: bool = True  # with ip_preference: may the other family be used at all

    def key_password(self) -> str | None:
        """The key's password, read from the environment at the moment it is needed."""
        if self.key_password_env:
            return os.environ.get(self.key_password_env) or None
        return None

    def secret_envs(self) -> tuple[str, ...]:
        return (self.key_password_env,) if self.key_password_env else ()

    def describe(self) -> str:
        """One line for `check` and logs: what differs from the defaults (never a secret)."""
        parts = []
        if self.insecure:
            parts.append("TLS verification OFF (insecure)")
        if self.ca_file:
            parts.append(f"CA {self.ca_file}")
        if self.cert_file:
            parts.append(f"client certificate {self.cert_file}")
        if self.server_name:
            parts.append(f"server name {self.server_name}")
        if self.proxy:
            parts.append("no proxy" if self.proxy == PROXY_DIRECT else f"proxy {self.proxy}")
        if self.ip_preference:
            only = "" if self.ip_fallback else " only"
            parts.append(f"{self.ip_preference}{only if only else ' first'}")
        return ", ".join(parts)


DEFAULT_TRANSPORT = TransportSettings()
