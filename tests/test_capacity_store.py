"""Ladders in the store: written with their steps and runs and read back, older store files
read without them, and capacity runs invisible to every canary read (SLA, report, rollups)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path

import jsonschema

from monitor.analysis.capacity import summarise_step
from monitor.analysis.report import report_from_stores
from monitor.analysis.report_html import render_html
from monitor.analysis.report_json import render_json
from monitor.analysis.report_text import render_markdown, render_table
from monitor.core.capacity import Ladder, StepCriteria, Stop
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import ENTERPRISE, CapacityObjective
from monitor.exporter.sla_collector import month_reports
from monitor.storage.capacity import read_ladder_runs, read_ladders, save_ladder
from monitor.storage.store import Store

CRITERIA = StepCriteria(ttft_p95_s=0.5, decode_tps_min=20.0, availability=0.99)


def run(t: float, outcome: Outcome = Outcome.OK, ttft: float = 0.1, network: str = "net",
        job: str = "chat-long-v1") -> ProbeResult:
    return ProbeResult(network=network, target="small", job=job, model="m", outcome=outcome,
                       started_at=t, ttft_s=ttft, duration_s=1.0, output_tokens=20,
                       tokens_per_s=40.0, token_source="usage")


def ladder(t: float, network: str = "net", slow_at: int = 8, failing: bool = False) -> Ladder:
    """A ladder of 1, 4, 8 streams whose `slow_at` step breaks TTFT (or fails, `failing`)."""
    steps = []
    for streams in (1, 4, 8):
        broke = streams >= slow_at
        outcome = Outcome.HTTP_ERROR if broke and failing else Outcome.OK
        runs = [run(t + streams, outcome, ttft=2.0 if broke else 0.1, network=network)
                for _ in range(streams)]
        steps.append(summarise_step(streams, runs, started_at=t + streams, elapsed_s=2.0,
                                    criteria=CRITERIA))
        if broke:
            break
    return Ladder(id=f"l{t:.0f}{network}", network=network, target="small", job="chat-long-v1",
                  job_version=2, model="m", location="lab", started_at=t, elapsed_s=10.0,
                  criteria=CRITERIA, steps=tuple(steps),
                  stopped=Stop.KNEE if steps[-1].held is False else Stop.TOP, detail="",
                  requests=sum(s.runs for s in steps), spend_usd=0.01)


def test_a_ladder_round_trips_with_its_steps_and_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.close()
    t = time.time()
    saved = ladder(t)
    save_ladder(tmp_path / "r.db", saved)
    (back,) = read_ladders([tmp_path / "r.db"])
    assert back.sustained == saved.sustained == 4 and back.knee == 8
    assert back.criteria == CRITERIA and back.stopped is Stop.KNEE
    assert [s.streams for s in back.steps] == [1, 4, 8]
    assert back.steps[-1].broke == saved.steps[-1].broke
    assert back.steps[-1].held is False and back.steps[0].held is True
    assert back.steps[1].ttft_p95_s == saved.steps[1].ttft_p95_s
    runs = read_ladder_runs(tmp_path / "r.db", saved.id)
    assert [streams for streams, _ in runs] == [1] + [4] * 4 + [8] * 8
    assert runs[0][1] == saved.steps[0].results[0]
    assert read_ladders([tmp_path / "r.db"], since=t + 1) == []
    assert read_ladders([tmp_path / "r.db"], networks=["other"]) == []


def test_a_store_from_before_ladders_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("create table probe_results (network text)")
    conn.close()
    assert read_ladders([path]) == []


def test_capacity_runs_never_reach_the_canary_sla_or_report(tmp_path: Path) -> None:
    """A ladder's broken step is full of slow and failed runs on purpose: the canaries' SLA,
    the buyer's comparison and the rollups must not see one of them."""
    path = tmp_path / "r.db"
    store = Store(path)
    now = time.time()
    canaries = [run(now - 60 + i, job="chat-short-v1") for i in range(50)]
    store.add_many(canaries)
    store.close()
    save_ladder(path, ladder(now - 30, failing=True))
    report = report_from_stores([path])
    (group,) = report.groups
    assert group.runs == 50 and group.availability == 1.0
    (month,) = month_reports([path], {"net": ENTERPRISE}, at=now)
    assert month.runs == 50 and month.availability == 1.0
    conn = sqlite3.connect(path)
    try:
        rolled = conn.execute("select sum(runs) from rollup_runs").fetchone()[0]
        capacity = conn.execute("select count(*) from capacity_runs").fetchone()[0]
    finally:
        conn.close()
    assert rolled == 50 and capacity == 13


def test_the_report_states_each_tiers_capacity_and_its_curves(tmp_path: Path) -> None:
    """The buyer's report: per network and tier the sustained concurrency and its interval
    (or that there is not enough data), the SLA capacity item, curves side by side."""
    path = tmp_path / "r.db"
    Store(path).close()
    now = time.time()
    for i in range(5):
        save_ladder(path, ladder(now - 3600 * (i + 1), network="steady", slow_at=8))
    save_ladder(path, ladder(now - 60, network="lonely", slow_at=4))
    item = CapacityObjective(streams=4, ladders=0.8)
    profiles = {"steady": dataclasses.replace(ENTERPRISE, capacity=item)}
    report = report_from_stores([path], profiles=profiles)
    lonely, steady = report.capacity  # sorted by network
    assert steady.sustained_p50 == 4 and steady.knee_range == (4, 8)
    assert steady.verdict is not None and steady.verdict.met == 5
    assert lonely.sustained_p50 is None and lonely.verdict is None
    text = render_table(report)
    assert "steady/small: sustains 4 streams (95 % CI 4-4, 5 ladders); breaks between 4 and 8 " \
           "streams. SLA capacity item (sustains 4 streams in 80% of ladders): MEETS? " \
           "(5 of 5 ladders)" in " ".join(text.split())
    assert "lonely/small: not enough data: 1 measuring ladder (at least 3 needed)" in text
    markdown = render_markdown(report)
    assert "| streams | lonely/small | steady/small |" in markdown
    assert "| 8 | - | 2000 ms |" in markdown  # TTFT p95 past the knee
    data = json.loads(render_json(report))
    assert [t["sustained_p50"] for t in data["capacity"]] == [None, 4]
    schema = json.loads((Path(__file__).parent.parent / "docs/report.schema.json").read_text())
    jsonschema.validate(data, schema)
    page = render_html(report)
    assert "lonely/small: not enough data" in page
    assert "<h3>Throughput by concurrency</h3>" in page  # the curves drawn side by side
    assert page.count("<svg") >= 2
    # a period without ladders has no capacity section
    since = now + 1
    assert report_from_stores([path], since=since).capacity == ()
