"""Malformed and hostile config files: each gives one clear line naming the file (and the key
or position where there is one), exit 2, no traceback, in bounded time, whatever the bytes.
The table-driven exact errors of ordinary mistakes are tests/test_config.py's."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.cli import main
from monitor.config import MAX_CONFIG_BYTES, parse_config
from monitor.core.errors import ConfigError

NET = "networks:\n  - {name: x, base_url: 'http://127.0.0.1:1/v1', model: m"


def laughs(levels: int = 9) -> str:
    """A "billion laughs": 9 levels of 9 aliases, 9^9 values once expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join([*lines, f"networks: *a{levels - 1}", ""])


# name -> (file content, what the one line must say)
CORPUS: dict[str, tuple[bytes | Callable[[], bytes], str]] = {
    "empty": (b"", r"expected a mapping with at least `networks:`"),
    "only whitespace": (b"\n\n   \n", r"expected a mapping"),
    "a scalar": (b"just words\n", r"expected a mapping"),
    "a list": (b"- a\n- b\n", r"expected a mapping"),
    "binary": (bytes(range(256)) * 8, r"not UTF-8 text \(byte 0x80 at offset 128\)"),
    "latin-1": ("location: München\n".encode("latin-1"), r"not UTF-8 text"),
    "UTF-16": ("networks: []\n".encode("utf-16"), r"not UTF-8 text \(byte 0xff at offset 0\)"),
    "a NUL byte": (b"networks:\n  - name: a\x00b\n", r"invalid YAML: unacceptable character"),
    "tabs": (b"networks:\n\t- name: a\n", r":2:1: invalid YAML: found character '\\t'"),
    "an unterminated quote": (b"networks:\n  - name: 'open\n", r"invalid YAML"),
    "a key given twice": (b"networks: []\nnetworks: []\n",
                          r":2:1: invalid YAML: key 'networks' is given twice"),
    "a list as a key": (b"? [a, b]\n: c\n" + NET.encode() + b"}\n",
                        r":1:3: invalid YAML: a key must be a plain value"),
    "a python tag": (b"networks: !!python/object/apply:os.system ['echo pwned']\n",
                     r"could not determine a constructor for the tag"),
    "a billion laughs": (lambda: laughs().encode(), r"aliases \(\*name\) expand to more than"),
    "nested 50,000 deep": (lambda: b"networks: " + b"[" * 50_000 + b"]" * 50_000 + b"\n",
                           r"invalid YAML: nested too deeply"),
    "a 5,000-digit number": (b"concurrency: " + b"9" * 5000 + b"\n" + NET.encode() + b"}\n",
                             r"invalid YAML: Exceeds the limit"),
    "an infinite interval": ((NET + ", interval: .inf}\n").encode(),
                             r"networks\[0\]\.interval: 'inf' is not a duration; write a finite"),
    "an infinite price": ((NET + ", price_per_mtok: {input: .inf, output: 1}}\n").encode(),
                          r"networks\[0\]\.price_per_mtok\.input: Input should be a finite"),
    "larger than the bound": (lambda: b"location: " + b"x" * (MAX_CONFIG_BYTES + 10) + b"\n",
                              r"larger than 4 MiB"),
}


def write(tmp_path: Path, content: bytes | Callable[[], bytes]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_bytes(content() if callable(content) else content)
    return path


@pytest.mark.parametrize("case", list(CORPUS))
def test_each_malformed_config_is_one_clear_line_and_exit_2(
        tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    content, expected = CORPUS[case]
    path = write(tmp_path, content)
    assert main(["check", "-c", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1, err[:2000]  # one line
    assert err.startswith(f"depin-monitor: error: {path}"), err[:300]
    assert re.search(expected, err), err[:300]
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(("case", "expected"), [
    ("a directory", r"cannot read: Is a directory"),
    ("no such file", r"no such file; give a config path"),
])
def test_a_path_that_is_not_a_file(tmp_path: Path, case: str, expected: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    if case == "a directory":
        path.mkdir()
    assert main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(expected, err), err


def test_thousands_of_mistakes_are_summed_up(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    text = "networks:\n" + "".join(f"  - {{name: n{i}, bogus: 1}}\n" for i in range(2000))
    assert main(["check", "-c", str(write(tmp_path, text.encode()))]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 51 and lines[-1] == "... and 3,950 more mistakes like these"


def test_the_command_itself_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, laughs().encode())
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "run", "-c", str(path)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr[-1000:]
    assert not (tmp_path / "depin-monitor.db").exists()  # refused before anything started


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_config_or_a_config_error(text: str) -> None:
    try:
        parse_config(text, "fuzz.yaml")
    except ConfigError as exc:
        assert all(line.startswith(("fuzz.yaml", "... and")) for line in exc.problems)


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["networks", "name", "base_url", "model", "models", "interval",
                         "jobs", "kind", "sla", "store", "buffer_results", "location",
                         "concurrency", "tls", "headers", "maintenance"]) | st.text(max_size=6),
        inner, max_size=5),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["networks", "location", "store", "jobs",
                                        "sla_profiles", "concurrency", "listen"]), values))
def test_any_yaml_shape_is_a_config_or_a_config_error(data: dict[str, object]) -> None:
    try:
        parse_config(yaml.safe_dump(data), "fuzz.yaml")
    except ConfigError as exc:
        assert all(line.startswith(("fuzz.yaml", "... and")) for line in exc.problems)
