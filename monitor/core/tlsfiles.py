"""A network's TLS files loaded into an SSL context: its CA bundle (or the system trust store),
its client certificate and key, the key's password read from the variable the config names.

One loader for two callers: `probes/tls.py` builds each network's client context with it, and
the config loader (`depin-monitor check`) loads the same files once up front, so that a wrong
path, a broken PEM or a key that is not the certificate's is one line naming the field, not a
connect_error on every run.
"""

from __future__ import annotations

import ssl

from monitor.core.transport import TransportSettings


class TLSFileError(ValueError):
    """A TLS setting that cannot be used; `field` names it (e.g. "cert_file")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _NoPassword(Exception):
    pass


def load_trust(ctx: ssl.SSLContext, settings: TransportSettings, password: str | None) -> None:
    """Load what `settings` names into the client context `ctx` (TLSFileError if unusable)."""
    if settings.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif settings.ca_file:
        try:
            ctx.load_verify_locations(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TLSFileError("ca_file", f"cannot load the CA bundle {settings.ca_file}: "
                               f"{ssl_reason(exc)}; give a PEM file of CA certificates") from None
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if settings.cert_file:
        _load_client_cert(ctx, settings, password)


def check_files(settings: TransportSettings) -> None:
    """Load the files `settings` names, with the key's password from the environment, into a
    throwaway client context: TLSFileError says which field is wrong and how."""
    load_trust(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), settings, settings.key_password())


def _load_client_cert(ctx: ssl.SSLContext, settings: TransportSettings,
                      password: str | None) -> None:
    def give_password() -> str:
        # Always a callback: without one OpenSSL would prompt on the terminal for an
        # encrypted key, and a monitor must never hang on a prompt.
        if password is None:
            raise _NoPassword
        return password

    try:
        ctx.load_cert_chain(settings.cert_file or "", settings.key_file, password=give_password)
    except _NoPassword:
        raise TLSFileError("key_file", f"{settings.key_file or settings.cert_file} is "
                           "encrypted; set tls.key_password_env to the variable holding "
                           "its password") from None
    except FileNotFoundError as exc:
        field = "key_file" if exc.filename == settings.key_file else "cert_file"
        raise TLSFileError(field, f"{exc.filename or settings.cert_file}: no such "
                           "file") from None
    except (OSError, ssl.SSLError) as exc:
        what = "the client certificate and key"
        hint = ("check that both are PEM, that the key belongs to the certificate and that "
                "the password is right")
        raise TLSFileError("cert_file", f"cannot load {what} ({settings.cert_file}"
                           f"{', ' + settings.key_file if settings.key_file else ''}): "
                           f"{ssl_reason(exc)}; {hint}") from None


def ssl_reason(exc: BaseException) -> str:
    """What went wrong loading or handshaking, in words: OpenSSL's reason, else the OS's."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
