"""Keep the benchmarks from rotting: each runs with its smallest setting (`--quick`) and prints
its figures. Their values are never asserted (no timed assertions in tests); all of them run at
once, in parallel, in about half a minute on a quiet 2-core machine (most of it starting
`depin-monitor run` and simulator processes, as the benchmarks do)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
# All of them, started at once, end within this (about half a minute on a quiet machine; far
# longer beside the rest of the suite on 2 cores): a hang fails, a slow machine does not.
ALL_DONE_S = 600.0

# script -> strings its output must contain (table headers of the figures it reports)
EXPECTED = {
    "accuracy.py": ["TTFT err p50 ms", "decode err p99 %", "sim CPU", "lagged runs"],
    "capacity.py": ["parsed tok/s", "lag p99 ms", "CPU us/token", "in flight"],
    "peer.py": ["ratio openai SDK/ours", "blackbox", "CPU us/probe", "TTFT err from sent"],
    "storage.py": ["results/s", "report-cli", "sla-month"],
    "exporter.py": ["scrape p50 ms", "VmHWM peak MB", "openmetrics", "after the cached renderer",
                    "render CPU p50 ms"],
    "samples.py": ["per combination, all included", "per (network, tier)", "openmetrics"],
    "httpcheck.py": ["us/check back to back", "bare aiohttp GET", "MetricsSink + Store"],
    "growth.py": ["CPU (one core)", "report-cli"],
    "locations.py": ["series per tuple", "per-location recording rules", "report --quorum s"],
    "ranking.py": ["false separation", "power", "rank s"],
    "equality.py": ["false positives (identical model)", "power: substituted", "test time"],
    "quality_power.py": ["items for 80 % power", "false positives (identical skill)",
                         "worst case per audit"],
    "fingerprint_power.py": ["false alarms, alpha 0.001", "requests per detection",
                             "fingerprint, logprobs", "MMD (model equality)"],
    "soak.py": ["KB/run after warm-up", "rows stored", "open fds"],
    "status_api.py": ["incidents?since=7d", "loop lag p50 ms"],
    "demo_table.py": ["refresh ms CPU mean", "CPU share of a core"],
    "parse.py": ["reader us/token", "orjson", "stdlib json"],
    "false_pages.py": ["99.9% before", "99.9% after", "time to page"],
}


def _missing(script: str) -> str | None:
    if script == "peer.py":
        if importlib.util.find_spec("openai") is None:
            return "the openai SDK is not installed (pip install openai)"
        if shutil.which("prometheus-blackbox-exporter") is None:
            return "prometheus-blackbox-exporter is not installed"
    return None


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    procs = {}
    for script in EXPECTED:
        if _missing(script):
            continue
        cmd = [sys.executable, str(BENCH / script), "--quick"]
        if script in ("storage.py", "growth.py", "status_api.py", "locations.py"):
            cmd += ["--dir", str(tmp_path_factory.mktemp(script.removesuffix(".py")))]
        procs[script] = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = {}
    # one deadline for all: they share the machine with each other and with other tests
    deadline = time.monotonic() + ALL_DONE_S
    for script, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        out[script] = (proc.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_benchmark_runs_and_prints_its_figures(script: str,
                                               outputs: dict[str, tuple[int, str, str]]) -> None:
    reason = _missing(script)
    if reason:
        pytest.skip(reason)
    code, stdout, stderr = outputs[script]
    assert code == 0, stderr[-2000:]
    assert "nproc=" in stdout and "python=" in stdout  # the machine line
    for text in EXPECTED[script]:
        assert text in stdout, f"{script} did not print {text!r}:\n{stdout[-2000:]}"
    assert "|---" in stdout  # a table of figures


def test_storage_benchmark_can_leave_out_the_python_side_report(tmp_path: Path) -> None:
    """`--python-max 0` never runs the slow Python-side report: the other figures are still
    measured and that column says n/a (it once failed with a KeyError instead)."""
    out = subprocess.run([sys.executable, str(BENCH / "storage.py"), "--quick", "--python-max",
                          "0", "--dir", str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    header, _rule, row = [line.split("|") for line in out.stdout.splitlines()
                          if line.startswith("|")]
    cells = {name.strip(): cell.strip() for name, cell in zip(header, row, strict=True)}
    assert cells["rows"] == "20,000" and cells["raw-rows"] == "n/a"
    assert cells["sla-month"].endswith(("ms", " s")) and cells["report-cli"].endswith(("ms", " s"))
