"""The web config file (`--web-config-file`): TLS and authentication for the monitor's own HTTP
server, in the format Prometheus exporters share (prometheus/exporter-toolkit,
docs/web-configuration.md; read in web/tls_config.go `getConfig` and `ConfigToTLSConfig`, and
web/handler.go `validateHeaderConfig` and `ServeHTTP`):

    tls_server_config: {cert_file, key_file, client_auth_type, client_ca_file, min_version, ...}
    http_server_config: {headers: {...}}
    basic_auth_users: {alice: <bcrypt hash>}
    rate_limit: {interval: 100ms, burst: 20}
    bearer_auth_tokens: [<bcrypt hash>]      # ours: the toolkit has no bearer tokens

Like the toolkit: unknown keys are errors, relative paths are relative to the file, passwords
are bcrypt hashes (the file holds no secret but an inline `key`), TLS 1.2 is the minimum by
default, a client CA without a client-auth policy is refused. Unlike it: the file is read once
at start (restart to apply a change), HTTP/2 is not served, and the client-auth policies that
ask for a certificate without verifying it (RequestClientCert, RequireAnyClientCert) are
refused, since Python's ssl cannot express them. Every mistake is one line naming the file,
the key and the fix (UserError, exit 2).
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.core.errors import UserError
from monitor.core.times import clip, parse_duration

BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
CLIENT_AUTH = {"": ssl.CERT_NONE, "NoClientCert": ssl.CERT_NONE,
               "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
UNSUPPORTED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
# Go's names (crypto/tls) of the TLS 1.2 suites it offers, as OpenSSL names them.
CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
}
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1",
          "X25519": "X25519"}
# The response headers the toolkit lets a file set, and the values it accepts (None: any).
HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None, "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"), "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSModel(_Strict):
    cert: str | None = None
    key: str | None = None
    client_ca: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_auth_type: str = ""
    client_ca_file: str | None = None
    client_allowed_sans: list[str] | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: list[str] = []
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = []


class HTTPModel(_Strict):
    http2: bool = True  # accepted for compatibility; aiohttp serves HTTP/1.1 only
    headers: dict[str, str] = {}


class RateModel(_Strict):
    interval: str | float = 0
    burst: int = Field(0, ge=0)


class WebConfigModel(_Strict):
    tls_server_config: TLSModel = TLSModel()
    http_server_config: HTTPModel = HTTPModel()
    basic_auth_users: dict[str, str] = {}
    rate_limit: RateModel = RateModel(interval=0, burst=0)
    bearer_auth_tokens: list[str] = []


@dataclass(frozen=True)
class WebConfig:
    """What the server does with a web config file (none: plain HTTP, no auth)."""

    path: str = ""
    tls: ssl.SSLContext | None = None
    allowed_sans: tuple[str, ...] = ()  # a client certificate must carry one of these
    basic_users: Mapping[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    bearer_hashes: tuple[bytes, ...] = ()  # bcrypt hashes of the accepted bearer tokens
    headers: Mapping[str, str] = field(default_factory=dict)
    rate_interval_s: float = 0.0  # one request per interval on average (0: no limit) ...
    rate_burst: int = 0  # ... with bursts of this many

    @property
    def auth_required(self) -> bool:
        return bool(self.basic_users or self.bearer_hashes)


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read and check a web config file; UserError (one line) for any mistake."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--web-config-file {name}: cannot read it: "
                        f"{getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        raise UserError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}"
                        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{name}: expected a mapping (tls_server_config, basic_auth_users, "
                        "...); see docs/security.md")
    try:
        model = WebConfigModel.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        what = ("unknown key; allowed: " + ", ".join(_allowed(err["loc"]))
                if err["type"] == "extra_forbidden"
                else err["msg"] + f" (got {clip(err.get('input'))!r})")
        raise UserError(f"{name}: {where}: {what}") from None
    return _build(model, Path(name))


def _allowed(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = WebConfigModel
    for part in loc[:-1]:
        inner = model.model_fields.get(str(part))
        annotation = inner.annotation if inner is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _build(model: WebConfigModel, path: Path) -> WebConfig:
    def problem(where: str, text: str) -> UserError:
        return UserError(f"{path}: {where}: {text}")

    users = {}
    for user, hashed in model.basic_auth_users.items():
        if not BCRYPT_HASH.match(hashed):
            raise problem(f"basic_auth_users.{user}", "not a bcrypt hash; make one with "
                          "`htpasswd -nBC 10 \"\" | tr -d ':\\n'` (never the password itself)")
        users[user] = hashed.encode()
    tokens = []
    for i, hashed in enumerate(model.bearer_auth_tokens):
        if not BCRYPT_HASH.match(hashed):
            raise problem(f"bearer_auth_tokens[{i}]", "not a bcrypt hash of the token; make "
                          "one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`")
        tokens.append(hashed.encode())
    for header, value in model.http_server_config.headers.items():
        if header not in HEADERS:
            raise problem(f"http_server_config.headers.{header}",
                          f"cannot be set; allowed: {', '.join(HEADERS)}")
        allowed = HEADERS[header]
        if allowed is not None and value not in allowed:
            raise problem(f"http_server_config.headers.{header}",
                          f"{value!r} is not one of {', '.join(allowed)}")
    try:
        interval = parse_duration(model.rate_limit.interval) if model.rate_limit.interval else 0.0
    except ValueError as exc:
        raise problem("rate_limit.interval", str(exc)) from None
    if interval and model.rate_limit.burst < 1:
        raise problem("rate_limit.burst", "must be at least 1 when an interval is set")
    tls, sans = _tls(model.tls_server_config, path)
    return WebConfig(path=str(path), tls=tls, allowed_sans=sans, basic_users=users,
                     bearer_hashes=tuple(tokens), headers=dict(model.http_server_config.headers),
                     rate_interval_s=interval, rate_burst=model.rate_limit.burst)


def _tls(t: TLSModel, path: Path) -> tuple[ssl.SSLContext | None, tuple[str, ...]]:
    def problem(key: str, text: str) -> UserError:
        return UserError(f"{path}: tls_server_config.{key}: {text}")

    enabled = any((t.cert, t.key, t.client_ca, t.cert_file, t.key_file, t.client_ca_file,
                   t.client_auth_type))
    if not enabled:
        return None, ()
    if not (t.cert or t.cert_file):
        raise problem("cert_file", "missing one of cert or cert_file")
    if not (t.key or t.key_file):
        raise problem("key_file", "missing one of key or key_file")
    if t.client_auth_type in UNSUPPORTED_CLIENT_AUTH:
        raise problem("client_auth_type", f"{t.client_auth_type} (a certificate asked for but "
                      "not verified) is not supported; use RequireAndVerifyClientCert")
    if t.client_auth_type not in CLIENT_AUTH:
        raise problem("client_auth_type", f"{t.client_auth_type!r} is not one of "
                      f"{', '.join(k for k in CLIENT_AUTH if k)}")
    versions = {}
    for key in ("min_version", "max_version"):
        value = getattr(t, key)
        if value not in TLS_VERSIONS:
            raise problem(key, f"{value!r} is not one of {', '.join(TLS_VERSIONS)}")
        versions[key] = TLS_VERSIONS[value]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = versions["min_version"]
    context.maximum_version = versions["max_version"]
    base = path.parent
    try:
        with _pem_file(t.cert, t.cert_file, base) as cert, _pem_file(t.key, t.key_file,
                                                                     base) as key:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise problem("cert_file", f"cannot load the certificate and key: "
                      f"{getattr(exc, 'strerror', None) or exc}") from None
    context.verify_mode = CLIENT_AUTH[t.client_auth_type]
    if t.client_ca_file or t.client_ca:
        if context.verify_mode == ssl.CERT_NONE:
            raise problem("client_auth_type", "a client CA is configured without a client "
                          "auth policy; set RequireAndVerifyClientCert")
        try:
            if t.client_ca_file:
                context.load_verify_locations(cafile=str(base / t.client_ca_file))
            else:
                context.load_verify_locations(cadata=t.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise problem("client_ca_file", f"cannot load the CA: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    elif context.verify_mode != ssl.CERT_NONE:
        raise problem("client_ca_file", "client certificates are verified against this CA; "
                      "give client_ca_file")
    if t.client_allowed_sans is not None and context.verify_mode != ssl.CERT_REQUIRED:
        raise problem("client_allowed_sans", "requires client_auth_type "
                      "RequireAndVerifyClientCert")
    if t.cipher_suites:
        unknown = [c for c in t.cipher_suites if c not in CIPHERS]
        if unknown:
            raise problem("cipher_suites", f"unknown cipher {unknown[0]!r}; known: "
                          f"{', '.join(CIPHERS)}")
        context.set_ciphers(":".join(CIPHERS[c] for c in t.cipher_suites))
    if t.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if t.curve_preferences:
        unknown = [c for c in t.curve_preferences if c not in CURVES]
        if unknown:
            raise problem("curve_preferences", f"unknown curve {unknown[0]!r}; known: "
                          f"{', '.join(CURVES)}")
        if len(t.curve_preferences) > 1:
            raise problem("curve_preferences", "Python's ssl takes one curve; give one")
        context.set_ecdh_curve(CURVES[t.curve_preferences[0]])
    return context, tuple(t.client_allowed_sans or ())


@contextlib.contextmanager
def _pem_file(inline: str | None, file: str | None, base: Path) -> Iterator[str]:
    """A path for ssl to read: the configured file, or the inline PEM in a private temporary
    file removed at once (ssl loads keys from files only)."""
    if file:
        yield str(base / file)
        return
    fd, name = tempfile.mkstemp(suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(inline or "")
        yield name
    finally:
        os.unlink(name)
