"""The cardinality budget (docs/metrics.md, "The cardinality budget"): every metric family the
monitor exports has a reader, histograms are read by their buckets, and one (network, tier,
workload) combination stays within its samples.

A family is read when a generated rule (`depin-monitor rules` for examples/networks.yaml), a
dashboard (dashboards/*.json) or the status API (monitor/web/) names it, or when the budget's
table in docs/metrics.md says why it exists. The families are every `depin_*` name written in
monitor/ and every family of the sink's registry (process metrics included), so a new metric
fails here until something reads it.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import load_config
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.exporter.metrics import MetricsSink
from monitor.exporter.rules import render, slos_from_config

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^depin_[a-z0-9_]+$")
# Today's figure was 134 samples a combination (benchmarks/samples.py); the budget is half.
SAMPLES_PER_COMBINATION = 67


@functools.cache
def families() -> dict[str, str]:
    """Every family the monitor can export -> its type ('' when only its name is known)."""
    found: dict[str, str] = {}
    for path in (ROOT / "monitor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and NAME.match(node.value):
                found.setdefault(node.value, "")
    for metric in MetricsSink().registry.collect():
        found[metric.name] = metric.type
    return found


@functools.cache
def readers() -> dict[str, str]:
    rules = render(slos_from_config(load_config(ROOT / "examples" / "networks.yaml")))
    return {
        "a rule": rules,
        "a dashboard": "".join(p.read_text() for p in sorted((ROOT / "dashboards").glob("*.json"))),
        "the status API": "".join(p.read_text() for p in sorted((ROOT / "monitor" / "web")
                                                                 .glob("*.py"))),
    }


def reads(text: str, family: str, suffixes: str = "_total|_bucket|_count|_sum") -> bool:
    return re.search(rf"(?<![A-Za-z0-9_:]){re.escape(family)}({suffixes})?(?![A-Za-z0-9_])",
                     text) is not None


def documented() -> dict[str, str]:
    """The budget table of docs/metrics.md: family -> why it exists."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    section = text.split("## The cardinality budget", 1)[1].split("\n## ", 1)[0]
    out: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`"):
            for name in re.findall(r"`([a-z_0-9]+)`", cells[0]):
                out[name] = cells[1]
    return out


def test_every_exported_family_has_a_reader() -> None:
    texts, why = readers(), documented()
    unread = [f for f in families()
              if not any(reads(t, f) for t in texts.values()) and not why.get(f)]
    assert not unread, (
        "metric families no rule, dashboard panel or status API reads, and that the budget "
        "table of docs/metrics.md does not explain: " + ", ".join(sorted(unread)))


def test_the_budget_table_names_only_families_that_exist_and_are_unread() -> None:
    known, texts = families(), readers()
    for name in documented():
        assert name in known, f"docs/metrics.md budget table: {name} is not exported"
        read_by = [r for r, t in texts.items() if reads(t, name)]
        assert not read_by, f"docs/metrics.md budget table: {name} is read by {read_by[0]}"


def test_every_histogram_is_read_by_its_buckets() -> None:
    """Buckets cost a sample each: a histogram nobody reads by `le` should be a summary."""
    texts = readers()
    histograms = [f for f, kind in families().items() if kind == "histogram"]
    assert histograms
    for family in histograms:
        assert any(reads(t, family, "_bucket") and f"{family}_bucket" in t
                   for t in texts.values()), f"{family}: no rule or panel reads its buckets"


def test_one_combination_stays_within_its_samples() -> None:
    """Every outcome and every phase once, both built-in profiles' thresholds as bounds: the
    samples that carry `workload` (per combination) stay within the budget, `_created` off as
    `run` serves them."""
    registry = CollectorRegistry(auto_describe=True)
    sink = MetricsSink(dict.fromkeys(("a", "b"), BUILTIN_PROFILES["enterprise"]),
                       extra_profiles=list(BUILTIN_PROFILES.values()), registry=registry,
                       process_metrics=False)
    sink.init_targets([("a", "small", "chat-short-v1")])
    for outcome in Outcome:
        done = outcome in (Outcome.OK, Outcome.WRONG_OUTPUT)
        sink.on_result(ProbeResult(
            network="a", target="small", job="chat-short-v1", model="m", outcome=outcome,
            started_at=1.8e9, ttfb_s=0.1, ttft_s=0.2, duration_s=1.0 if done else None,
            tokens_per_s=30.0 if done else None, output_tokens=8, max_gap_s=0.05,
            dns_s=0.01, tcp_s=0.01, tls_s=0.02))
    per = 0
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        per += sum(1 for s in family.samples
                   if "workload" in s.labels and not s.name.endswith("_created"))
    assert 0 < per <= SAMPLES_PER_COMBINATION
