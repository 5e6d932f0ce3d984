"""`depin-monitor demo` as a newcomer runs it: the table, the verdict it shows, the store."""

from __future__ import annotations

import contextlib
import io
import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from monitor import cli as app
from monitor.cli import main as cli_main
from monitor.cli.commands import demo as demo_command
from monitor.cli.commands.demo import Board, demo_config
from monitor.config import load_config
from tests.test_cli_width import LEFT_BEHIND
from tests.test_report_buyer import runs_like

DEMO_AT_LEAST_S = 8.0  # as long as a newcomer watches it at least


def judged(db: Path) -> bool:
    """What the tests below read is stored: the steady network's first model equality verdict
    and quality audit, and a failed run of the flaky one (a short demo on a slow machine may
    have none yet)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return all(conn.execute(f"select count(*) from {table} where network = ?",
                                    ("depin-steady",)).fetchone()[0]
                       for table in ("equality_verdicts", "quality_audits")) and bool(
                conn.execute("select count(*) from probe_results where network = ? and "
                             "outcome != 'ok'", ("depin-flaky",)).fetchone()[0])
    except sqlite3.Error:  # not there yet
        return False


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo as a newcomer runs it, stopped with Ctrl-C: (its store, what it printed). It
    runs eight seconds, or on a busy machine until what the tests below read is stored: never
    a fixed time that a slow machine overruns."""
    where = tmp_path_factory.mktemp("demo")
    db, out, err = where / "demo.db", where / "stdout.txt", where / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:  # files: a full pipe would block it
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "demo", "--duration", "0", "--db", str(db),
             "--listen", "127.0.0.1:0"],
            stdout=stdout, stderr=stderr, text=True, stdin=subprocess.DEVNULL)
    try:
        started = time.monotonic()
        while time.monotonic() - started < DEMO_AT_LEAST_S or not judged(db):
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() - started < 180, "no verdicts in 180 s"
            time.sleep(0.25)
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the demo stops and prints its table
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout, stderr = out.read_text(), err.read_text()
    assert proc.returncode == 0, stderr
    assert not [s for s in LEFT_BEHIND if s in stderr], stderr  # nothing left open
    return db, stdout


def test_demo_shows_flaky_losing_and_stores_every_run(demo: tuple[Path, str]) -> None:
    db, stdout = demo
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"\s*(datacenter|depin-steady|depin-flaky)\s+(\d+)\s+([\d.]+) ?%", line)
        if m:
            rows[m.group(1)] = (int(m.group(2)), float(m.group(3)))
    assert set(rows) == {"datacenter", "depin-steady", "depin-flaky"}, stdout
    assert all(runs >= 4 for runs, _ in rows.values())
    assert rows["datacenter"][1] > rows["depin-flaky"][1]  # the stable network wins
    assert "datacenter is HTTPS: TLSv1." in stdout  # the private-CA network (trustme)
    assert f"Database: {db}" in stdout
    assert f"depin-monitor report --db {db}" in stdout
    conn = sqlite3.connect(db)
    stored = dict(conn.execute("select network, count(*) from probe_results group by 1"))
    https = dict(conn.execute("select network, count(tls_version) from probe_results group by 1"))
    conn.close()
    assert stored == {name: runs for name, (runs, _) in rows.items()}  # every run is stored
    assert https["datacenter"] > 0 and https["depin-steady"] == https["depin-flaky"] == 0


def test_demo_shows_nodes_and_cost_and_its_report_the_credits(demo: tuple[Path, str]) -> None:
    """The flaky reference network churns through its nodes and names them; the demo's
    config has prices and spend, written beside the store so that its report has them too."""
    db, stdout = demo
    row = next(ln for ln in stdout.splitlines() if ln.startswith("depin-flaky "))
    nodes, cost = row.split()[8:10]
    assert int(nodes) >= 2 and cost.startswith("$")
    config = db.with_suffix(".config.yaml")
    assert f"depin-monitor report --db {db} -c {config}" in stdout
    report = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "report", "--db", str(db), "-c", str(config),
         "--format", "json"], capture_output=True, text=True, timeout=60)
    data = json.loads(report.stdout)
    flaky = next(g for g in data["groups"] if g["group"]["network"] == "depin-flaky")
    assert flaky["nodes"] >= 2 and flaky["effective_usd_per_mtok"] > flaky["list_usd_per_mtok"]
    month = next(m for m in data["months"] if m["network"] == "depin-flaky")
    assert month["spend_usd"] == 300.0 and month["credit_share"] is not None


def test_demo_catches_the_network_serving_another_model(demo: tuple[Path, str]) -> None:
    """The steady network serves another model under the claimed name: the model equality
    test against the datacenter's completions catches it in its first run."""
    db, stdout = demo
    assert re.search(r"depin-steady DIFFERS: serves another model\? \(p=0\.000999", stdout), \
        stdout
    conn = sqlite3.connect(db)
    verdicts = dict(conn.execute("select network, verdict from equality_verdicts"))
    conn.close()
    assert verdicts["depin-steady"] == "differs"
    assert verdicts.get("depin-flaky") in (None, "same as reference")  # if it finished in time


def test_demo_catches_the_network_whose_large_model_answers_worse(
        demo: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    """The steady network's large model quietly answers the quality suite worse than the
    datacenter's: the audit on the same items says so, with its interval, in the demo's last
    lines and in its report."""
    db, stdout = demo
    line = next(ln for ln in stdout.splitlines() if ln.startswith("answer quality (large)"))
    assert re.search(r"depin-steady WORSE \(\d+% vs \d+%, -\d+ points \[-\d+, -\d+\], "
                     r"p=[\d.e-]+, \d+ items\)", line), line
    assert "depin-flaky WORSE" not in line
    assert app.main(["report", "--db", str(db), "--format", "json"]) == 0
    audits = {a["network"]: a for a in json.loads(capsys.readouterr().out)["quality"]}
    steady = audits["depin-steady"]
    assert steady["verdict"] == "worse than reference" and steady["tier"] == "large"
    assert steady["difference_ci"][1] < 0 and steady["reference"] == "datacenter"
    assert audits.get("depin-flaky", {}).get("verdict") in (None, "not worse",
                                                            "not enough items")


def test_piped_the_table_is_plain_one_line_a_network(demo: tuple[Path, str]) -> None:
    """Off a terminal the demo prints the plain layout of every other command: a header line,
    one line a network, the caption on one line, no colour codes, no padding."""
    _, stdout = demo
    lines = stdout.splitlines()
    header = lines.index(next(ln for ln in lines if ln.startswith("network ")))
    assert lines[header].split() == ["network", "runs", "avail", "TTFT", "p95", "tok/s", "disc",
                                     "wrong", "other", "nodes", "$/Mtok", "rank", "SLA"]
    assert [ln.split()[0] for ln in lines[header + 1:header + 4]] == [
        "datacenter", "depin-steady", "depin-flaky"]
    assert lines[header + 4].startswith("avail: ok runs / runs")
    assert lines[header + 4].endswith("(? = too few runs to be sure)")
    assert "\x1b[" not in stdout and all(ln == ln.rstrip() for ln in lines)


def test_piped_the_demo_says_where_it_serves(demo: tuple[Path, str]) -> None:
    _, stdout = demo
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith("status page and /metrics at")]
    assert re.fullmatch(r"status page and /metrics at http://127\.0\.0\.1:\d+/", line), line
    assert demo_command.serving_note("http://127.0.0.1:40123/", True) == (
        "status page and /metrics at http://127.0.0.1:40123/ (127.0.0.1:9464 was taken)")


def board_with_runs(n: int) -> tuple[Board, list]:
    runs = [r for trio in zip(runs_like("datacenter", "datacenter", n, seed=1, every_s=1.0),
                              runs_like("depin-steady", "depin-steady", n, seed=2, every_s=1.0),
                              runs_like("depin-flaky", "depin-flaky", n, seed=3, every_s=1.0),
                              strict=True) for r in trio]
    return Board(duration_s=None), runs


def test_the_live_table_keeps_rendering_while_results_arrive(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """Results arrive on the event loop while rich's Live renders on its own thread: the
    table must never read the runs while they change (it once failed with "deque mutated
    during iteration", which stops the live view)."""
    monkeypatch.setattr(demo_command, "ROWS_EVERY_S", 0.0, raising=False)  # read every time
    board, runs = board_with_runs(1000)
    for r in runs[:300]:
        board.on_result(r)
    screen = Console(file=io.StringIO(), width=120, force_terminal=True)

    def feed() -> None:  # as the event loop does: a few results, then other work
        for i, r in enumerate(runs[300:]):
            board.on_result(r)
            if i % 10 == 0:
                time.sleep(0)

    feeding = threading.Thread(target=feed)
    feeding.start()
    try:
        while feeding.is_alive():
            screen.print(board)
    finally:
        feeding.join()
    screen.file = io.StringIO()
    screen.print(board)
    shown = re.findall(r"^(datacenter|depin-steady|depin-flaky) +(\d+) ",
                       screen.file.getvalue(), re.M)
    assert shown == [("datacenter", "1000"), ("depin-steady", "1000"), ("depin-flaky", "1000")]


def test_the_live_table_is_rebuilt_at_most_once_a_second(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Live refreshes four times a second; the rows (the report's figures and ranking) are
    rebuilt at most once a second, so the live view takes little CPU from the probes."""
    builds = []
    summaries = demo_command.ranked_summaries
    monkeypatch.setattr(demo_command, "ranked_summaries",
                        lambda *a, **k: builds.append(1) or summaries(*a, **k))
    assert demo_command.ROWS_EVERY_S == 1.0
    monkeypatch.setattr(demo_command, "ROWS_EVERY_S", 3600.0)  # however slow this machine is
    board, runs = board_with_runs(40)
    screen = Console(file=io.StringIO(), width=120, force_terminal=True)
    for r in runs[:60]:
        board.on_result(r)
        screen.print(board)
    assert len(builds) == 1  # 60 refreshes within the interval: one build
    assert "depin-flaky" in screen.file.getvalue()
    monkeypatch.setattr(demo_command, "ROWS_EVERY_S", 0.0)
    screen.print(board)
    screen.print(board)
    assert len(builds) == 2  # the interval past: once more, and not again without new runs
    board.on_result(runs[60])
    screen.print(board)
    assert len(builds) == 3


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def example_file(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let a test point the demo at another example file; the demo's own afterwards."""
    demo_command.example.cache_clear()
    yield
    monkeypatch.undo()
    demo_command.example.cache_clear()


def test_the_demo_runs_the_prices_spend_and_credits_of_examples_demo_yaml(
        example_file: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each fact once: examples/demo.yaml is the file installed with the package, and the
    demo's networks, SLA profiles with credit schedules, prices and spend are that file's; a
    price changed there is the demo's price."""
    shipped = ROOT / "examples" / "demo.yaml"
    assert shipped.resolve() == Path(str(demo_command.EXAMPLE_FILE)).resolve()
    example = load_config(shipped)
    bases = [(n.name, f"http://127.0.0.1:{18081 + i}/v1", "m", n.sla or "")
             for i, n in enumerate(example.networks)]
    demo = demo_config(bases)
    assert [n.name for n in demo.networks] == ["datacenter", "depin-steady", "depin-flaky"]
    for listed in example.networks:
        net = demo.network(listed.name)
        assert (net.sla, demo.price(net.name), net.monthly_spend_usd) == (
            listed.sla, example.price(listed.name), listed.monthly_spend_usd)
        assert replace(demo.profile(net), capacity=None) == example.profile(listed)
        assert demo.profile(net).credits  # the report's SLA credits need them
    edited = tmp_path / "demo.yaml"
    edited.write_text(shipped.read_text().replace("{input: 0.02, output: 0.04}",
                                                  "{input: 0.03, output: 0.06}"))
    monkeypatch.setattr(demo_command, "EXAMPLE_FILE", edited)
    demo_command.example.cache_clear()
    assert dict(demo_config(bases).price("depin-flaky") or {}) == {"input": 0.03,
                                                                  "output": 0.06}


def test_the_demo_report_shows_the_flaky_network_breaking_the_api_contract(
        demo: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    """The flaky network invents a function name, ignores `stop` and answers prose to a JSON
    schema (docs/contract.md); the report's contract matrix shows it, the others keep it."""
    db, _ = demo
    assert cli_main(["report", "--db", str(db), "--format", "json"]) == 0
    rows = {r["network"]: r for r in json.loads(capsys.readouterr().out)["contract"]}
    flaky = rows["depin-flaky"]
    # The flaky network also fails about one request in ten (5xx, 429): such a request is
    # not graded and its cell is "unmeasured", never "ok"; its breaks show in what remains.
    stop, schema = (flaky["params"][p]["cell"] for p in ("stop", "response_format.json_schema"))
    assert stop in ("ignored", "unmeasured") and schema in ("ignored", "unmeasured")
    assert flaky["grades"].get("ok", 0) <= 2  # only the no-call item, streamed and not
    assert "ignored" in (stop, schema) or flaky["grades"].get("unknown_name", 0) > 0
    assert flaky["reference"] is None or flaky["reference"]["network"] == "datacenter"
    assert rows["datacenter"]["errors"] == 0
    assert rows["datacenter"]["params"]["stop"]["cell"] in ("honoured", "unmeasured")
