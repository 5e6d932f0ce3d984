"""`depin-monitor fingerprint`, `check` and the report's section as a user runs them: a real
reference network on 127.0.0.1 (its own process), the commands in this process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from monitor import cli as app
from tests.test_probe_cli import simulate


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    yield from simulate("--profile", "datacenter", "--set", "p_http_5xx=0",
                        "--set", "ttft_s=0.0005", "--set", "tokens_per_s=50000")


def write_config(path: Path, url: str, extra: str = "") -> Path:
    path.write_text(
        f"networks:\n  - {{name: sim, base_url: '{url}', model: sim-70b}}\n"
        "fingerprint:\n  candidates_tried: 150\n  border_inputs: 10\n  concurrency: 16\n"
        f"  networks: [{{network: sim}}]\n{extra}")
    return path


def test_discover_run_and_report(url: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "c.yaml", url)
    db = tmp_path / "runs.db"
    assert app.main(["fingerprint", "-c", str(config), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.split()[:3] == ["network", "model", "verdict"]
    (line,) = out.splitlines()[1:]
    assert line.split()[:3] == ["sim", "sim-70b", "discovered"]
    assert line.split()[-3:] == ["logprobs", "v1", "210"]  # 150 candidates + 10 x 6
    assert app.main(["fingerprint", "-c", str(config), "--db", str(db), "--json",
                     "--fail-on-change"]) == 0
    (verdict,) = json.loads(capsys.readouterr().out)
    assert verdict["verdict"] == "same" and verdict["set_version"] == 1
    assert verdict["requests"] == 20 and verdict["method"] == "logprobs"

    assert app.main(["report", "--db", str(db), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    schema = json.loads((Path(__file__).parent.parent / "docs/report.schema.json").read_text())
    jsonschema.validate(data, schema)  # the section is part of the documented schema
    (row,) = data["fingerprint"]
    assert (row["network"], row["verdict"], row["runs"]) == ("sim", "same", 2)
    assert app.main(["report", "--db", str(db)]) == 0
    assert "Fingerprint (did the model behind each name change?" in capsys.readouterr().out
    assert app.main(["report", "--db", str(db), "--format", "markdown"]) == 0
    assert "| sim | sim-70b | same |" in capsys.readouterr().out


def test_check_shows_the_caps_and_refuses_what_a_run_could_not_honour(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "c.yaml", url)
    assert app.main(["check", "-c", str(config)]) == 0
    assert "fingerprint: 1 network models every 1d" in capsys.readouterr().out
    dear = write_config(tmp_path / "d.yaml", url).read_text().replace(
        "model: sim-70b}", "model: sim-70b, price_per_mtok: {input: 50, output: 50}}")
    (tmp_path / "d.yaml").write_text(dear)
    assert app.main(["check", "-c", str(tmp_path / "d.yaml")]) == 2
    err = capsys.readouterr().err
    assert "fingerprint.discovery_max_spend_usd: a discovery of 750 requests to sim" in err
    assert app.main(["fingerprint", "-c", str(config), "--network", "nope"]) == 2
    assert "--network nope: not fingerprinted" in capsys.readouterr().err
