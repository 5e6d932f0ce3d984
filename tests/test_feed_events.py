"""What the status feed announces (monitor/analysis/feed.py): an event when a verdict changes,
none while it holds, with keys that name the same event on every read."""

from __future__ import annotations

import dataclasses
from collections import Counter

from monitor.analysis.feed import (
    DayVerdict,
    capacity_events,
    contract_events,
    equality_events,
    fingerprint_events,
    incident_events,
    quality_events,
    sla_events,
)
from monitor.analysis.incidents import Incident
from monitor.core.capacity import Stop
from monitor.core.contract import Cell, ContractRun, Param
from monitor.core.contract import Grade as ToolCallGrade
from monitor.core.equality import Verdict
from monitor.core.fingerprint import FingerprintResult, Method
from monitor.core.fingerprint import Verdict as Fingerprinted
from monitor.core.quality import Verdict as Audited
from monitor.core.slaprofile import MaintenanceWindow
from tests.test_capacity_analysis import ladder
from tests.web.conftest import FLAKY_DIFFERS, FLAKY_WORSE, flaky_contract

DAY = 86400.0
DEC = 1_796_083_200.0  # 2026-12-01T00:00:00Z
NOV = 1_793_491_200.0  # 2026-11-01T00:00:00Z


def day(n: int, missed: tuple[str, ...] = (), network: str = "a", runs: bool = True
        ) -> DayVerdict:
    end = DEC + n * DAY
    return DayVerdict(network, end, NOV if end <= DEC else DEC, "standard", missed,
                      (not missed) if runs else None, 0.999 if not missed else 0.9)


def test_the_sla_is_announced_when_its_verdict_changes_not_while_it_holds() -> None:
    seq = [day(-1), day(0), day(1, ("availability",)), day(2, ("availability",)),
           day(3, runs=False), day(4, ("availability", "ttft_p95")), day(5)]
    found = sla_events(seq)
    assert [e.title for e in found] == [
        "SLA missed: availability: a (standard, 2026-12)",
        "SLA missed: availability, ttft_p95: a (standard, 2026-12)",
        "SLA met: a (standard, 2026-12)"]
    assert [e.at for e in found] == [DEC + DAY, DEC + 4 * DAY, DEC + 5 * DAY]
    assert "(was missed: availability)" in found[1].summary
    # the same days read again (in any order) give the same keys
    assert [e.key for e in sla_events(reversed(seq))] == [e.key for e in found]
    # networks are judged apart
    other = [dataclasses.replace(v, network="b") for v in seq[:2]]
    assert sla_events(seq + other) == found


def test_model_equality_announces_a_comparisons_first_verdict_and_each_change() -> None:
    tests = [dataclasses.replace(FLAKY_DIFFERS, started_at=t, verdict=v) for t, v in (
        (100.0, Verdict.SAME), (200.0, Verdict.SAME), (300.0, Verdict.DIFFERS),
        (400.0, Verdict.DIFFERS), (500.0, Verdict.SAME))]
    other = dataclasses.replace(FLAKY_DIFFERS, reference="datacenter", started_at=250.0,
                                verdict=Verdict.SAME)
    found = equality_events([*tests, other])
    assert [e.at for e in found] == [100.0, 250.0, 300.0, 500.0]
    assert found[2].title == "Model equality: flaky small differs baseline"
    assert "(was same as reference, p = 0.001" in found[2].summary
    assert "was not tested" in found[0].summary


def test_capacity_announces_a_tier_whose_sustained_concurrency_moves() -> None:
    ladders = [ladder(0.0, 16), ladder(100.0, 16), ladder(200.0, 4),
               ladder(300.0, None, stopped=Stop.BUDGET), ladder(400.0, None)]
    found = capacity_events(ladders)
    assert [e.title for e in found] == ["Capacity down: n small sustains 1 streams",
                                        "Capacity up: n small sustains 64 streams"]
    assert [e.key for e in found] == ["capacity/200.0", "capacity/400.0"]


def test_incidents_open_and_resolve_and_say_when_they_began_in_maintenance() -> None:
    ended = Incident("a", "small", "eu", 1000.0, 1600.0, 1500.0, 4,
                     dict(Counter(timeout=3, disconnect=1)))
    ongoing = dataclasses.replace(ended, started_at=5000.0, ended_at=None)
    window = MaintenanceWindow(4000.0, 6000.0, ("a",), "upgrade")
    found = incident_events([ended, ongoing], [window])
    assert [(e.title, e.at, e.maintenance) for e in found] == [
        ("Incident: a small from eu failing", 1000.0, False),
        ("Resolved: a small from eu", 1600.0, False),
        ("Incident: a small from eu failing (during planned maintenance)", 5000.0, True)]
    assert "after 10 min: 4 failed runs (timeout 3, disconnect 1)" in found[1].summary
    assert len({e.key for e in found}) == 3


def test_fingerprint_announces_each_change_of_the_model_and_each_new_verdict() -> None:
    base = FingerprintResult(
        network="a", tier="small", model="m", started_at=0.0, verdict=Fingerprinted.SAME,
        set_version=1, method=Method.TOKENS, distance=0.01, p_value=0.5,
        reference_distance=None, reference_p_value=None, samples=200, requests=200, failed=0,
        output_tokens=400, spend_usd=None, alpha=0.01, baseline_runs=3)
    runs = [dataclasses.replace(base, started_at=t, verdict=v) for t, v in (
        (1.0, Fingerprinted.DISCOVERED), (2.0, Fingerprinted.SAME), (3.0, Fingerprinted.SAME),
        (4.0, Fingerprinted.CHANGED), (5.0, Fingerprinted.CHANGED), (6.0, Fingerprinted.SAME))]
    found = fingerprint_events(runs)
    assert [(e.at, e.title) for e in found] == [
        (2.0, "Fingerprint: a m same"),
        (4.0, "Fingerprint: a m model behind the name changed"),
        (5.0, "Fingerprint: a m model behind the name changed"),
        (6.0, "Fingerprint: a m same")]
    assert "(was changed; TV distance 0.010, 200 samples)" in found[3].summary


def test_quality_announces_a_comparisons_first_audit_and_each_new_verdict() -> None:
    audits = [dataclasses.replace(FLAKY_WORSE, started_at=t, verdict=v) for t, v in (
        (100.0, Audited.NOT_WORSE), (200.0, Audited.NOT_WORSE), (300.0, Audited.WORSE),
        (400.0, Audited.WORSE), (500.0, Audited.NOT_ENOUGH))]
    found = quality_events(reversed(audits))
    assert [e.at for e in found] == [100.0, 300.0, 500.0]
    model = FLAKY_WORSE.model
    assert found[1].title == f"Quality: flaky {model} worse than reference (baseline)"
    w = FLAKY_WORSE
    acc, low, high, ref = (100 * (x or 0.0) for x in (
        w.accuracy, w.accuracy_low, w.accuracy_high, w.reference_accuracy))
    assert 0 < low < acc < high < ref
    assert (f"(was not worse); accuracy {acc:.1f} % [{low:.1f}-{high:.1f} %] vs {ref:.1f} %"
            in found[1].summary)
    assert f"on {w.pairs} of {w.items} {w.suite} items" in found[1].summary
    assert "was not audited" in found[0].summary
    assert len({e.key for e in found}) == 3 and all(e.kind == "quality" for e in found)


def run(at: float, network: str = "flaky", reference: str | None = None,
        cells: dict[Param, Cell] | None = None, wrong: bool = True) -> ContractRun:
    """flaky_contract at `at` with its own run id, `cells` overriding the matrix, and every
    tool-call answer right unless `wrong`."""
    r = flaky_contract(at)
    mine = {"run_id": f"{network}@{at!r}", "network": network}
    grades = tuple(dataclasses.replace(g, **mine, grade=g.grade if wrong else ToolCallGrade.OK)
                   for g in r.grades)
    matrix = tuple(dataclasses.replace(c, **mine, cell=(cells or {}).get(c.param, c.cell))
                   for c in r.cells)
    return dataclasses.replace(r, **mine, reference=reference, grades=grades, cells=matrix)


def test_contract_announces_a_parameter_no_longer_honoured_and_honoured_again() -> None:
    stop = [(0.0, Cell.HONOURED), (DAY, Cell.IGNORED), (2 * DAY, Cell.IGNORED),
            (3 * DAY, Cell.UNMEASURED), (4 * DAY, Cell.HONOURED), (12 * DAY, Cell.REJECTED)]
    found = contract_events([run(t, cells={Param.STOP: c}) for t, c in stop])
    model = flaky_contract(0.0).model
    assert [(e.at, e.title) for e in found] == [
        (DAY, f"Contract: flaky {model} stop no longer honoured (ignored)"),
        (4 * DAY, f"Contract: flaky {model} stop honoured again")]
    # a week without a measurement forgets the cell: the rejection on day 12 is not a change
    assert "stop honoured (was ignored at 1970-01-03 00:00 UTC)" in found[1].summary
    assert len({e.key for e in found}) == 2


def test_contract_announces_when_the_weeks_tool_calls_compare_worse_and_when_not() -> None:
    # flaky: 2 of 8 answers wrong per run, the reference none: McNemar's p falls below 0.05
    # at the third run (6 discordant pairs), and rises again once the first leaves the week
    times = [0.0, 3600.0, 7200.0, 7 * DAY + 1.0]
    runs = [run(t, reference="good") for t in times[:3]]
    runs.append(run(times[3], reference="good", wrong=False))
    refs = [run(t, network="good", wrong=False) for t in times]
    found = [e for e in contract_events(runs + refs) if "tool calls" in e.title]
    model = flaky_contract(0.0).model
    assert [(e.at, e.title) for e in found] == [
        (7200.0, f"Contract: flaky {model} tool calls worse than reference (good)"),
        (times[3], f"Contract: flaky {model} tool calls no difference shown (good)")]
    assert "24 pairs, 6 worse, 0 better, p = 0.031, alpha 0.05" in found[0].summary
    # a stricter level sees no difference at all
    assert not [e for e in contract_events(runs + refs, alpha=0.01) if "tool calls" in e.title]
