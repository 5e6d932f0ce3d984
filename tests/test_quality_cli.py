"""`depin-monitor quality` and the report's section as a user runs them: the command's entry
point with real files, real reference networks on 127.0.0.1 (one answering as well as the
reference, one whose model quietly answers worse), served from a thread of their own."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from monitor import cli as app
from monitor.core.quality_grading import grade
from monitor.core.quality_suite import make_item
from monitor.simulator.app import RunningNetwork, start_network
from monitor.simulator.profiles import PROFILES

FAST = PROFILES["datacenter"].with_overrides(p_http_5xx=0.0, ttft_s=0.001,
                                              tokens_per_s=50_000.0)
# The audit's items are fixed by `seed` so that the test is the same every time; with these
# simulator seeds, the degraded network answers 64 of 90 right and the reference 81.
SETTINGS = "  items: 90\n  seed: 5\n  concurrency: 16\n  max_requests: 90\n"


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., Done]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str) -> Done:
        capsys.readouterr()
        code = app.main(list(args))
        out = capsys.readouterr()
        return Done(code, out.out, out.err)
    return run


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="simulators", daemon=True)
    thread.start()

    async def start() -> dict[str, RunningNetwork]:
        return {name: await start_network(profile, seed=seed, model="sim-70b")
                for name, profile, seed in (
                    ("ref", FAST, 1), ("honest", FAST, 2),
                    ("worse", FAST.with_overrides(skill="degraded"), 3))}

    sims = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield {name: sim.base_url for name, sim in sims.items()}
    finally:
        for sim in sims.values():
            asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def write_config(path: Path, urls: dict[str, str], compare: str, settings: str = SETTINGS,
                 price: str = "") -> Path:
    nets = "\n".join(f"  - {{name: {name}, base_url: '{url}', model: sim-70b{price}}}"
                     for name, url in urls.items())
    path.write_text(f"networks:\n{nets}\nquality:\n{settings}  compare:\n{compare}")
    return path


def test_quality_flags_the_worse_network_and_the_report_shows_it(
        urls: dict[str, str], tmp_path: Path, cli: Cli,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "c.yaml", urls, "    - {network: honest, reference: ref}\n"
                                                     "    - {network: worse, reference: ref}\n")
    db = tmp_path / "runs.db"
    out = cli("quality", "-c", str(config), "--db", str(db), "--fail-on-worse")
    assert out.returncode == 1, out.stderr  # a network is worse
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[1:]
             if line.strip() and not line.startswith(" ")}
    assert "worse than reference" in lines["worse"] and "90/90" in lines["worse"]
    assert "not worse" in lines["honest"]
    assert "by family: arithmetic" in out.stdout

    def report(*args: str) -> str:
        assert app.main(["report", "--db", str(db), *args]) == 0
        return capsys.readouterr().out

    section = report().split("Output quality", 1)[1]
    assert section.index("worse ") < section.index("honest")  # worst first
    assert "McNemar's exact one-sided p below 0.05" in section
    data = json.loads(report("--format", "json"))
    schema = json.loads((Path(__file__).parent.parent / "docs/report.schema.json").read_text())
    jsonschema.validate(data, schema)  # the section is part of the documented schema
    audits = {a["network"]: a for a in data["quality"]}
    worse = audits["worse"]
    assert worse["verdict"] == "worse than reference" and worse["p_value"] < 0.05
    assert worse["difference_ci"][1] < 0 < audits["honest"]["difference_ci"][1]
    assert worse["accuracy"] < worse["reference_accuracy"]
    assert worse["seed"] == 5 and worse["suite"] == "quality-v1" and worse["pairs"] == 90
    assert set(worse["by_family"]) == {"arithmetic", "counting", "dates", "extraction",
                                       "logic", "python", "retrieval", "sorting", "units"}
    markdown = report("--format", "markdown")
    assert "## Output quality" in markdown
    assert "| worse | sim-70b | ref | worse than reference |" in markdown
    assert "<h2>Output quality</h2>" in report("--format", "html")

    # every item is stored with its seed, the reply, what was extracted and its grade, and
    # regenerates from its seed to the same grade
    conn = sqlite3.connect(db)
    rows = conn.execute("select side, network, family, difficulty, seed, raw, extracted, grade "
                        "from quality_answers").fetchall()
    conn.close()
    assert {(side, net) for side, net, *_ in rows} == {("network", "honest"),
                                                       ("network", "worse"),
                                                       ("reference", "ref")}
    assert len(rows) == 3 * 90  # the shared reference's answers are stored once an audit
    for _, _, family, difficulty, seed, raw, extracted, graded in rows[:40]:
        again = grade(make_item(family, difficulty, seed), raw)
        assert (again.grade.value, again.extracted) == (graded, extracted)


def test_a_saved_answer_file_stands_in_for_a_network(urls: dict[str, str], tmp_path: Path,
                                                     cli: Cli) -> None:
    config = write_config(tmp_path / "c.yaml", urls, "    - {network: honest, reference: ref}\n")
    saved = tmp_path / "ref-answers.json"
    out = cli("quality", "-c", str(config), "--save", "ref", "-o", str(saved))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"wrote {saved}: 90 answers of sim-70b from ref (quality-v1")
    stored = json.loads(saved.read_text())
    assert stored["suite"] == "quality-v1" and len(stored["answers"]) == 90

    against_file = write_config(tmp_path / "f.yaml", urls, (
        "    - {network: honest, reference_file: ref-answers.json}\n"
        "    - {network: worse, reference_file: ref-answers.json}\n"))
    out = cli("quality", "-c", str(against_file), "--json")
    assert out.returncode == 0, out.stderr  # no --fail-on-worse: a report, not a gate
    audits = {a["network"]: a for a in json.loads(out.stdout)}
    assert audits["worse"]["reference"] == "ref-answers.json"
    assert audits["worse"]["seed"] == stored["seed"]  # the file's items, asked again
    assert audits["worse"]["accuracy"] < audits["honest"]["accuracy"]

    stored["max_tokens"] = 64
    saved.write_text(json.dumps(stored))
    out = cli("check", "-c", str(against_file))
    assert out.returncode == 2
    assert "answered at max_tokens 64, not 512" in out.stderr


def test_check_refuses_an_audit_its_caps_could_not_honour(urls: dict[str, str], tmp_path: Path,
                                                        cli: Cli) -> None:
    price = ", price_per_mtok: {input: 3, output: 15}"
    config = write_config(tmp_path / "ok.yaml", urls, "    - {network: worse, reference: ref}\n",
                          settings="  items: 90\n  max_spend_usd: 2\n", price=price)
    out = cli("check", "-c", str(config))
    assert out.returncode == 0, out.stderr
    assert ("quality: 1 comparisons every 6h (90 items of quality-v1: 9 families, "
            "difficulties 1/2/3; temperature 0, max_tokens 512)") in out.stdout
    config = write_config(tmp_path / "c.yaml", urls, "    - {network: worse, reference: ref}\n",
                          settings="  items: 90\n  max_spend_usd: 0.1\n", price=price)
    out = cli("check", "-c", str(config))
    assert out.returncode == 2
    assert "quality.max_spend_usd: an audit of 90 items from ref can cost up to $" in out.stderr
    assert "raise max_spend_usd or ask fewer items" in out.stderr
    config = write_config(tmp_path / "d.yaml", urls, "    - {network: worse, reference: ref}\n",
                          settings="  items: 90\n  max_requests: 50\n")
    out = cli("check", "-c", str(config))
    assert out.returncode == 2
    assert "an audit asks 90 items of each network but max_requests is 50" in out.stderr


def test_quality_without_a_section_is_one_clear_line(tmp_path: Path,
                                                     cli: Cli) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("networks:\n  - {name: a, base_url: 'http://127.0.0.1:9/v1', model: m}\n")
    out = cli("quality", "-c", str(config))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"depin-monitor: error: {config}: no `quality:` section; "
                                  "add one with `compare:` entries (docs/quality.md)")
