"""How a target is reached: through a CONNECT proxy (configured, or HTTPS_PROXY/NO_PROXY),
with an IP family preference, and the clear connect_error when a proxy or a name fails."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from monitor.core.transport import PROXY_DIRECT, TransportSettings
from monitor.simulator.app import RunningNetwork, start_network
from monitor.simulator.tls import server_context
from probes import PROBES
from probes.session import TargetSession
from tests.conftest import STEADY, quick_job
from tests.connect_proxy import running_proxy
from tests.pki import PKI, make_pki

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
              "ALL_PROXY", "all_proxy")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
async def secure_net(pki: PKI) -> RunningNetwork:
    net = await start_network(STEADY, ssl_context=server_context(pki.valid))
    yield net  # type: ignore[misc]
    await net.stop()


class PinnedNames(AbstractResolver):
    """Answers like getaddrinfo from a fixed table (an /etc/hosts of the test's own)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_UNSPEC) -> list[ResolveResult]:
        found = []
        for address in self.table.get(host, []):
            fam = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family in (socket.AF_UNSPEC, fam):
                found.append(ResolveResult(hostname=host, host=address, port=port, family=fam,
                                           proto=0, flags=socket.AI_NUMERICHOST))
        if not found:
            raise OSError(socket.EAI_NONAME, f"no {family.name} address for {host}")
        return found

    async def close(self) -> None:
        return None


def target(url: str, ca: Path | None, **transport: object) -> Target:
    return Target(network="corp", name="small", kind="openai", base_url=url,
                  model="sim-llama-3.1-8b-instruct",
                  transport=TransportSettings(ca_file=str(ca) if ca else None,
                                              **transport))  # type: ignore[arg-type]


async def run(t: Target, resolver: AbstractResolver | None = None) -> ProbeResult:
    session = TargetSession(t, resolver=resolver)
    try:
        return await PROBES["openai"].run(t, quick_job(), session)
    finally:
        await session.close()


async def test_a_configured_proxy_carries_the_run_through_a_connect_tunnel(
        pki: PKI, secure_net: RunningNetwork, no_env_proxy: pytest.MonkeyPatch) -> None:
    async with running_proxy() as proxy:
        r = await run(target(secure_net.base_url, pki.ca, proxy=proxy.url))
    assert r.outcome is Outcome.OK, r.error
    assert proxy.tunnels == [f"127.0.0.1:{secure_net.port}"]
    # TLS runs end to end through the tunnel; "connect" is TCP to the proxy plus CONNECT
    assert r.tls_version and r.tls_s and r.tcp_s
    assert r.tls_cert_expiry == pki.valid_expiry


async def test_https_proxy_and_no_proxy_from_the_environment(
        pki: PKI, secure_net: RunningNetwork, no_env_proxy: pytest.MonkeyPatch) -> None:
    async with running_proxy() as proxy:
        no_env_proxy.setenv("HTTPS_PROXY", proxy.url)
        via_env = await run(target(secure_net.base_url, pki.ca))
        direct = await run(target(secure_net.base_url, pki.ca, proxy=PROXY_DIRECT))
        no_env_proxy.setenv("NO_PROXY", "example.com,127.0.0.1")
        bypassed = await run(target(secure_net.base_url, pki.ca))
    assert via_env.outcome is direct.outcome is bypassed.outcome is Outcome.OK
    assert proxy.tunnels == [f"127.0.0.1:{secure_net.port}"]  # only the first went through


async def test_proxy_credentials_come_from_the_environment_and_never_show(
        pki: PKI, secure_net: RunningNetwork, no_env_proxy: pytest.MonkeyPatch) -> None:
    secret = "s3cret-proxy-PASSWORD"
    async with running_proxy(credentials=("monitor", secret)) as proxy:
        no_env_proxy.setenv("HTTPS_PROXY", f"http://monitor:{secret}@127.0.0.1:{proxy.port}")
        ok = await run(target(secure_net.base_url, pki.ca))
        no_env_proxy.setenv("HTTPS_PROXY", f"http://monitor:wrong-{secret}@127.0.0.1:"
                                           f"{proxy.port}")
        refused = await run(target(secure_net.base_url, pki.ca))
    assert ok.outcome is Outcome.OK, ok.error
    assert refused.outcome is Outcome.CONNECT_ERROR
    assert refused.error == "proxy refused the tunnel: HTTP 407 Refused"
    for r in (ok, refused):
        assert secret not in repr(r.to_dict())


@pytest.mark.parametrize("refuse, reason", [
    (403, "proxy refused the tunnel: HTTP 403 Refused"),
    (None, "proxy 127.0.0.1:{port} unreachable: "),
])
async def test_a_proxy_that_refuses_or_is_gone_is_a_connect_error(
        pki: PKI, secure_net: RunningNetwork, no_env_proxy: pytest.MonkeyPatch,
        refuse: int | None, reason: str) -> None:
    async with running_proxy(refuse=refuse) as proxy:
        port = proxy.port
        if refuse is None:
            await proxy.stop()
        r = await run(target(secure_net.base_url, pki.ca, proxy=proxy.url))
    assert r.outcome is Outcome.CONNECT_ERROR
    assert r.error.startswith(reason.format(port=port))
    assert secure_net.sim.requests == 0


async def _dual_stack(pki: PKI) -> tuple[RunningNetwork, asyncio.base_events.Server]:
    """A network on ::1 and, on the same port, on 127.0.0.1."""
    net = await start_network(STEADY, host="::1", ssl_context=server_context(pki.valid))
    loop = asyncio.get_running_loop()
    v4 = await loop.create_server(net._runner.server, "127.0.0.1", net.port,
                                  ssl=net.ssl_context)
    return net, v4


@pytest.mark.parametrize("preference, version", [("ipv6", 6), ("ipv4", 4)])
async def test_ip_preference_picks_the_family(pki: PKI, preference: str, version: int,
                                              no_env_proxy: pytest.MonkeyPatch) -> None:
    names = PinnedNames({"localhost": ["127.0.0.1", "::1"]})
    net, v4 = await _dual_stack(pki)
    try:
        r = await run(target(f"https://localhost:{net.port}/v1", pki.ca,
                             ip_preference=preference), names)
    finally:
        v4.close()
        await net.stop()
    assert r.outcome is Outcome.OK, r.error
    assert r.ip_version == version


async def test_ip_preference_falls_back_unless_told_not_to(
        pki: PKI, no_env_proxy: pytest.MonkeyPatch) -> None:
    names = PinnedNames({"localhost": ["127.0.0.1"]})  # no IPv6 address for the name
    net = await start_network(STEADY, ssl_context=server_context(pki.valid))
    url = f"https://localhost:{net.port}/v1"
    try:
        fallback = await run(target(url, pki.ca, ip_preference="ipv6"), names)
        only = await run(target(url, pki.ca, ip_preference="ipv6", ip_fallback=False), names)
    finally:
        await net.stop()
    assert fallback.outcome is Outcome.OK and fallback.ip_version == 4
    assert only.outcome is Outcome.CONNECT_ERROR
    assert only.error.startswith("DNS: cannot resolve localhost: ")
