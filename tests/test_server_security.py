"""The monitor's own HTTP server as an attacker or a careless operator meets it: loopback by
default; read-only (GET and HEAD); no endpoint reaches the network; bounded requests and
request rate; TLS, mutual TLS, basic and bearer authentication from an exporter-toolkit web
config file; and a bad web config is one line and exit 2."""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
from aiohttp import web

from monitor.core.errors import UserError
from monitor.exporter.metrics import MetricsSink
from monitor.web import guard
from monitor.web.server import DEFAULT_HOST, bound_port, build_app, parse_listen, start_server
from monitor.web.webconfig import WebConfig, load_web_config
from tests.pki import PKI, make_pki

PASSWORD = "correct horse battery staple"
TOKEN = "tok-9f8e7d6c5b4a"


def fast_hash(secret: str) -> str:
    return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(4)).decode()  # cost 4: a quick test


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def web_config(tmp_path: Path, text: str) -> WebConfig:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return load_web_config(path)


@asynccontextmanager
async def serving(config: WebConfig | None = None, host: str = "127.0.0.1"
                  ) -> AsyncIterator[tuple[str, web.AppRunner]]:
    runner = await start_server(host, 0, registry=MetricsSink().registry, web_config=config)
    scheme = "https" if config is not None and config.tls is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{bound_port(runner)}", runner
    finally:
        await runner.cleanup()


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


# -- where it listens, what it answers --------------------------------------------------------

async def test_it_listens_on_loopback_unless_told_otherwise() -> None:
    host, port = parse_listen("9464")
    assert host == DEFAULT_HOST == "127.0.0.1" and port == 9464
    runner = await start_server(*parse_listen(":0"), registry=MetricsSink().registry)
    try:
        assert runner.addresses[0][0] == "127.0.0.1"
    finally:
        await runner.cleanup()


def routes() -> list[str]:
    """Every path the server routes (a placeholder filled in), whoever registered it."""
    app = build_app(MetricsSink().registry)
    paths = set()
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if path:
            paths.add(re.sub(r"\{[^}]+\}", "x", str(path)))
    return sorted(paths)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_no_endpoint_takes_a_method_that_changes_state(method: str) -> None:
    async with serving() as (url, _), httpx.AsyncClient() as client:
        for path in routes():
            r = await client.request(method, url + path, content=b"{}")
            assert r.status_code == 405, (method, path, r.status_code)
            assert r.headers["Allow"] == "GET, HEAD"


class Connects:
    """Every socket.connect this process makes while recording (sys.addaudithook: a hook
    cannot be removed, so it stays inert outside `recording`)."""

    installed: Connects | None = None

    def __init__(self) -> None:
        self.recording = False
        self.seen: list[Any] = []

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.recording and event == "socket.connect":
            self.seen.append(args[1])

    @classmethod
    def get(cls) -> Connects:
        if cls.installed is None:
            cls.installed = cls()
            sys.addaudithook(cls.installed.hook)
        return cls.installed


async def test_no_endpoint_reaches_the_network() -> None:
    connects = Connects.get()
    async with serving() as (url, runner), httpx.AsyncClient() as client:
        ours = ("127.0.0.1", bound_port(runner))
        connects.seen.clear()
        connects.recording = True
        try:
            for path in routes():
                await client.get(url + path)
        finally:
            connects.recording = False
    assert {tuple(a) for a in connects.seen} <= {ours}, connects.seen  # only the test's own


# -- bounds -------------------------------------------------------------------------------------

async def raw_exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(4096), 10)
    finally:
        writer.close()


@pytest.mark.parametrize(("what", "request_bytes"), [
    ("a header line of 20 KB", b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000
     + b"\r\n\r\n"),
    ("a 20 KB path", b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("200 headers", b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n"),
])
async def test_oversized_requests_are_refused(what: str, request_bytes: bytes) -> None:
    async with serving() as (_, runner):
        answer = await raw_exchange(bound_port(runner), request_bytes)
    assert re.match(rb"HTTP/1\.[01] (400|413|414|431) ", answer), (what, answer[:80])


async def test_malformed_requests_cannot_fill_the_log(caplog: pytest.LogCaptureFixture) -> None:
    async with serving() as (_, runner):
        for _ in range(20):
            await raw_exchange(bound_port(runner), b"GET /metrics HTTP/1.1\r\nX: "
                               + b"a" * 9000 + b"\r\n\r\n")
    lines = [r for r in caplog.records if r.name.startswith(("monitor.web", "aiohttp"))]
    assert len(lines) <= 1 and not any(r.exc_info for r in lines)


async def test_a_body_is_never_read_past_the_bound() -> None:
    async with serving() as (url, _), httpx.AsyncClient() as client:
        r = await client.post(url + "/metrics", content=b"x" * (1 << 20))
    assert r.status_code == 405  # refused before a byte of it is read


async def test_one_client_cannot_flood_the_server() -> None:
    async with serving() as (url, _), httpx.AsyncClient() as client:
        codes = [(await client.get(url + "/healthz")).status_code for _ in range(150)]
    assert codes.count(200) >= guard.CLIENT_BURST  # a burst is fine ...
    assert 429 in codes  # ... a flood is not
    async with serving() as (url, _), httpx.AsyncClient() as client:
        r = None
        for _ in range(150):
            r = await client.get(url + "/healthz")
            if r.status_code == 429:
                break
        assert r is not None and r.headers["Retry-After"] == "1"


async def test_the_web_configs_rate_limit_applies_to_everyone(tmp_path: Path) -> None:
    config = web_config(tmp_path, "rate_limit: {interval: 10s, burst: 2}\n")
    async with serving(config) as (url, _), httpx.AsyncClient() as client:
        codes = [(await client.get(url + "/healthz")).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]


# -- authentication -------------------------------------------------------------------------

@pytest.fixture
def auth_config(tmp_path: Path) -> WebConfig:
    return web_config(tmp_path, f"""
basic_auth_users:
  alice: {fast_hash(PASSWORD)}
bearer_auth_tokens:
  - {fast_hash(TOKEN)}
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
    X-Frame-Options: deny
""")


async def test_basic_and_bearer_auth_guard_metrics_and_the_page(auth_config: WebConfig) -> None:
    async with serving(auth_config) as (url, _), httpx.AsyncClient() as client:
        for path in ("/metrics", "/"):
            refused = await client.get(url + path)
            assert refused.status_code == 401
            assert refused.headers["WWW-Authenticate"] == (
                'Basic realm="depin-monitor", Bearer realm="depin-monitor"')
            assert refused.headers["X-Frame-Options"] == "deny"  # on errors too
            assert "depin_" not in refused.text
            for headers in (basic("alice", "wrong"), basic("mallory", PASSWORD),
                            {"Authorization": "Bearer nope"}, {"Authorization": "Basic %%%"},
                            {"Authorization": f"Bearer {TOKEN}x"}):
                assert (await client.get(url + path, headers=headers)).status_code == 401
            ok = await client.get(url + path, headers=basic("alice", PASSWORD))
            assert ok.status_code == 200 and ok.headers["X-Content-Type-Options"] == "nosniff"
            ok = await client.get(url + path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200
        # orchestrators' probes need no credentials
        assert (await client.get(url + "/healthz")).status_code == 200
        assert (await client.get(url + "/readyz")).status_code == 503  # no scheduler here


async def test_every_route_but_the_orchestrators_probes_needs_credentials(
        auth_config: WebConfig) -> None:
    """Whoever registered a route (the feed, badges and pages too), the guard stands before
    it."""
    async with serving(auth_config) as (url, _), httpx.AsyncClient() as client:
        for path in routes():
            r = await client.get(url + path)
            assert r.status_code == (200 if path == "/healthz" else 503 if path == "/readyz"
                                     else 401), (path, r.status_code)


async def test_password_checks_run_off_the_event_loop(auth_config: WebConfig,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    loop_thread: list[bool] = []
    real = guard._matches

    def spy(secret: bytes, hashes: list[bytes]) -> bool:
        try:
            asyncio.get_running_loop()
            loop_thread.append(True)
        except RuntimeError:
            loop_thread.append(False)
        return real(secret, hashes)

    monkeypatch.setattr(guard, "_matches", spy)
    async with serving(auth_config) as (url, _), httpx.AsyncClient() as client:
        for _ in range(3):
            r = await client.get(url + "/metrics", headers=basic("alice", PASSWORD))
            assert r.status_code == 200
    assert loop_thread == [False]  # once, in a worker thread; then the cached answer


# -- TLS ---------------------------------------------------------------------------------------

def client_context(pki: PKI, cert: Path | None = None, **versions: ssl.TLSVersion
                   ) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert))
    for key, value in versions.items():
        setattr(context, key, value)
    return context


async def test_tls_serves_https_only(tmp_path: Path, pki: PKI) -> None:
    config = web_config(tmp_path, f"tls_server_config: {{cert_file: {pki.valid}, "
                                  f"key_file: {pki.valid}}}\n")
    async with serving(config) as (url, runner):
        async with httpx.AsyncClient(verify=client_context(pki)) as client:
            r = await client.get(url + "/metrics")
        assert r.status_code == 200 and "depin_monitor_build_info" in r.text
        async with httpx.AsyncClient() as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://127.0.0.1:{bound_port(runner)}/metrics")
    strict = web_config(tmp_path, f"tls_server_config: {{cert_file: {pki.valid}, "
                                  f"key_file: {pki.valid}, min_version: TLS13}}\n")
    async with serving(strict) as (url, _):
        tls12 = client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
        async with httpx.AsyncClient(verify=tls12) as older:
            with pytest.raises(httpx.HTTPError):
                await older.get(url + "/metrics")
        async with httpx.AsyncClient(verify=client_context(pki)) as client:
            assert (await client.get(url + "/metrics")).status_code == 200


async def test_mutual_tls_and_allowed_names(tmp_path: Path, pki: PKI) -> None:
    config = web_config(tmp_path, f"""
tls_server_config:
  cert_file: {pki.valid}
  key_file: {pki.valid}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {pki.ca}
""")
    async with serving(config) as (url, _):
        async with httpx.AsyncClient(verify=client_context(pki, pki.client)) as client:
            assert (await client.get(url + "/metrics")).status_code == 200
        for cert in (None, pki.stranger):  # no certificate, or one from another CA
            async with httpx.AsyncClient(verify=client_context(pki, cert)) as client:
                with pytest.raises(httpx.HTTPError):
                    await client.get(url + "/metrics")
    picky = web_config(tmp_path, f"""
tls_server_config:
  cert_file: {pki.valid}
  key_file: {pki.valid}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {pki.ca}
  client_allowed_sans: [prometheus@depin.test]
""")
    async with serving(picky) as (url, _), httpx.AsyncClient(
            verify=client_context(pki, pki.client)) as client:
        assert (await client.get(url + "/metrics")).status_code == 403


# -- bad web configs --------------------------------------------------------------------------

BAD_WEB_CONFIGS: dict[str, tuple[str, str]] = {
    "unknown key": ("basic_auth_user: {alice: x}\n", r"basic_auth_user: unknown key; allowed: "),
    "a password, not a hash": ("basic_auth_users: {alice: hunter2}\n",
                               r"basic_auth_users\.alice: not a bcrypt hash"),
    "a token, not a hash": ("bearer_auth_tokens: [tok-123]\n", r"bearer_auth_tokens\[0\]"),
    "no key": ("tls_server_config: {cert_file: c.pem}\n", r"key_file: missing one of key"),
    "unverified client certs": (
        "tls_server_config: {cert_file: c.pem, key_file: k.pem, "
        "client_auth_type: RequireAnyClientCert}\n", r"client_auth_type: .*not supported"),
    "TLS 1.4": ("tls_server_config: {cert_file: c.pem, key_file: k.pem, min_version: TLS14}\n",
                r"min_version: 'TLS14' is not one of TLS10"),
    "a header it cannot set": ("http_server_config: {headers: {Server: x}}\n",
                               r"headers\.Server: cannot be set"),
    "a bad header value": ("http_server_config: {headers: {X-Frame-Options: allow}}\n",
                           r"X-Frame-Options: 'allow' is not one of deny, sameorigin"),
    "a bad interval": ("rate_limit: {interval: soon, burst: 1}\n", r"rate_limit\.interval"),
    "not YAML": ("tls_server_config: [\n", r"invalid YAML"),
    "a list": ("- a\n- b\n", r"expected a mapping"),
    "missing files": ("tls_server_config: {cert_file: nope.pem, key_file: nope.pem}\n",
                      r"cert_file: cannot load the certificate and key"),
}


@pytest.mark.parametrize("case", sorted(BAD_WEB_CONFIGS))
def test_a_bad_web_config_is_one_clear_line(tmp_path: Path, case: str) -> None:
    text, expected = BAD_WEB_CONFIGS[case]
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_web_config(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert re.search(expected, message), message
    assert "hunter2" not in message  # a password given in place of its hash is not echoed


def test_a_bad_web_config_stops_run_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "web.yml").write_text("basic_auth_users: {alice: hunter2}\n")
    (tmp_path / "c.yaml").write_text("networks: [{name: n, base_url: 'http://127.0.0.1:9/v1', "
                                     "model: m}]\n")
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "run", "-c",
                          str(tmp_path / "c.yaml"), "--db", str(tmp_path / "r.db"),
                          "--web-config-file", str(tmp_path / "web.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and "basic_auth_users.alice" in out.stderr
    assert "hunter2" not in out.stderr
    assert not (tmp_path / "r.db").exists()  # refused before anything started
