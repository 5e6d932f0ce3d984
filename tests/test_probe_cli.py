"""`depin-monitor probe` and `jobs` as a user runs them: real processes, real loopback servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

CLI = [sys.executable, "-m", "monitor.cli"]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited: {proc.stderr.read() if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


def simulate(*args: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([*CLI, "simulate", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def stable_url() -> Iterator[str]:
    yield from simulate("--profile", "datacenter", "--set", "p_http_5xx=0")


@pytest.fixture(scope="module")
def down_url() -> Iterator[str]:
    yield from simulate("--profile", "down")


def test_json_prints_one_object_per_run_with_the_design_fields(stable_url: str) -> None:
    out = cli("probe", "--url", stable_url, "--model", "m", "--count", "3", "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert row["outcome"] == "ok"
        for field in ("ttft_s", "duration_s", "output_tokens", "tokens_per_s", "http_status",
                      "error", "connect_s", "ttfb_s", "max_gap_s", "job_version", "prompt_hash"):
            assert field in row


def test_table_output_names_outcome_and_summary(stable_url: str) -> None:
    out = cli("probe", "--url", stable_url, "--model", "m", "--job", "json-v1")
    assert out.returncode == 0, out.stderr
    assert "json-v1" in out.stdout and "ok" in out.stdout
    assert "1/1 ok" in out.stdout


def test_fail_on_error_exits_1_when_a_run_fails(down_url: str) -> None:
    out = cli("probe", "--url", down_url, "--model", "m", "--fail-on-error", "--json")
    assert out.returncode == 1
    assert json.loads(out.stdout)["outcome"] == "http_error"
    assert cli("probe", "--url", down_url, "--model", "m", "--json").returncode == 0


def test_no_check_accepts_any_answer() -> None:
    for url in simulate("--profile", "datacenter", "--set", "p_wrong=1", "--set", "p_http_5xx=0"):
        assert json.loads(cli("probe", "--url", url, "--model", "m", "--json").stdout)[
            "outcome"] == "wrong_output"
        out = cli("probe", "--url", url, "--model", "m", "--json", "--no-check")
        assert json.loads(out.stdout)["outcome"] == "ok"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "ftp://x/v1", "--model", "m"], "--url 'ftp://x/v1' is not an http(s) URL"),
        (["--url", "not a url", "--model", "m"], "is not an http(s) URL"),
        (["--url", "http://127.0.0.1:1/v1"], "give either -c CONFIG, or both --url"),
        (["--url", "http://127.0.0.1:1/v1", "--model", "m", "--job", "nope"],
         "--job 'nope' is not a known job"),
        (["--url", "http://127.0.0.1:1/v1", "--model", "m", "--kind", "grpc"],
         "--kind 'grpc' is unknown"),
        (["--url", "http://127.0.0.1:1/v1", "--model", "m", "--api-key-env", "NOPE_UNSET_VAR"],
         "NOPE_UNSET_VAR: that variable is not set"),
        (["--url", "http://127.0.0.1:1/v1", "--model", "m", "--count", "0"], "--count 0"),
        (["--url", "http://u:sk-secret@127.0.0.1:1/v1", "--model", "m"],
         "must not carry credentials"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    out = cli("probe", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert message in lines[0]
    assert "Traceback" not in out.stderr
    assert "sk-secret" not in out.stderr


def test_key_from_env_never_printed(stable_url: str) -> None:
    out = cli("probe", "--url", stable_url, "--model", "m", "--api-key-env", "T_KEY",
              "--json", env={"T_KEY": "sk-live-abcdef123456"})
    assert out.returncode == 0
    assert "sk-live" not in out.stdout + out.stderr


def test_jobs_lists_the_standard_suite() -> None:
    out = cli("jobs", "--json")
    jobs = {json.loads(line)["name"]: json.loads(line) for line in out.stdout.splitlines()}
    assert {"chat-short-v1", "chat-long-v1", "needle-8k-v1", "json-v1"} <= set(jobs)
    assert jobs["chat-long-v1"]["max_tokens"] == 256
    assert jobs["needle-8k-v1"]["approx_input_tokens"] > 7000


def test_a_config_probe_records_the_configs_location(stable_url: str, tmp_path: Path) -> None:
    """`probe -c` stamps each run with the config's `location`, as `run` does."""
    config = tmp_path / "c.yaml"
    config.write_text(f"location: eu-west-1\nnetworks:\n  - {{name: n, base_url: "
                      f"\"{stable_url}\", model: m}}\n")
    out = cli("probe", "-c", str(config), "--json")
    assert out.returncode == 0, out.stderr
    (run,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert run["location"] == "eu-west-1" and run["network"] == "n"
