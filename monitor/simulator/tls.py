"""HTTPS for the reference networks: a server context that fails a handshake the way a real
TLS server does, and a throwaway private CA for the demo and `simulate --tls`.

A real server (OpenSSL's `s_server -Verify 1`, Go's crypto/tls, nginx) that refuses a
client sends a TLS alert first: `certificate_required` (116) in TLS 1.3 after the client's
Finished, `handshake_failure` (40) in TLS 1.2 (RFC 8446 section 4.4.2.4, RFC 5246 7.4.6).
asyncio's server side does not send it: `SSLProtocol._do_handshake` (CPython
Lib/asyncio/sslproto.py) closes the transport on the handshake's SSLError without flushing the
alert OpenSSL left in the outgoing buffer, so its clients see a bare EOF or reset instead.
`AlertingSSLObject` reports such a failure as "want read" once, which makes asyncio flush the
outgoing buffer (the alert) to the client, and raises the real error on the next call. The
client then sees exactly what it sees from `openssl s_server` (tests/test_tls.py checks both).
"""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path


class AlertingSSLObject(ssl.SSLObject):
    """Server side: a failed handshake first lets asyncio send OpenSSL's alert to the client."""

    _failed: ssl.SSLError | None = None

    def do_handshake(self) -> None:
        if self._failed is not None:
            raise self._failed
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            self._failed = exc
            raise ssl.SSLWantReadError("handshake failed; alert pending") from exc


def server_context(cert_chain: str | Path, key: str | Path | None = None, *,
                   client_ca: str | Path | None = None,
                   max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A server context presenting `cert_chain` (PEM: certificate then intermediates); with
    `client_ca`, clients must present a certificate that CA issued (mTLS)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.sslobject_class = AlertingSSLObject
    ctx.load_cert_chain(str(cert_chain), None if key is None else str(key))
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(client_ca))
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


@dataclass(frozen=True)
class PrivateCA:
    """PEM files of a throwaway CA and a server certificate it issued for loopback names."""

    folder: Path
    ca_file: Path  # what a client trusts (a network's tls.ca_file)
    cert_chain: Path  # the server's certificate (and key, in one PEM)
    not_after: dt.datetime

    def server_context(self, **options: object) -> ssl.SSLContext:
        return server_context(self.cert_chain, **options)  # type: ignore[arg-type]


def make_private_ca(folder: str | Path | None = None, *, valid_days: int = 90,
                    names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")) -> PrivateCA:
    """Create a CA and a server certificate for `names` (needs the `trustme` package:
    `pip install 'depin-monitor[tls]'`). The files are written to `folder` (a new temporary
    folder by default); the CA's key stays in memory and is gone with the process."""
    try:
        import trustme
    except ImportError:
        raise RuntimeError("making certificates needs trustme: pip install "
                           "'depin-monitor[tls]'") from None
    target = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="depin-tls-"))
    target.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    not_after = now + dt.timedelta(days=valid_days)
    ca = trustme.CA(organization_name="depin-monitor simulator")
    issued = ca.issue_cert(*names, not_before=now - dt.timedelta(hours=1), not_after=not_after)
    ca_file, chain = target / "ca.pem", target / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    issued.private_key_and_cert_chain_pem.write_to_path(str(chain))
    chain.chmod(0o600)
    return PrivateCA(target, ca_file, chain, not_after)
