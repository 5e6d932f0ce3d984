"""Quality audits in the buyer's report beyond their own section: accuracy as a ranking
criterion (two networks equal on the canaries, one answering worse, are no longer tied) and a
tier ladder that can require "not worse"."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from monitor.analysis.quality import judge
from monitor.analysis.report import report_from_stores
from monitor.core.comparison import Comparison as QualityComparison
from monitor.core.quality import Answer, Asked, QualityResult, QualitySettings
from monitor.core.quality_grading import Grade
from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.storage.quality import AuditWriter
from monitor.storage.store import Store
from tests.test_report_buyer import T0, runs_like

SETTINGS = QualitySettings(items=120)


def audit(network: str, correct: int, reference_correct: int) -> QualityResult:
    specs = SETTINGS.specs(3)

    def side(right: int) -> tuple[Answer, ...]:
        return tuple(Answer(i, f, d, s, "ok", "Answer: 1", "1",
                            Grade.CORRECT if i < right else Grade.WRONG)
                     for i, (f, d, s) in enumerate(specs))

    return judge(QualityComparison(network, "small", "m", "baseline", "small"),
                 Asked(side(correct), requests=len(specs)), side(reference_correct), SETTINGS,
                 audit_id=f"{network}-1", seed=3, started_at=T0 + 3600)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Three networks with the same canary runs (one profile, one seed): only their answers
    differ; `sharp` answers 108 of 120 right, `dull` 72, their reference `baseline` 110."""
    path = str(tmp_path_factory.mktemp("quality") / "runs.db")
    s = Store(path)
    try:
        s.add_many([r for name in ("sharp", "dull", "baseline")
                    for r in runs_like("depin-steady", name, 300, seed=1)])
    finally:
        s.close()
    writer = AuditWriter(path)
    writer.on_audit(audit("sharp", 108, 110))
    writer.on_audit(audit("dull", 72, 110))
    return path


def ranks(path: str) -> dict[str, tuple[int | None, tuple[tuple[str, str], ...]]]:
    report = report_from_stores([path])
    return {g.key[0]: (g.rank, g.beaten_by) for g in report.groups}


def test_accuracy_separates_networks_the_canaries_cannot(store: str, tmp_path: Path) -> None:
    # the reference network answered the same items: it is ranked on them too
    assert ranks(store) == {"sharp": (1, ()), "baseline": (1, ()),
                            "dull": (3, (("baseline", "accuracy"), ("sharp", "accuracy")))}
    bare = tmp_path / "no-audits.db"  # the same runs without the audits: a tie
    s = Store(bare)
    try:
        s.add_many(runs_like("depin-steady", "sharp", 300, seed=1)
                   + runs_like("depin-steady", "dull", 300, seed=1))
    finally:
        s.close()
    assert ranks(str(bare)) == {"sharp": (1, ()), "dull": (1, ())}


def test_the_tier_ladder_can_require_not_worse(store: str) -> None:
    lenient = BUILTIN_PROFILES["standard"]
    strict = dataclasses.replace(lenient, name="strict", quality_not_worse=True)
    for profile in (lenient, strict):
        report = report_from_stores([store], profiles={"sharp": profile, "dull": profile},
                                    default_profile=profile)
        cells = {c.network: c for c in report.tiers}
        assert cells["baseline"].quality is None  # the reference is not audited itself
        assert cells["dull"].quality == "worse than reference (baseline)"
        assert cells["sharp"].quality == "not worse (baseline)"
        if profile is lenient:  # judged on the canaries alone: the same runs, the same state
            assert cells["dull"].state == cells["sharp"].state
            assert "answers worse" not in cells["dull"].verdict
        else:
            assert cells["dull"].state == "missed"
            assert "answers worse" in cells["dull"].verdict
            assert cells["sharp"].state != "missed" or "worse" not in cells["sharp"].verdict
