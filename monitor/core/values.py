"""Values users give at both doors, the YAML config and the command line, each checked by one
function here: URLs (with their port), proxies, TLS server names, HTTP headers, listen
addresses, numbers (finite, in range), money and limits. Durations and times are in
monitor.core.times.

Each function returns the value (normalised where said) or raises ValueError whose text
starts with the value as given (clipped, never a credential) and ends with what to write
instead; the config prefixes it with the file and the key path, the CLI with the option.
"""

from __future__ import annotations

import math
import re
from urllib.parse import SplitResult, urlsplit

from monitor.core.times import clip
from monitor.core.transport import PROXY_DIRECT

SERVER_NAME = r"^[A-Za-z0-9][A-Za-z0-9.\-]*$"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP header name (RFC 9110 token)
_HOST = re.compile(r"[A-Za-z0-9._~\-]+|\[[0-9A-Fa-f:.]+(%[A-Za-z0-9._~\-]+)?\]")
_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


def url_parts(url: str, *, expected: str, with_credentials: str,
              schemes: tuple[str, ...] = ("http", "https")) -> SplitResult:
    """An absolute URL of one of `schemes`, with a host and a valid port (1-65535), no
    space or control character and no user:pass@ (checked first, so that a URL carrying
    credentials is never echoed). `expected` ends the error: e.g. "an http(s) URL with a
    host; write e.g. https://api.example.com/v1"."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"{clip(url)!r} is not {expected}")
    try:
        parts = urlsplit(url)
        credentials = bool(parts.username or parts.password)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        credentials = "@" in url.split("//", 1)[-1].split("/", 1)[0]
        if credentials:
            raise ValueError(with_credentials) from None
        raise ValueError(f"{clip(url)!r} is not {expected} (its host is malformed: an "
                         "IPv6 address goes in [brackets], both of them)") from None
    if credentials:
        raise ValueError(with_credentials)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{clip(url)!r} is not {expected}")
    if _BAD_CHARS.search(url):
        raise ValueError(f"{clip(url)!r} has a space or a control character; give {expected}")
    host = parts.netloc.rsplit("@", 1)[-1]
    host = host[: host.rindex("]") + 1] if host.startswith("[") else host.rsplit(":", 1)[0]
    if not _HOST.fullmatch(host):
        raise ValueError(f"{clip(url)!r}: the host {clip(host)!r} is not a host name or an IP "
                         f"address; give {expected}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"{clip(url)!r}: the port must be a number from 1 to 65535; "
                         f"give {expected}")
    return parts


def http_url(url: str, *, example: str = "https://api.example.com/v1",
             with_credentials: str = "the URL carries credentials (user:pass@); remove them "
                                     "and put the key in an environment variable") -> str:
    """An http(s) URL with a host (see url_parts)."""
    url_parts(url, expected=f"an http(s) URL with a host; write e.g. {example}",
              with_credentials=with_credentials)
    return url


def proxy_url(proxy: str) -> str:
    """`direct` or an http(s) proxy URL without credentials (they come from HTTPS_PROXY)."""
    if proxy == PROXY_DIRECT:
        return proxy
    url_parts(proxy, expected="a proxy URL; write e.g. http://proxy.example.com:3128, or "
                              "`direct` for none",
              with_credentials="the proxy URL carries credentials; remove them and give the "
                               "proxy in HTTPS_PROXY (environment) instead")
    return proxy


def server_name(name: str) -> str:
    """A TLS server name (SNI): a DNS name, letters, digits, dots and dashes."""
    if not re.fullmatch(SERVER_NAME, name) or len(name) > 253:
        raise ValueError(f"{clip(name)!r} is not a host name; write e.g. api.example.com")
    return name


def header(name: str, value: str) -> tuple[str, str]:
    """An HTTP header: a token for a name, a value without CR, LF or NUL (which would end
    the header and start another)."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"header name {clip(name)!r} is not an HTTP token (letters, digits, "
                         "and !#$%&'*+-.^_`|~, no space or colon); write e.g. X-Request-Source")
    if re.search(r"[\r\n\x00]", value) or re.search(r"[\x01-\x08\x0b-\x1f\x7f]", value):
        raise ValueError(f"header {name!r}: the value has a line break or a control "
                         "character; give it on one line")
    return name, value


ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
LABEL = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"  # a location: a bounded Prometheus label value


def env_name(name: str) -> str:
    """The name of an environment variable (the key is read from it, never given)."""
    if not re.fullmatch(ENV_NAME, name):
        raise ValueError(f"{clip(name)!r} is not an environment variable name (letters, "
                         "digits and _, not starting with a digit); write e.g. MY_NETWORK_KEY")
    return name


def runbook_url(url: str) -> str:
    """Where the operator hosts docs/runbooks.md: an http(s) URL without a #fragment (the
    alerts add one per alert)."""
    parts = url_parts(url, expected="an http(s) URL without a #fragment; give where you host "
                      "docs/runbooks.md, e.g. https://wiki.example.com/depin-monitor/runbooks",
                      with_credentials="the URL carries credentials (user:pass@); remove them")
    if parts.fragment:
        raise ValueError(f"{clip(url)!r} has a #fragment; give the page without it, e.g. "
                         "https://wiki.example.com/depin-monitor/runbooks")
    return url


def listen_address(text: str) -> str:
    """`HOST:PORT`, `:PORT` or `PORT` with a port from 0 (any free one) to 65535; an IPv6
    host in [brackets]."""
    hint = "write e.g. 127.0.0.1:9464, [::1]:9464 or :9464"
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    if not re.fullmatch(r"\d{1,5}", port) or int(port) > 65535:
        raise ValueError(f"{clip(text)!r}: the port must be a number from 0 to 65535; {hint}")
    if host and not re.fullmatch(r"[A-Za-z0-9._\-]+|\[[0-9A-Fa-f:.]+\]", host):
        raise ValueError(f"{clip(text)!r} is not HOST:PORT (an IPv6 host goes in [brackets], "
                         f"both of them); {hint}")
    return text


def number(value: float, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, what: str = "a number") -> float:
    """A finite number within [lo, hi] (lo excluded with lo_open); NaN and infinity never."""
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{clip(value)!r} is not {what}; give a finite number")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{clip(value)!r}: must be {'above' if lo_open else 'at least'} "
                         f"{lo:g}")
    if hi is not None and v > hi:
        raise ValueError(f"{clip(value)!r}: must be at most {hi:g}")
    return v


MAX_USD = 1e9  # a price, a spend cap: a finite amount of US dollars


def money(value: float, *, positive: bool = False) -> float:
    """An amount of US dollars: finite, 0 or more (above 0 when `positive`), under 1e9."""
    return number(value, lo=0.0, hi=MAX_USD, lo_open=positive, what="an amount of USD")


def limit(value: int, *, lo: int = 1, hi: int = 10_000_000) -> int:
    """A count limit (requests, streams, runs): a whole number in [lo, hi]. An absent limit
    is None, never 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{clip(value)!r} is not a whole number")
    if not lo <= value <= hi:
        raise ValueError(f"{value}: must be from {lo:,} to {hi:,}")
    return value
