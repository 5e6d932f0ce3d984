"""`--env-file`: the systemd EnvironmentFile= format (systemd.exec(5)) as `check` and `rules`
read it, so that they see the keys the service will see."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import cli
from monitor.core.envfile import parse_env_file

KEY = "DEPIN_TEST_ENVFILE_KEY"


def test_the_forms_systemd_reads() -> None:
    env = parse_env_file(
        "# comment\n; also a comment\n\nA=plain\n  B = spaced out  \nC=\"two  words\"\n"
        "D='$NOT_EXPANDED'\nE=\"say \\\"hi\\\"\"\nF=one \\\ntwo\nnot an assignment\n"
        "1BAD=x\nG=\n")
    assert env.values == {"A": "plain", "B": "spaced out", "C": "two  words",
                          "D": "$NOT_EXPANDED", "E": 'say "hi"', "F": "one two", "G": ""}
    assert env.problems == ["line 11: no '=': not an assignment",
                            "line 12: '1BAD' is not a variable name"]


@given(key=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True),
       value=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40))
def test_a_double_quoted_value_comes_back_as_written(key: str, value: str) -> None:
    escaped = "".join("\\" + c if c in '"\\$`' else c for c in value)
    env = parse_env_file(f'{key}="{escaped}"\n')
    assert env.values == {key: value} and env.problems == []


@pytest.mark.parametrize("command", ["check", "rules"])
def test_check_and_rules_see_the_keys_of_the_env_file(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY, raising=False)
    config = tmp_path / "c.yaml"
    config.write_text(f"networks:\n  - {{name: keyed, base_url: \"http://127.0.0.1:1/v1\", "
                      f"model: m, api_key_env: {KEY}, sla: standard}}\n")
    env = tmp_path / "env"
    env.write_text(f"# the unit's EnvironmentFile\n{KEY}=\"sk-test-123456\"\n")
    args = [command, "-c", str(config)] + (["--skip-missing-keys"] if command == "rules" else [])
    assert cli.main(args) == (0 if command == "check" else 2)  # rules: every network skipped
    out = capsys.readouterr()
    assert KEY in out.out + out.err
    monkeypatch.setattr(os, "environ", dict(os.environ))  # what --env-file sets stays here
    assert cli.main([*args, "--env-file", str(env)]) == 0
    out = capsys.readouterr()
    assert f"{KEY} is not set" not in out.out + out.err
    assert "sk-test" not in out.out + out.err
    assert cli.main([command, "-c", str(config), "--env-file", str(tmp_path / "nope")]) == 2
    assert "--env-file" in capsys.readouterr().err
