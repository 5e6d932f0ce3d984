"""Config: each invalid file gives its exact one-line error; secrets never show; check/run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor import cli
from monitor.config import load_config, parse_config, parse_duration
from monitor.core.errors import ConfigError

DATA = Path(__file__).parent / "testdata"
SECRET = "sk-live-THIS-MUST-NEVER-BE-PRINTED"

# file -> the exact error line (after the file name)
INVALID = {
    "invalid-unknown-key.yml":
        "networks[0].intervall: unknown key; did you mean 'interval'? allowed keys here: name, "
        "kind, base_url, api_key_env, models, model, jobs, interval, concurrency, sla, "
        "price_per_mtok, monthly_spend_usd, headers, check_output, enabled, tls, proxy, "
        "ip_preference, ip_fallback, catalog_url, capacity",
    "invalid-bad-duration.yml":
        "networks[0].interval: '5 minutes' is not a duration; write a number and a unit "
        "(ms, s, m, h, d), e.g. 30s, 5m or 1h",
    "invalid-unknown-job.yml":
        "networks[0].jobs: unknown job 'chat-shrot-v1'; did you mean 'chat-short-v1'? known "
        "jobs: chat-short-v1, chat-long-v1, needle-8k-v1, json-v1, completion-short-v1, "
        "embed-v1, image-small-v1, health-v1",
    "invalid-bad-url.yml":
        "networks[0].base_url: '127.0.0.1:18081/v1' is not an http(s) URL with a host; write "
        "e.g. https://api.example.com/v1",
    "invalid-literal-api-key.yml":
        "networks[0].api_key: literal credentials are not allowed in the config; remove it, "
        "export the key as an environment variable and set api_key_env: ALPHA_API_KEY",
    "invalid-unknown-kind.yml":
        "networks[0].kind: unknown kind 'grpc'; use one of http, jobapi, livepeer, ollama, "
        "openai, theta",
    "invalid-unknown-sla.yml":
        "networks[0].sla: unknown SLA profile 'platinum'; define it under sla_profiles or use "
        "one of enterprise, standard",
    "invalid-tls-key-without-cert.yml":
        "networks[0].tls: key_file without cert_file; give the client certificate too",
    "invalid-tls-insecure-with-ca.yml":
        "networks[0].tls: insecure: true turns certificate verification off, so ca_file would "
        "be ignored; keep ca_file (verified) and remove insecure",
    "invalid-proxy-credentials.yml":
        "networks[0].proxy: the proxy URL carries credentials; remove them and give the proxy "
        "in HTTPS_PROXY (environment) instead",
    "invalid-ip-preference.yml":
        "networks[0].ip_preference: 'ip6' is not an IP family; use ipv4 or ipv6",
    "invalid-job-kind.yml":
        "networks[0].jobs: job 'embed-v1' is an embedding job, which kind 'ollama' does not "
        "speak; use a chat job",
    "invalid-equality-missing-samples.yml":
        f"equality.compare[0].reference_file: {DATA}/no-such-samples.json: no such file; make "
        "one with `depin-monitor equality --save`",
    "invalid-equality-permutations.yml":
        "equality: permutations: 50 cannot give a p-value below alpha 0.01 (the smallest is "
        "1/(permutations+1)); use at least 1000",
    "invalid-equality-request-cap.yml":
        "equality: a run needs 250 requests per network (prompts x samples_per_prompt) but "
        "max_requests is 100; raise max_requests or sample less",
    "invalid-equality-self-reference.yml":
        "equality.compare[0].reference: a network cannot be its own reference; name another "
        "network serving the same model (e.g. a centralized baseline)",
    "invalid-equality-two-references.yml":
        "equality.compare[0]: give exactly one of reference (a network of this config) or "
        "reference_file (a sample set made by `depin-monitor equality --save`)",
    "invalid-fingerprint-request-cap.yml":
        "fingerprint: a run needs 200 requests per network (border_inputs x samples_per_input) "
        "but max_requests is 100; raise max_requests or sample less",
    "invalid-fingerprint-tier.yml":
        "fingerprint.networks[0].tier: alpha has no tier 'large'; its tiers: small",
    "invalid-job-param-status.yml":
        "jobs[0].params.expect_status: 'ok' is not an HTTP status or a list of them; write e.g. "
        "200 or [200, 204]",
    "invalid-job-param-regex.yml":
        "jobs[0].params.body_regex: '\"status\": *(\"ok\"' does not compile (missing ), "
        "unterminated subpattern at position 11); write a Python regular expression",
    "invalid-job-param-unknown.yml":
        "jobs[0].params.body_regx: kind http (network status) does not read it; did you mean "
        "'body_regex'? settings read: body_regex, expect_status",
    "invalid-job-param-poll.yml":
        "jobs[0].params.poll: 'soon' is not a number of seconds or a duration; write e.g. 5 or "
        "5s",
    "invalid-job-param-not-read.yml":
        "jobs[0].params.timeout: kind openai (network alpha) reads no params; remove it",
    "invalid-query-param.yml":
        "networks[0].base_url: query wait: '120' is more than 60 seconds, the longest the API "
        "holds a submit; write e.g. 30",
    "invalid-equality-unknown-network.yml":
        "equality.compare[0].network: 'gamma' is not an enabled network of this config; use "
        "one of alpha, beta",
}


def test_every_invalid_file_is_in_the_table() -> None:
    files = {p.name for p in DATA.glob("invalid-*.yml")} - {"invalid-several.yml"}
    assert files == set(INVALID)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_config_gives_its_exact_error_line(name: str) -> None:
    path = DATA / name
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [f"{path}: {INVALID[name]}"]


def test_every_mistake_is_reported_at_once_one_line_each() -> None:
    path = DATA / "invalid-several.yml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [
        f"{path}: networks[0].interval: '0s': a duration must be greater than 0, e.g. 30s",
        f"{path}: networks[1].base_url: 'ftp://example.com' is not an http(s) URL with a "
        "host; write e.g. https://api.example.com/v1",
        f"{path}: networks[1].concurrency: Input should be a valid integer, unable to parse "
        "string as an integer (got 'many')",
    ]


def test_check_exits_2_with_one_line_per_mistake_and_no_traceback() -> None:
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "-c",
                          str(DATA / "invalid-several.yml")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 3 and "Traceback" not in out.stderr
    assert all("invalid-several.yml: networks[" in line for line in lines)


def test_literal_key_never_appears_in_errors_or_output(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    assert cli.main(["check", "-c", str(DATA / "invalid-literal-api-key.yml")]) == 2
    captured = capsys.readouterr()
    assert "api_key_env" in captured.err
    assert SECRET not in captured.out + captured.err


def test_key_from_the_environment_never_shows_when_config_is_printed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ALPHA_API_KEY", SECRET)
    config = load_config(DATA / "valid-full.yml")
    target = config.targets()[0]
    assert target.api_key() == SECRET  # the probe gets it ...
    for shown in (repr(config), str(config), repr(config.targets()), repr(config.schedules()),
                  str(config.networks)):
        assert SECRET not in shown  # ... nothing printable holds it
    assert cli.main(["check", "-c", str(DATA / "valid-full.yml")]) == 0
    assert SECRET not in capsys.readouterr().out


def test_valid_config_builds_targets_schedules_profiles_and_windows() -> None:
    config = load_config(DATA / "valid-full.yml")
    assert config.location == "eu-west-1" and config.concurrency == 8
    assert [n.name for n in config.networks] == ["alpha", "beta"] and config.disabled == ("gamma",)
    alpha = config.network("alpha")
    assert alpha.interval_s == 90 and alpha.base_url == "https://api.example.com/v1"
    assert [(t.name, t.model, t.concurrency) for t in alpha.targets()] == [
        ("small", "m-8b", 2), ("large", "m-405b", 2)]
    schedules = config.schedules()
    assert len(schedules) == 2 * 3 + 1
    assert {j.name for _, j, _ in schedules} == {"chat-short-v1", "capital-v1", "shape-v1"}
    capital = config.job("capital-v1")
    assert capital.deadline_s == 20 and capital.check("Paris.") is None
    assert capital.check("Lyon") is not None
    assert config.job("shape-v1").check('{"a": 1}') is None
    gold = config.profiles["gold"]
    assert gold.availability == 0.995 and gold.decode_tps_min is None
    assert gold.disconnect_rate == 0.001  # unspecified fields keep the defaults
    assert {"enterprise", "standard", "gold"} <= set(config.profiles)
    assert dict(config.price("alpha") or {}) == {"input": 0.1, "output": 0.3}
    assert config.price("beta") is None
    window = config.maintenance[0]
    assert window.covers("alpha", 1793498400 + 60) and not window.covers("beta", 1793498400)
    assert config.network("beta").targets()[0].name == "default"


def test_missing_env_var_is_a_warning_for_check() -> None:
    config = load_config(DATA / "missing-env.yml")
    assert config.missing_keys() == [("alpha", "DEPIN_TEST_SURELY_UNSET_KEY")]


def test_run_refuses_a_missing_key_by_name_unless_skipping(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = str(DATA / "missing-env.yml")
    assert cli.main(["check", "-c", path]) == 0
    assert "DEPIN_TEST_SURELY_UNSET_KEY is not set" in capsys.readouterr().out
    db = str(tmp_path / "r.db")
    assert cli.main(["run", "-c", path, "--db", db, "--once"]) == 2
    err = capsys.readouterr().err
    assert "environment variable DEPIN_TEST_SURELY_UNSET_KEY is not set" in err
    assert "--skip-missing-keys" in err
    # skipping leaves nothing to monitor here: a clear error, not a silent success
    assert cli.main(["run", "-c", path, "--db", db, "--once", "--skip-missing-keys"]) == 2
    err = capsys.readouterr().err
    assert "skipping network alpha: environment variable DEPIN_TEST_SURELY_UNSET_KEY" in err


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("250ms", 0.25), ("1m30s", 90),
    (45, 45), (0.5, 0.5)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "-1s", "0s", "1x", True, None])
def test_bad_durations_are_rejected(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("networks: []", "<t>: networks: List should have at least 1 item after validation, not 0"),
    ("[1, 2]", "<t>: expected a mapping with at least `networks:`; see examples/demo.yaml"),
    ("networks:\n  - name: a\n    name: b\n", "<t>:3:5: invalid YAML: key 'name' is given "
     "twice in one mapping"),
    ("location: x\n", "<t>: networks: required key is missing; add it"),
    ("networks:\n  - {name: a, base_url: 'http://u:p@h/v1', model: m}",
     "<t>: networks[0].base_url: the URL carries credentials (user:pass@); remove them and put "
     "the key in an environment variable named by api_key_env"),
    ("networks:\n  - {name: a, base_url: 'http://h/v1', model: m, headers: "
     "{Authorization: Bearer x}}",
     "<t>: networks[0].headers: header 'Authorization' would put a credential in the file; keys "
     "come from the environment: set api_key_env: VAR_NAME"),
    ("networks:\n  - {name: a, base_url: 'http://h/v1'}",
     "<t>: networks[0]: no model: give `models: {small: model-id, ...}` or `model: id`"),
    ("networks:\n  - {name: a, base_url: 'http://h/v1', model: m}\n"
     "  - {name: a, base_url: 'http://h/v1', model: m}",
     "<t>: networks[1].name: 'a' is already the name of networks[0]; names must be unique"),
    ("jobs:\n  - {name: chat-short-v1, user: x, check: {exact: '1'}}\n"
     "networks:\n  - {name: a, base_url: 'http://h/v1', model: m}",
     "<t>: jobs[0].name: 'chat-short-v1' is a standard job and cannot be redefined; a changed "
     "job is a new name (e.g. my-chat-v1 or chat-short-v2)"),
    ("maintenance:\n  - {start: 2026-11-02, end: 2026-11-01}\n"
     "networks:\n  - {name: a, base_url: 'http://h/v1', model: m}",
     "<t>: maintenance[0]: end must be after start"),
])
def test_other_mistakes(yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(yaml_text, "<t>")
    assert info.value.problems == [expected]


def test_the_example_configs_are_valid() -> None:
    root = Path(__file__).parent.parent / "examples"
    demo = load_config(root / "demo.yaml")
    assert [n.name for n in demo.networks] == ["datacenter", "depin-steady", "depin-flaky"]
    assert all(n.base_url.startswith("http://127.0.0.1:1808") for n in demo.networks)
    assert load_config(root / "networks.yaml").networks
