"""CI: the lowest versions pyproject.toml allows, tried for real.

Builds a second virtualenv with every direct dependency at the lowest version its range allows
(uv's `--resolution lowest-direct`), starts the monitor there (`depin-monitor demo` for a few
seconds, then `report` on what it stored) and runs the named fast subset of the suite, SUBSET
below. A range whose lower bound fails here is not true: raise the bound in pyproject.toml.

Usage: python3 .ci/lowest.py [VENV_DIR]   (default: a new temporary directory, removed after)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The fast subset (under two minutes; 2.5 on a loaded 2-core machine), each file for the bounds it
# tries: the exporter at the low end of its prometheus-client range (test_exposition); the
# config and the kinds' typed settings (pydantic, PyYAML, hypothesis); the store, its schema
# made by sqlite-utils and an older file migrated to it, and its reads (sqlite-utils); metrics
# and the HTTP side (aiohttp's server, bcrypt's hashes); the SLA maths and model equality
# (numpy); the probes against reference networks, TLS and hostile servers (aiohttp's client).
# The demo and the report before it run the whole monitor and rich's tables.
SUBSET = [
    "tests/test_exposition.py", "tests/test_config.py", "tests/test_store.py",
    "tests/test_schema.py", "tests/test_kindsettings.py",
    "tests/test_metrics.py", "tests/test_server.py", "tests/test_server_security.py",
    "tests/test_sla.py", "tests/test_mmd.py", "tests/probes/test_openai.py",
    "tests/probes/test_hostile_servers.py", "tests/test_tls.py",
    # the HTML report's charts (matplotlib)
    "tests/test_report_buyer.py::test_the_html_report_holds_the_charts_and_fetches_nothing",
]
# The test extra's tools the subset needs, at the lowest versions their ranges allow too.
TEST_TOOLS = {"pytest", "pytest-asyncio", "pytest-rerunfailures", "hypothesis", "trustme",
              "jsonschema"}


def test_tools() -> list[str]:
    """The `test` extra's requirements for TEST_TOOLS, as pyproject.toml writes them."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["test"]
    found = [r for r in extra if re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0] in TEST_TOOLS]
    if len(found) != len(TEST_TOOLS):
        sys.exit(f"ci: the test extra lacks some of {sorted(TEST_TOOLS)}: {found}")
    return found


def run(*args: str | Path, cwd: Path = ROOT) -> None:
    print("ci(lowest):", " ".join(map(str, args)), flush=True)
    subprocess.run(list(map(str, args)), cwd=cwd, check=True)


def main(venv: Path) -> None:
    run(sys.executable, "-m", "pip", "install", "-q", "uv")
    uv = (sys.executable, "-m", "uv")
    run(*uv, "venv", "-q", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    run(*uv, "pip", "install", "-q", "--python", python, "--resolution", "lowest-direct",
        "-e", ".", *test_tools())
    run(*uv, "pip", "freeze", "--python", python)
    work = Path(tempfile.mkdtemp(prefix="depin-lowest-"))
    try:
        db = work / "demo.db"
        run(python, "-m", "monitor.cli", "demo", "--duration", "5", "--db", db,
            "--listen", "off")
        run(python, "-m", "monitor.cli", "report", "--db", db, "-c", work / "demo.config.yaml")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUBSET)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory(prefix="depin-lowest-venv-") as tmp:
            main(Path(tmp) / "venv")
