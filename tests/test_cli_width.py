"""Every table the CLI prints fits the terminal it is printed in (issue 18): each command runs
in a real pseudo-terminal 80 and 120 columns wide, and no line of what it shows is longer.
Off a terminal (a pipe), the layout is plain: one line a row, the same whatever the width."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.core.equality import CONTINUE_V1, EqualityResult, Verdict
from monitor.storage.equality import VerdictWriter
from monitor.storage.store import Store
from tests.conftest import free_port
from tests.test_report_buyer import runs_like

ROOT = Path(__file__).resolve().parent.parent
# what asyncio and aiohttp print at exit about what a program left open or running
LEFT_BEHIND = ("Unclosed", "Task was destroyed", "never retrieved", "Traceback")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def in_terminal(columns: int, *args: str, timeout: float = 90.0) -> str:
    """What `depin-monitor ARGS` shows in a terminal `columns` wide (escape codes removed)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", *args],
                            stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks = []
    try:
        while select.select([controller], [], [], timeout)[0]:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the command exited
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(controller)
        assert proc.wait(timeout=10) == 0
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def too_long(text: str, columns: int) -> list[str]:
    return [line for line in text.splitlines() if len(line) > columns]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("width") / "w.db"
    s = Store(path)
    s.add_many(runs_like("depin-steady", "depin-steady", 300, seed=1)
               + runs_like("depin-steady", "depin-steady-eu-west-with-a-long-name", 300, seed=2)
               + runs_like("depin-flaky", "depin-flaky", 300, seed=3)
               + runs_like("datacenter", "datacenter", 300, seed=4)
               + runs_like("datacenter", "datacenter", 100, seed=5, tier="large"))
    s.close()
    yield str(path)


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("wide", [False, True])
def test_report_fits_the_terminal(store: str, columns: int, wide: bool) -> None:
    shown = in_terminal(columns, "report", "--db", store, *(["--wide"] if wide else []))
    assert too_long(shown, columns) == []
    assert "depin-steady-eu-west-with-a-long-name" in shown  # names are never cut
    assert "Tier ladder" in shown and "SLA by calendar month" in shown


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("args", [["jobs"], ["jobs", "--wide"], ["simulate", "--list"]])
def test_listings_fit_the_terminal(columns: int, args: list[str]) -> None:
    shown = in_terminal(columns, *args)
    assert too_long(shown, columns) == []
    assert "chat-short-v1" in shown or "depin-flaky" in shown


LONG_MODEL = "an-organisation-with-a-long-name/Meta-Llama-3.1-405B-Instruct-Turbo-FP8-2025-01"


@pytest.fixture(scope="module")
def long_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The real networks' catalog plus a network whose model id alone is 80 characters."""
    path = tmp_path_factory.mktemp("check") / "long.yaml"
    path.write_text((ROOT / "examples" / "networks.yaml").read_text().replace(
        "networks:\n", "networks:\n  - {name: long-model-ids, base_url: 'https://a.example/v1', "
        f"models: {{small: {LONG_MODEL}, large: {LONG_MODEL}-large}}}}\n", 1))
    return str(path)


@pytest.mark.parametrize("columns", [80, 120])
def test_check_fits_the_terminal(long_config: str, columns: int) -> None:
    shown = in_terminal(columns, "check", "-c", long_config)
    assert too_long(shown, columns) == []
    assert "long-model-ids" in shown and "together" in shown and ": ok" in shown


def test_check_off_a_terminal_is_one_line_a_network_and_a_tier(long_config: str) -> None:
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "-c", long_config],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COLUMNS": "60"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert ["network", "kind", "every", "sla", "jobs"] in [line.split() for line in lines[3:5]]
    assert re.search(r"^together +openai +1m +enterprise +chat-short-v1, chat-long-v1, json-v1$",
                     out.stdout, re.M)
    tiers = [line.split() for line in lines if line.startswith("long-model-ids ")]
    assert tiers[1:] == [["long-model-ids", "small", LONG_MODEL],
                         ["long-model-ids", "large", f"{LONG_MODEL}-large"]]  # whole


@pytest.mark.parametrize("columns", [80, 120])
def test_demo_fits_the_terminal(tmp_path: Path, columns: int) -> None:
    """The live table fits (in 80 columns, networks across and figures down); only the
    closing commands run past the edge, whole, so that they can be copied."""
    shown = in_terminal(columns, "demo", "--duration", "2", "--db", str(tmp_path / "d.db"),
                        "--listen", "127.0.0.1:0")
    table, _, commands = shown.partition("Database: ")
    assert too_long(table, columns) == [] and "…" not in table  # nothing cut either
    assert all(name in table for name in ("datacenter", "depin-steady", "depin-flaky"))
    assert f"depin-monitor report --db {tmp_path / 'd.db'}" in commands
    # stopped while its runs are under way, it leaves nothing open or running behind
    assert not [s for s in LEFT_BEHIND if s in shown], shown[-3000:]


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    """A reference network on loopback, started as a user would (`simulate`), half its
    streams cut so that the probe has errors to show."""
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "monitor.cli", "simulate", "--port",
                            str(port), "--set", "p_eof=0.5", "--seed", "3"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert sim.stdout is not None and "simulating" in sim.stdout.readline()
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        sim.terminate()
        sim.wait(timeout=10)


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("wide", [False, True])
def test_probe_fits_the_terminal(sim_url: str, columns: int, wide: bool) -> None:
    shown = in_terminal(columns, "probe", "--url", sim_url, "--model", "m", "--count", "4",
                        *(["--wide"] if wide else []))
    assert too_long(shown, columns) == []
    assert "/4 ok" in shown


def test_off_a_terminal_the_layout_is_plain_and_one_line_a_row(store: str) -> None:
    narrow = subprocess.run([sys.executable, "-m", "monitor.cli", "report", "--db", store],
                            capture_output=True, text=True, timeout=90,
                            env={**os.environ, "COLUMNS": "60"})
    wide = subprocess.run([sys.executable, "-m", "monitor.cli", "report", "--db", store],
                          capture_output=True, text=True, timeout=90,
                          env={**os.environ, "COLUMNS": "200"})
    assert narrow.stdout == wide.stdout  # the width does not change it
    lines = narrow.stdout.splitlines()
    rows = [ln for ln in lines if re.match(r"(depin-|datacenter)\S*\s+\d+\s", ln)]
    months = [ln for ln in lines if re.match(r"(depin-|datacenter)\S*\s+\d{4}-\d\d", ln)]
    assert (len(rows), len(months)) == (4, 4)  # one line a network in both tables
    assert "\x1b[" not in narrow.stdout  # no colour codes in a pipe
    header = narrow.stdout.splitlines()[1]
    assert header.split()[:3] == ["network", "runs", "availability"]


@pytest.mark.parametrize("columns", [80, 120])
def test_the_model_equality_section_fits_the_terminal(tmp_path: Path, columns: int) -> None:
    db = tmp_path / "eq.db"
    Store(db).close()
    writer = VerdictWriter(db)
    for network, verdict, p in (("depin-steady-eu-west-with-a-long-name", Verdict.DIFFERS,
                                 0.000999), ("depin-flaky", Verdict.SAME, 0.41)):
        writer.on_verdict(EqualityResult(
            network, "small", LONG_MODEL, "datacenter", 1_700_000_000.0, verdict, p, 0.12,
            80, 80, 80, 0, None, "continue-v1", CONTINUE_V1.digest, 0.01, 1000))
    shown = in_terminal(columns, "report", "--db", str(db))
    assert "Model equality" in shown and "differs" in shown
    assert too_long(shown, columns) == []
