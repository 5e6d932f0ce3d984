"""`.ci/run` fails when any step fails: the README's command is an `&&` chain, which `set -e`
alone would let fall through to a green exit. Run against stub tools on PATH."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
case "$(basename "$0") $*" in
  *"$FAIL_ON"*) exit 3 ;;
esac
[ "$(basename "$0")" = promtool ] && echo "promtool, version 2.45.3"
exit 0
"""


def run_ci(tmp_path: Path, fail_on: str) -> tuple[int, list[str]]:
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("apt-get", "promtool", "python3", "ip", "mount", "umount"):
        (bin_dir / tool).write_text(STUB)
        (bin_dir / tool).chmod(0o755)
    calls = tmp_path / "calls.log"
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls),
           "FAIL_ON": fail_on}
    proc = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, calls.read_text().splitlines()


def test_ci_runs_the_readme_test_command_exactly(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = ("python3 -m pip install -e '.[test]' && python3 -m ruff check . && "
               "python3 -m pytest -q -n 2")
    assert command in readme and command in ci
    code, calls = run_ci(tmp_path, fail_on="<nothing fails>")
    assert code == 0
    assert calls[-3:] == ["python3 -m pip install -e .[test]", "python3 -m ruff check .",
                          "python3 -m pytest -q -n 2"]


@pytest.mark.parametrize(("fail_on", "never_ran"), [
    ("apt-get install", "python3 -m pytest -q -n 2"),
    ("pip install -e .[test]", "python3 -m ruff check ."),
    ("ruff check", "python3 -m pytest -q -n 2"),
    ("pytest", None),
])
def test_ci_fails_when_any_step_fails(tmp_path: Path, fail_on: str, never_ran: str | None
                                      ) -> None:
    code, calls = run_ci(tmp_path, fail_on=fail_on)
    assert code != 0
    if never_ran:
        assert never_ran not in calls


def test_ci_checks_the_types_before_the_tests(tmp_path: Path) -> None:
    code, calls = run_ci(tmp_path, fail_on="mypy")
    assert code != 0 and "python3 -m mypy" in calls and "python3 -m pytest -q -n 2" not in calls


@pytest.mark.parametrize("workers", [(), ("-p", "xdist", "-n", "2")], ids=["serial", "xdist"])
@pytest.mark.parametrize(("ci", "expected"), [("1", 1), ("", 0)])
def test_a_skipped_test_fails_the_run_in_ci_only(tmp_path: Path, ci: str, expected: int,
                                                 workers: tuple[str, ...]) -> None:
    """Also with the README's two workers: a skip in a worker reaches the controller's tally."""
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\ndef test_needs_a_tool():\n    pytest.skip('promtool not installed')\n")
    # Only our conftest as a plugin: installed pytest11 plugins (whatever the venv holds) stay out.
    env = {**os.environ, "DEPIN_MONITOR_CI": ci, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.run(
        ["python3", "-m", "pytest", "-q", *workers, "-p", "tests.conftest", "--rootdir",
         str(tmp_path), "-c", os.devnull, str(tmp_path / "test_skips.py")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == expected, proc.stdout + proc.stderr
    if ci:
        assert "skipped, which CI does not allow" in proc.stderr


def test_ci_tries_the_lowest_allowed_versions_before_the_suite(tmp_path: Path) -> None:
    """.ci/lowest.py (the monitor and a named subset at the ranges' lower bounds) runs in CI,
    and its subset names test files that exist."""
    code, calls = run_ci(tmp_path, fail_on="<nothing fails>")
    assert code == 0
    assert calls.index("python3 .ci/lowest.py") < calls.index("python3 -m pytest -q -n 2")
    spec = importlib.util.spec_from_file_location("lowest", ROOT / ".ci" / "lowest.py")
    assert spec is not None and spec.loader is not None
    lowest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lowest)
    assert all((ROOT / path.split("::")[0]).is_file() for path in lowest.SUBSET)
    assert {re.split(r"[<>=]", r)[0] for r in lowest.test_tools()} == lowest.TEST_TOOLS
