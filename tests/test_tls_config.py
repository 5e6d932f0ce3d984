"""A network's TLS settings in the config: paths relative to the config, every unusable file one
clear line from `check`, `insecure` loud, and the key's password nowhere but in the key's
loading — not in output, logs, errors, metrics or the store (a real mTLS run end to end)."""

from __future__ import annotations

import logging
import os
import socket
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from monitor import cli
from monitor.config import load_config
from monitor.core.errors import ConfigError
from monitor.core.result import ERROR_MAX_CHARS
from monitor.core.secrets import cut
from monitor.runtime.agent import metrics_sink, warn_insecure
from monitor.web.api import tls_states
from tests.pki import KEY_PASSWORD, PKI, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def write_config(folder: Path, tls: str, *, url: str = "https://node.internal:8443/v1",
                 extra: str = "") -> Path:
    path = folder / "monitor.yaml"
    path.write_text(f"""\
location: test
networks:
  - name: private
    base_url: {url}
    models: {{small: sim-llama-3.1-8b-instruct}}
    jobs: [chat-short-v1]
    interval: 1m
    tls: {tls}
{extra}""")
    return path


def test_files_are_relative_to_the_config_and_check_shows_them(
        pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(pki.folder, "{ca_file: ca.pem, cert_file: client.pem, "
                                      "server_name: inference.internal}",
                          extra="    proxy: http://proxy.corp:3128\n    ip_preference: ipv6\n")
    monkeypatch.chdir(tmp_path)  # not the config's folder
    loaded = load_config(config)
    settings = loaded.network("private").transport
    assert settings.ca_file == str(pki.ca) and settings.cert_file == str(pki.client)
    assert loaded.targets()[0].transport == settings
    assert cli.main(["check", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert (f"transport: CA {pki.ca}, client certificate {pki.client}, server name "
            "inference.internal, proxy http://proxy.corp:3128, ipv6 first") in out
    assert "warning" not in out


def _problem(config: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(config)
    [problem] = info.value.problems
    return problem.removeprefix(f"{config}: ")


def test_each_unusable_tls_file_is_one_line_naming_the_field(
        pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    cases = {
        "{ca_file: missing.pem}":
            f"networks[0].tls.ca_file: cannot load the CA bundle {tmp_path}/missing.pem: No "
            "such file or directory; give a PEM file of CA certificates",
        "{ca_file: garbage.pem}":
            f"networks[0].tls.ca_file: cannot load the CA bundle {tmp_path}/garbage.pem: no "
            "certificate or crl found; give a PEM file of CA certificates",
        f"{{cert_file: {pki.client_cert_only}, key_file: {pki.stranger}}}":
            f"networks[0].tls.cert_file: cannot load the client certificate and key "
            f"({pki.client_cert_only}, {pki.stranger}): key values mismatch; check that both "
            "are PEM, that the key belongs to the certificate and that the password is right",
        f"{{cert_file: {pki.client_cert_only}, key_file: {pki.client_encrypted_key}}}":
            f"networks[0].tls.key_file: {pki.client_encrypted_key} is encrypted; set "
            "tls.key_password_env to the variable holding its password",
    }
    for tls, expected in cases.items():
        assert _problem(write_config(tmp_path, tls)) == expected, tls


def test_the_key_password_comes_from_the_environment_and_is_never_echoed(
        pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, f"{{cert_file: {pki.client_cert_only}, key_file: "
                                    f"{pki.client_encrypted_key}, key_password_env: KEY_PW}}")
    monkeypatch.delenv("KEY_PW", raising=False)
    assert cli.main(["check", "-c", str(config)]) == 0  # like an API key: a warning ...
    assert "environment variable KEY_PW is not set" in capsys.readouterr().out
    assert cli.main(["run", "-c", str(config), "--once", "--db", str(tmp_path / "r.db")]) == 2
    assert "KEY_PW is not set" in capsys.readouterr().err  # ... and run refuses
    monkeypatch.setenv("KEY_PW", "wrong-" + KEY_PASSWORD)
    problem = _problem(config)
    assert problem.startswith("networks[0].tls.cert_file: cannot load the client certificate")
    assert KEY_PASSWORD not in problem
    monkeypatch.setenv("KEY_PW", KEY_PASSWORD)
    loaded = load_config(config)
    for shown in (repr(loaded), str(loaded.networks), repr(loaded.targets())):
        assert KEY_PASSWORD not in shown


def test_insecure_is_loud_in_check_the_log_metrics_and_status_page(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path, "{insecure: true}")
    assert cli.main(["check", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "transport: TLS verification OFF (insecure)" in out
    assert ("warning: network private: tls.insecure is on: its certificates are NOT verified "
            "(anyone on the path can pose as it); trust its CA with tls.ca_file instead") in out
    loaded = load_config(config)
    with caplog.at_level(logging.WARNING):
        warn_insecure(loaded)
    assert "network private: tls.insecure is on" in caplog.text
    sink = metrics_sink(loaded)
    assert sink is not None
    assert sink.registry.get_sample_value("depin_probe_tls_insecure",
                                          {"network": "private"}) == 1
    sink.runs.labels("private", "small", "chat-short-v1").inc()
    assert not tls_states(sink.registry, now=0.0)["private"].verified  # "TLS NOT VERIFIED"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the simulator did not listen")


def test_an_mtls_run_end_to_end_leaves_the_password_nowhere(
        pki: PKI, tmp_path: Path) -> None:
    """`simulate` serving mTLS, `run --once -vv` with an encrypted client key, `probe --json`:
    every run ok, and the password in no output, log line, error or byte of the store."""
    port = _free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "simulate", "--port", str(port),
         "--tls-cert", str(pki.valid), "--tls-client-ca", str(pki.ca)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    env = {**os.environ, "KEY_PW": KEY_PASSWORD}
    config = write_config(tmp_path, f"{{ca_file: {pki.ca}, cert_file: {pki.client_cert_only}, "
                                    f"key_file: {pki.client_encrypted_key}, "
                                    "key_password_env: KEY_PW}",
                          url=f"https://127.0.0.1:{port}/v1")
    db = tmp_path / "runs.db"
    try:
        _wait_for(port, sim)
        runs = [subprocess.run([sys.executable, "-m", "monitor.cli", *args], env=env,
                               capture_output=True, text=True, timeout=60)
                for args in (["check", "-c", str(config)],
                             ["-vv", "run", "-c", str(config), "--once", "--db", str(db)],
                             ["probe", "-c", str(config), "--json"])]
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr for r in runs]
    assert '"outcome":"ok"' in runs[2].stdout and '"tls_version":"TLSv1.' in runs[2].stdout
    assert "outcome=ok" in runs[1].stderr  # the per-run debug line
    for r in runs:
        assert KEY_PASSWORD not in r.stdout + r.stderr
    for stored in tmp_path.glob("runs.db*"):  # the store, its WAL and shared memory
        assert KEY_PASSWORD.encode() not in stored.read_bytes()


def test_the_certificate_alert_warns_as_early_as_the_config_says(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "{}", extra="    sla: standard\n")
    config.write_text("cert_expiry_warning: 30d\n" + config.read_text())
    assert cli.main(["rules", "-c", str(config)]) == 0
    rules = yaml.safe_load(capsys.readouterr().out)
    [alert] = [r for g in rules["groups"] for r in g["rules"]
               if r.get("alert") == "DepinCertificateExpiringSoon"]
    assert alert["expr"] == ('depin_probe_tls_cert_expiry_timestamp_seconds{network="private"} '
                             "- time() < 2592000.0")
    assert alert["labels"] == {"severity": "ticket", "network": "private", "sli": "certificate"}
    assert alert["annotations"]["summary"] == "private: a TLS certificate expires within 30d"


@given(user=st.text(alphabet=string.ascii_letters + string.digits + "-._~", min_size=1),
       password=st.text(alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=",
                        min_size=1))
def test_credentials_in_a_proxy_url_are_redacted_from_error_texts(user: str,
                                                                   password: str) -> None:
    text = f"proxy http://{user}:{password}@proxy.corp:3128 unreachable"
    shown = cut(text, ERROR_MAX_CHARS, [], one_line=True)
    assert shown == "proxy http://***@proxy.corp:3128 unreachable"
