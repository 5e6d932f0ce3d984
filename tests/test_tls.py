"""HTTPS end to end over real TLS on 127.0.0.1 and ::1, with certificates the tests make:
phases, what the handshake showed, each certificate failure's outcome and reason, mTLS,
`insecure`, `server_name`, and the metrics each of those leaves behind."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from monitor.core.transport import TransportSettings
from monitor.exporter.metrics import MetricsSink
from monitor.simulator.app import RunningNetwork, start_network
from monitor.simulator.tls import server_context
from monitor.web.api import tls_states
from probes import PROBES
from probes.session import TargetSession
from tests.conftest import STEADY, free_port, quick_job
from tests.pki import PKI, make_pki

OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@contextlib.asynccontextmanager
async def https_network(chain: Path, host: str = "127.0.0.1", **options: object
                        ) -> AsyncIterator[RunningNetwork]:
    net = await start_network(STEADY, host=host,
                              ssl_context=server_context(chain, **options))  # type: ignore[arg-type]
    try:
        yield net
    finally:
        await net.stop()


def target_for(url: str, kind: str = "openai", **transport: object) -> Target:
    return Target(network="secure", name="small", kind=kind, base_url=url,
                  model="sim-llama-3.1-8b-instruct",
                  transport=TransportSettings(**transport))  # type: ignore[arg-type]


async def probe(target: Target, runs: int = 1, kind: str | None = None) -> list[ProbeResult]:
    """`runs` runs one after the other on one session (the later ones on its pooled
    connection)."""
    session = TargetSession(target)
    job = quick_job("health-v1" if (kind or target.kind) == "http" else "chat-short-v1")
    try:
        return [await PROBES[kind or target.kind].run(target, job, session)
                for _ in range(runs)]
    finally:
        await session.close()


def exported(results: list[ProbeResult]) -> MetricsSink:
    sink = MetricsSink(process_metrics=False)
    for r in results:
        sink.on_result(r)
    return sink


@pytest.mark.timing
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_valid_chain_times_each_phase_and_reports_the_chains_earliest_expiry(
        pki: PKI, host: str) -> None:
    async with https_network(pki.valid, host) as net:
        first, pooled = await probe(target_for(net.base_url, ca_file=str(pki.ca)), runs=2)
    assert first.outcome is Outcome.OK and pooled.outcome is Outcome.OK, first.error
    assert net.url.startswith("https://")
    # a new connection: TCP and TLS phases, then request -> first byte -> first token -> end
    assert first.tcp_s and first.tls_s and first.connect_s
    assert first.tcp_s + first.tls_s == pytest.approx(first.connect_s, abs=2e-3)
    phases = first.phases()
    assert set(phases) == {"connect", "tls", "processing", "first_token", "transfer"}
    assert phases["processing"] + phases["first_token"] + phases["transfer"] == pytest.approx(
        first.duration_s)
    assert first.ip_version == (6 if host == "::1" else 4)
    assert first.tls_version in ("TLSv1.2", "TLSv1.3") and first.tls_cipher
    # the intermediate expires 280 days before the leaf: the chain's earliest is reported
    assert first.tls_cert_expiry == pki.valid_expiry < pki.leaf_expiry
    # the pooled connection: no connection phases, the same connection facts
    assert pooled.tcp_s is None and pooled.tls_s is None and pooled.connect_s is None
    assert (pooled.ip_version, pooled.tls_version, pooled.tls_cert_expiry) == (
        first.ip_version, first.tls_version, first.tls_cert_expiry)

    sink = exported([first, pooled])
    sample = sink.registry.get_sample_value
    where = {"network": "secure", "target": "small"}
    assert sample("depin_probe_tls_cert_expiry_timestamp_seconds", where) == pki.valid_expiry
    assert sample("depin_probe_ip_protocol", where) == first.ip_version
    assert sample("depin_probe_tls_info", {**where, "version": first.tls_version,
                                           "cipher": first.tls_cipher}) == 1
    assert sample("depin_probe_phase_seconds_count", {**where, "phase": "tls"}) == 1
    assert sample("depin_probe_phase_seconds_count", {**where, "phase": "processing"}) == 2
    tls = tls_states(sink.registry, now=time.time())["secure"]  # the status page's TLS line
    assert (tls.verified, tls.version) == (True, first.tls_version)
    assert tls.certificate_expires_at == pki.valid_expiry and not tls.expires_soon


async def test_a_host_name_is_resolved_and_timed(pki: PKI) -> None:
    async with https_network(pki.valid) as net:
        [r] = await probe(target_for(f"https://localhost:{net.port}/v1", ca_file=str(pki.ca)))
    assert r.outcome is Outcome.OK, r.error
    assert r.dns_s is not None and r.dns_s > 0
    assert list(r.phases())[:3] == ["resolve", "connect", "tls"]


@pytest.mark.parametrize("case, reason", [
    ("expired", "TLS: certificate 'localhost' expired on "),
    ("wrong_host", "TLS: IP address mismatch, certificate is not valid for '127.0.0.1' "
                   "(it is valid for other.example); if the network serves that certificate "
                   "on purpose, set tls.server_name"),
    ("unknown_ca", "TLS: certificate signed by an unknown CA (unable to get local issuer "
                   "certificate); for a private CA set tls.ca_file to its bundle"),
])
async def test_certificate_failures_are_connect_errors_with_a_clear_reason(
        pki: PKI, case: str, reason: str) -> None:
    async with https_network(getattr(pki, case)) as net:
        [r] = await probe(target_for(net.base_url, ca_file=str(pki.ca)))
        assert net.sim.requests == 0  # refused before any request reached the network
    assert r.outcome is Outcome.CONNECT_ERROR
    assert r.error.startswith(reason)
    assert r.tls_s is None and r.ttfb_s is None
    sink = exported([r])
    assert sink.registry.get_sample_value("depin_probe_failures_total", {
        "network": "secure", "target": "small", "workload": "chat-short-v1",
        "outcome": "connect_error"}) == 1
    if case == "expired":  # the expiry is still reported: the alert fires on it
        assert "(3 days ago); the network must renew it" in r.error
        assert r.tls_cert_expiry == pki.expired_on
        assert sink.registry.get_sample_value(
            "depin_probe_tls_cert_expiry_timestamp_seconds",
            {"network": "secure", "target": "small"}) == pki.expired_on


@pytest.mark.parametrize("tls12", [False, True], ids=["tls1.3", "tls1.2"])
async def test_a_server_requiring_a_client_certificate(pki: PKI, tls12: bool) -> None:
    options = {"client_ca": pki.ca, "max_version": ssl.TLSVersion.TLSv1_2 if tls12 else None}
    async with https_network(pki.valid, **options) as net:
        [anonymous] = await probe(target_for(net.base_url, ca_file=str(pki.ca)))
        [stranger] = await probe(target_for(net.base_url, ca_file=str(pki.ca),
                                            cert_file=str(pki.stranger)))
        [member] = await probe(target_for(net.base_url, ca_file=str(pki.ca),
                                          cert_file=str(pki.client_cert_only),
                                          key_file=str(pki.client)))
    assert member.outcome is Outcome.OK, member.error
    assert anonymous.outcome is stranger.outcome is Outcome.CONNECT_ERROR
    if tls12:  # TLS 1.2 servers abort the handshake with a generic alert
        assert anonymous.error == (
            "TLS: the server aborted the handshake (sslv3 alert handshake failure: no TLS "
            "version or cipher in common, or it requires a client certificate)")
    else:  # TLS 1.3: after our Finished, the server's certificate_required alert
        assert anonymous.error == ("TLS: the server requires a client certificate; set "
                                   "tls.cert_file and tls.key_file")
    assert stranger.error == "TLS: the server rejected our client certificate (alert: unknown ca)"


async def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise AssertionError(f"openssl s_server exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.02)
    raise AssertionError("openssl s_server did not listen")


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed (apt-get install openssl)")
@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
async def test_openssl_s_server_refuses_like_the_simulator(pki: PKI, version: str) -> None:
    """The simulator's mTLS refusal (monitor/simulator/tls.py) against a real OpenSSL server:
    the same outcome and reason, and a client certificate lets the run through."""
    port = free_port()
    proc = subprocess.Popen(
        [str(OPENSSL), "s_server", "-accept", f"127.0.0.1:{port}", "-www", "-quiet",
         "-cert", str(pki.valid), "-cert_chain", str(pki.valid), "-Verify", "1",
         "-CAfile", str(pki.ca), version],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await _wait_listening(port, proc)
        url = f"https://127.0.0.1:{port}/"
        [anonymous] = await probe(target_for(url, kind="http", ca_file=str(pki.ca)))
        [member] = await probe(target_for(url, kind="http", ca_file=str(pki.ca),
                                          cert_file=str(pki.client)))
    finally:
        proc.kill()
        proc.wait()
    async with https_network(pki.valid, client_ca=pki.ca, max_version=(
            ssl.TLSVersion.TLSv1_2 if version == "-tls1_2" else None)) as net:
        [simulated] = await probe(target_for(net.url + "/health", kind="http",
                                             ca_file=str(pki.ca)))
    assert member.outcome is Outcome.OK, member.error
    assert anonymous.outcome is simulated.outcome is Outcome.CONNECT_ERROR
    assert anonymous.error == simulated.error


async def test_insecure_skips_verification_but_still_reports_the_certificate(pki: PKI) -> None:
    async with https_network(pki.unknown_ca) as net:
        [r] = await probe(target_for(net.base_url, insecure=True))
    assert r.outcome is Outcome.OK, r.error
    assert r.tls_version and r.tls_cert_expiry  # the presented chain's
    sink = exported([r])
    sink.set_tls_insecure("secure", True)
    assert sink.registry.get_sample_value("depin_probe_tls_insecure", {"network": "secure"}) == 1


async def test_server_name_override_is_sent_and_verified(pki: PKI) -> None:
    async with https_network(pki.internal_name) as net:
        [plain] = await probe(target_for(net.base_url, ca_file=str(pki.ca)))
        [named] = await probe(target_for(net.base_url, ca_file=str(pki.ca),
                                         server_name="inference.internal"))
    assert named.outcome is Outcome.OK, named.error
    assert plain.outcome is Outcome.CONNECT_ERROR
    assert "(it is valid for inference.internal)" in plain.error


async def test_tls_to_a_plain_http_port_says_so(pki: PKI, start_sim) -> None:
    plain = await start_sim()
    [r] = await probe(target_for(plain.base_url.replace("http://", "https://"),
                                 ca_file=str(pki.ca)))
    assert r.outcome is Outcome.CONNECT_ERROR
    assert r.error.startswith("TLS: the server does not speak TLS on this port")

