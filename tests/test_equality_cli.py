"""`depin-monitor equality` and the report's section as a user runs them: real processes, real
reference networks on 127.0.0.1 (one honest, one serving another model)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from monitor import cli as app
from tests.test_probe_cli import cli, simulate

FAST = ("--profile", "datacenter", "--set", "p_http_5xx=0", "--set", "ttft_s=0.001",
        "--set", "tokens_per_s=50000")


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    ref = simulate(*FAST, "--seed", "1")
    honest = simulate(*FAST, "--seed", "2")
    cheat = simulate(*FAST, "--seed", "3", "--set", "serves=substituted")
    try:
        yield {"ref": next(ref), "honest": next(honest), "cheat": next(cheat)}
    finally:
        for gen in (ref, honest, cheat):
            gen.close()


def write_config(path: Path, urls: dict[str, str], compare: str) -> Path:
    nets = "\n".join(f"  - {{name: {name}, base_url: '{url}', model: sim-70b}}"
                     for name, url in urls.items())
    path.write_text(f"networks:\n{nets}\nequality:\n  prompts: 10\n  samples_per_prompt: 6\n"
                    f"  concurrency: 16\n  max_requests: 60\n  compare:\n{compare}")
    return path


def test_equality_flags_the_substitution_and_the_report_shows_it(
        urls: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "c.yaml", urls, "    - {network: honest, reference: ref}\n"
                                                     "    - {network: cheat, reference: ref}\n")
    db = tmp_path / "runs.db"
    out = cli("equality", "-c", str(config), "--db", str(db), "--fail-on-differ")
    assert out.returncode == 1, out.stderr  # a network differs
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[1:] if line.strip()}
    assert "differs" in lines["cheat"] and "60/60" in lines["cheat"]
    assert "same as reference" in lines["honest"]
    assert out.stdout.splitlines()[0].split()[:4] == ["network", "model", "reference", "verdict"]

    def report(*args: str) -> str:
        assert app.main(["report", "--db", str(db), *args]) == 0
        return capsys.readouterr().out

    section = report().split("Model equality", 1)[1]
    assert section.index("cheat") < section.index("honest")  # worst first
    assert "a flag to investigate, not proof" in section
    data = json.loads(report("--format", "json"))
    schema = json.loads((Path(__file__).parent.parent / "docs/report.schema.json").read_text())
    jsonschema.validate(data, schema)  # the section is part of the documented schema
    verdicts = {v["network"]: v for v in data["model_equality"]}
    assert verdicts["cheat"]["verdict"] == "differs" and verdicts["cheat"]["p_value"] < 0.01
    assert verdicts["honest"]["verdict"] == "same as reference"
    assert verdicts["cheat"]["prompt_set"] == "continue-v1"
    markdown = report("--format", "markdown")
    assert "## Model equality" in markdown and "| cheat | sim-70b | ref | differs |" in markdown
    assert "<h2>Model equality</h2>" in report("--format", "html")


def test_a_saved_reference_sample_set_stands_in_for_a_network(
        urls: dict[str, str], tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", urls, "    - {network: honest, reference: ref}\n")
    saved = tmp_path / "ref-samples.json"
    out = cli("equality", "-c", str(config), "--save", "ref", "-o", str(saved))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"wrote {saved}: 60 completions of sim-70b from ref")
    stored = json.loads(saved.read_text())
    assert stored["prompt_set"] == "continue-v1" and len(stored["samples"]) == 60

    against_file = write_config(tmp_path / "f.yaml", urls, (
        "    - {network: honest, reference_file: ref-samples.json}\n"
        "    - {network: cheat, reference_file: ref-samples.json}\n"))
    out = cli("equality", "-c", str(against_file), "--json")
    assert out.returncode == 0, out.stderr  # no --fail-on-differ: a report, not a gate
    verdicts = {v["network"]: v for v in json.loads(out.stdout)}
    assert verdicts["cheat"]["verdict"] == "differs"
    assert verdicts["honest"]["verdict"] == "same as reference"
    assert verdicts["cheat"]["reference"] == "ref-samples.json"

    stored["temperature"] = 0.7
    saved.write_text(json.dumps(stored))
    out = cli("check", "-c", str(against_file))
    assert out.returncode == 2
    assert "sampled at temperature 0.7 and max_tokens 50, not 1 and 50" in out.stderr


def test_equality_without_a_section_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("networks:\n  - {name: a, base_url: 'http://127.0.0.1:9/v1', model: m}\n")
    out = cli("equality", "-c", str(config))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"depin-monitor: error: {config}: no `equality:` section; "
                                  "add one with `compare:` entries (docs/equality.md)")
