"""The report as JSON: everything the other formats show, in the stable shape that
docs/report.schema.json describes (a test validates every output against it).

`schema_version` changes only when a field is renamed or removed, or its meaning changes;
new fields may appear without a new version.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from monitor.analysis import ranking, report_capacity
from monitor.analysis.report import PERCENTILES, Report

SCHEMA_VERSION = 1
# The GroupSummary fields that the JSON shows under other names or nests.
_NESTED = ("key", "ttft_percentiles_s", "decode_percentiles", "beaten_by")


def to_data(report: Report) -> dict[str, Any]:
    groups = []
    for g in report.groups:
        raw = {k: v for k, v in asdict(g).items() if k not in _NESTED}
        groups.append({
            "group": dict(zip(report.by, g.key, strict=True)),
            **raw,
            "beaten_by": [{"name": name, "criterion": criterion}
                          for name, criterion in g.beaten_by],
            "sla_met": g.sla_met,
            "percentiles": {"ttft_s": list(g.ttft_percentiles_s),
                            "decode_tps": list(g.decode_percentiles)},
        })
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": report.generated_at,
        "sources": list(report.sources),
        "since": report.since,
        "until": report.until,
        "by": list(report.by),
        "period": {"first_at": report.first_at, "last_at": report.last_at,
                   "runs": report.runs},
        "ranking": {"criteria": list(ranking.CRITERIA), "confidence": ranking.CONFIDENCE,
                    "per_criterion_confidence": ranking.PER_CRITERION,
                    "per_criterion_confidence_with_accuracy":
                        ranking.PER_CRITERION_WITH_ACCURACY,
                    "resamples": ranking.RESAMPLES},
        "percentile_levels": list(PERCENTILES),
        "groups": groups,
        "tier_ladder": [asdict(c) for c in report.tiers],
        "daily": [{**asdict(d), "availability": d.availability} for d in report.days],
        "months": [{**asdict(m), "met": m.met, "partial": m.partial} for m in report.months],
        "capacity": [report_capacity.to_data(t) for t in report.capacity],
        "notes": list(report.notes),
    }


def render_json(report: Report) -> str:
    return json.dumps(to_data(report), indent=2) + "\n"
