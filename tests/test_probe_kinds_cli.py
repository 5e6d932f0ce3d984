"""`depin-monitor probe --kind K --url URL --model M` for every non-OpenAI kind, as a user runs
it: a real `simulate` process speaking every protocol, one CLI process per kind."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.test_probe_cli import cli, simulate

MODEL = "sim-llama-3.1-8b-instruct"


@pytest.fixture(scope="module")
def root() -> Iterator[str]:
    for base in simulate("--profile", "datacenter", "--set", "p_http_5xx=0"):
        yield base.removesuffix("/v1")


@pytest.mark.parametrize(("kind", "path", "job"), [
    ("ollama", "", None),
    ("livepeer", "", None),
    ("livepeer", "/legacy", None),
    ("livepeer", "/gateway", None),
    ("livepeer", "", "image-small-v1"),
    ("jobapi", "/api?market=7AtiXMSH6R1jjBxrcYjehCkkSF7zvYWte63gwEDBcGHq&poll=0.05", None),
    ("theta", "", None),
    ("http", "/health", None),
])
def test_each_kind_probes_ad_hoc(root: str, kind: str, path: str, job: str | None) -> None:
    args = ["probe", "--kind", kind, "--url", root + path, "--model", MODEL, "--json",
            "--fail-on-error"]
    if job:
        args += ["--job", job]
    out = cli(*args)
    assert out.returncode == 0, out.stderr + out.stdout
    (line,) = out.stdout.splitlines()
    result = json.loads(line)
    assert result["kind"] == kind and result["outcome"] == "ok", result
    assert result["duration_s"] > 0
    if kind == "jobapi":  # the queue is measured, or the probe says it could not be
        assert (result["queue_s"] is not None) != bool(
            result["details"].get("running_unobserved")), result
    if kind == "theta":
        assert result["details"]["states"] == ["success"]  # answered within `wait`
    if kind == "http":
        assert result["job"] == "health-v1"  # the default job is one the kind speaks


def test_a_job_the_kind_does_not_speak_is_a_usage_error(root: str) -> None:
    out = cli("probe", "--kind", "http", "--url", root + "/health", "--model", "-",
              "--job", "chat-short-v1")
    assert out.returncode == 2 and "does not speak" in out.stderr
