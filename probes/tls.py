"""TLS for the probes: a network's client context, handshake timing, what the handshake showed
(version, cipher, the chain's earliest expiry) and a clear reason when it failed.

Context: the system trust store, or the network's `tls.ca_file` instead (like curl's
`--cacert` and Prometheus' `tls_config.ca_file`); a client certificate and key for mTLS, the
key's password read from `tls.key_password_env`; `tls.server_name` for SNI and the name the
certificate must carry; `tls.insecure` turns verification off (the run is still timed and its
certificates still reported). Targets with equal settings share one context.

Timing: asyncio drives a handshake through `SSLObject.do_handshake()`, first called as soon
as the TCP connection is up (asyncio.sslproto `SSLProtocol._start_handshake`) and again on
each flight until it completes. `TimedSSLObject` stamps the first call and the completing
one on perf_counter: the `tls` phase.

Certificates: Python 3.11's ssl exposes only the leaf of a verified connection
(`getpeercert()`); the chains are on the underlying `_ssl._SSLSocket` since CPython 3.10
(`get_verified_chain()`, `get_unverified_chain()`, made public on SSLObject in 3.13, where
the public methods return DER bytes and the private ones still return certificates whose
`get_info()` decodes them). The reported expiry is the earliest `notAfter` of the *verified*
chain (leaf, intermediates and the trust anchor OpenSSL built); without verification
(`insecure`, or a failed handshake) of the chain the server *presented*; on a Python without
either, of the leaf alone (`CHAIN_*` below names which).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import ssl
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from monitor.core.tlsfiles import TLSFileError, load_trust, ssl_reason
from monitor.core.transport import TransportSettings

CHAIN_VERIFIED = "verified"  # the chain OpenSSL verified, trust anchor included
CHAIN_PRESENTED = "presented"  # what the server sent (no verification took place)
CHAIN_LEAF = "leaf"  # no chain API on this Python: the leaf certificate only


class HandshakeOwner(Protocol):
    handshake: TimedSSLObject | None


# The request opening a connection right now (set by probes.session's trace callback, in the
# request's task; asyncio creates the SSLObject and starts its handshake in that context).
OPENING: contextvars.ContextVar[HandshakeOwner | None] = contextvars.ContextVar(
    "depin_tls_opening", default=None)


@dataclass(frozen=True, slots=True)
class TLSFacts:
    """What one TLS connection negotiated and the certificates it saw."""

    version: str | None  # "TLSv1.3"
    cipher: str | None  # "TLS_AES_256_GCM_SHA384"
    cert_expiry: float | None  # unix seconds: the earliest notAfter of the chain
    chain: str | None  # CHAIN_VERIFIED, CHAIN_PRESENTED or CHAIN_LEAF


class TimedSSLObject(ssl.SSLObject):
    """An SSLObject that stamps its handshake and remembers what it learnt (one connection)."""

    handshake_start: float | None = None
    handshake_end: float | None = None  # set when the handshake completed or failed
    failure: ssl.SSLError | None = None
    _facts: TLSFacts | None = None

    def do_handshake(self) -> None:
        if self.handshake_start is None:
            self.handshake_start = time.perf_counter()
            owner = OPENING.get()
            if owner is not None:
                owner.handshake = self
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            self.handshake_end = time.perf_counter()
            self.failure = exc
            raise
        self.handshake_end = time.perf_counter()

    @property
    def handshake_s(self) -> float | None:
        if self.handshake_start is None or self.handshake_end is None or self.failure:
            return None
        return self.handshake_end - self.handshake_start

    def facts(self) -> TLSFacts:
        """Version, cipher and chain expiry (computed once per connection)."""
        if self._facts is None:
            self._facts = facts_of(self)
        return self._facts


class _ClientContext(ssl.SSLContext):
    """A client context that may present another server name than the URL's host."""

    server_name: str | None = None

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,
                 server_side: bool = False, server_hostname: str | bytes | None = None,
                 session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        if self.server_name and not server_side:
            server_hostname = self.server_name
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


class TLSSettingsError(aiohttp.ClientError, TLSFileError):
    """A TLS setting that cannot be used; `field` names it (e.g. "cert_file"). A ClientError,
    so that a probe whose files vanished after `check` reports a connect_error, not a crash."""


def client_context(settings: TransportSettings) -> ssl.SSLContext:
    """The client SSL context for a network's settings (TLSSettingsError when unusable)."""
    return _context(settings, settings.key_password())


@functools.lru_cache(maxsize=64)
def _context(settings: TransportSettings, password: str | None) -> ssl.SSLContext:
    ctx = _ClientContext(ssl.PROTOCOL_TLS_CLIENT)  # TLS 1.2+, CERT_REQUIRED, check_hostname
    ctx.sslobject_class = TimedSSLObject
    ctx.server_name = settings.server_name
    try:
        load_trust(ctx, settings, password)
    except TLSFileError as exc:
        raise TLSSettingsError(exc.field, str(exc)) from None
    return ctx


# -- what a connection showed ----------------------------------------------------------------

def facts_of(obj: ssl.SSLObject) -> TLSFacts:
    """A failed handshake negotiated nothing: only the certificates it saw are reported."""
    infos, chain = _chain(obj)
    cipher = obj.cipher()
    established = getattr(obj, "failure", None) is None
    return TLSFacts(version=obj.version() if established else None,
                    cipher=cipher[0] if cipher and established else None,
                    cert_expiry=earliest_expiry(infos), chain=chain if infos else None)


def _chain(obj: ssl.SSLObject) -> tuple[list[dict[str, Any]], str]:
    """The decoded certificates of the verified chain, else of the presented one, else the
    leaf; with the name of which it is."""
    inner = getattr(obj, "_sslobj", None)
    for method, name in (("get_verified_chain", CHAIN_VERIFIED),
                         ("get_unverified_chain", CHAIN_PRESENTED)):
        getter = getattr(inner, method, None)
        if getter is None:
            continue
        try:
            certs = getter() or []
            infos = [c.get_info() for c in certs]
        except (ValueError, ssl.SSLError):
            continue
        if infos:
            return infos, name
    try:
        leaf = obj.getpeercert()
    except (ValueError, ssl.SSLError):
        leaf = None
    return ([leaf] if leaf else []), CHAIN_LEAF


def presented_certificates(obj: ssl.SSLObject) -> list[dict[str, Any]]:
    """The decoded certificates the server sent (empty when this Python cannot tell)."""
    getter = getattr(getattr(obj, "_sslobj", None), "get_unverified_chain", None)
    try:
        return [c.get_info() for c in (getter() or [])] if getter else []
    except (ValueError, ssl.SSLError):
        return []


def earliest_expiry(infos: list[dict[str, Any]]) -> float | None:
    stamps = []
    for info in infos:
        try:
            stamps.append(float(ssl.cert_time_to_seconds(info["notAfter"])))
        except (KeyError, TypeError, ValueError):
            continue
    return min(stamps) if stamps else None


def peer_ip_version(peername: Any) -> int | None:
    """4 or 6 from a transport's `peername`."""
    if isinstance(peername, tuple) and peername and isinstance(peername[0], str):
        return 6 if ":" in peername[0] else 4
    return None


# -- why a handshake failed --------------------------------------------------------------------

# OpenSSL verification codes (X509_V_ERR_*) by what they mean to an operator.
_NOT_YET_VALID, _EXPIRED, _REVOKED = 9, 10, 23
_HOST_MISMATCH = {62, 64}  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
_UNKNOWN_ISSUER = {2, 18, 19, 20, 21, 24}  # no path to a trusted CA, self-signed, invalid CA

# TLS alerts the *server* sends when it refuses us (SSLError.reason as OpenSSL names them).
_CLIENT_CERT_MISSING = {"TLSV13_ALERT_CERTIFICATE_REQUIRED"}
_CLIENT_CERT_REJECTED = {"TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE",
                         "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "SSLV3_ALERT_CERTIFICATE_EXPIRED",
                         "SSLV3_ALERT_CERTIFICATE_REVOKED", "TLSV1_ALERT_ACCESS_DENIED",
                         "TLSV1_ALERT_DECRYPT_ERROR", "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE"}
_NO_COMMON_GROUND = {"SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_PROTOCOL_VERSION",
                     "TLSV1_ALERT_INSUFFICIENT_SECURITY", "NO_PROTOCOLS_AVAILABLE",
                     "UNSUPPORTED_PROTOCOL", "NO_SHARED_CIPHER"}


def ssl_error_in(exc: BaseException) -> ssl.SSLError | None:
    """The ssl.SSLError inside an aiohttp or OS exception (its cause, its wrapped error)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        # aiohttp's ClientConnectorSSLError and ClientConnectorCertificateError are SSLErrors
        # themselves, wrapping OpenSSL's: look inside them
        if isinstance(current, ssl.SSLError) and not isinstance(current, aiohttp.ClientError):
            return current
        todo += [getattr(current, "certificate_error", None), getattr(current, "os_error", None),
                 current.__cause__, current.__context__]
    return None


def describe_failure(exc: BaseException, handshake: TimedSSLObject | None,
                     client_cert: bool) -> str | None:
    """A clear reason when `exc` is TLS refusing the connection, else None (an SSL error on an
    established connection is a transport failure, not TLS setup: the caller decides)."""
    err = ssl_error_in(exc)
    if err is None:
        return None
    if isinstance(err, ssl.SSLCertVerificationError):
        return "TLS: " + _verification(err, handshake)
    reason = (err.reason or "").upper()
    if reason in _CLIENT_CERT_MISSING:
        if client_cert:
            return ("TLS: the server requires a client certificate and accepted none of ours "
                    "(check tls.cert_file against the CA the server trusts)")
        return ("TLS: the server requires a client certificate; set tls.cert_file and "
                "tls.key_file")
    if reason in _CLIENT_CERT_REJECTED:
        alert = reason.split("ALERT_", 1)[-1].replace("_", " ").lower()
        if client_cert:
            return f"TLS: the server rejected our client certificate (alert: {alert})"
        return f"TLS: the server refused the handshake (alert: {alert})"
    if reason == "WRONG_VERSION_NUMBER":
        return ("TLS: the server does not speak TLS on this port (a plain-HTTP port? check "
                "the URL's scheme)")
    if reason in _NO_COMMON_GROUND:
        hint = "" if client_cert else ", or it requires a client certificate"
        return (f"TLS: the server aborted the handshake ({reason.replace('_', ' ').lower()}: "
                f"no TLS version or cipher in common{hint})")
    if isinstance(exc, aiohttp.ClientConnectorSSLError) or (
            handshake is not None and handshake.failure is err):
        return f"TLS handshake failed: {ssl_reason(err)}"
    return None


def _verification(err: ssl.SSLCertVerificationError, handshake: TimedSSLObject | None) -> str:
    code = err.verify_code
    message = (err.verify_message or ssl_reason(err)).rstrip(".")
    certs = presented_certificates(handshake) if handshake is not None else []
    if code in (_EXPIRED, _NOT_YET_VALID):
        now = time.time()
        for info in certs:
            after = earliest_expiry([info])
            before = _seconds(info.get("notBefore"))
            if code == _EXPIRED and after is not None and after < now:
                days = int((now - after) // 86400)
                ago = "today" if days < 1 else f"{days} day{'s' if days > 1 else ''} ago"
                return (f"certificate {_subject(info)} expired on {_date(after)} ({ago}); "
                        "the network must renew it")
            if code == _NOT_YET_VALID and before is not None and before > now:
                return (f"certificate {_subject(info)} is not valid before {_date(before)} "
                        "(a clock wrong on either side?)")
        return f"certificate rejected: {message}"
    if code in _HOST_MISMATCH:
        names = [value for kind, value in (certs[0].get("subjectAltName", ()) if certs else ())
                 if kind in ("DNS", "IP Address")]
        valid = f" (it is valid for {', '.join(names[:4])})" if names else ""
        return (f"{message}{valid}; if the network serves that certificate on purpose, set "
                "tls.server_name")
    if code in _UNKNOWN_ISSUER:
        return (f"certificate signed by an unknown CA ({message}); for a private CA set "
                "tls.ca_file to its bundle")
    if code == _REVOKED:
        return "certificate revoked"
    return f"certificate rejected: {message}"


def _seconds(value: Any) -> float | None:
    try:
        return float(ssl.cert_time_to_seconds(value))
    except (TypeError, ValueError):
        return None


def _date(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _subject(info: dict[str, Any]) -> str:
    """A certificate's name for a message: its common name, else its first DNS or IP name,
    else its organisation."""
    fields = {key: value for rdn in info.get("subject", ()) for key, value in rdn}
    names = [v for k, v in info.get("subjectAltName", ()) if k in ("DNS", "IP Address")]
    name = fields.get("commonName") or (names[0] if names else None) \
        or fields.get("organizationName")
    return repr(name) if name else "(unnamed)"
