"""Contract runs on /metrics (docs/metrics.md, "API contract").

Labels: `network` and `model` (configured values: bounded by the config's `contract:` section),
`grade` (the six error grades), `param` (the eight matrix parameters), `cell` (five values) and
`finish_reason` (stop, length, tool_calls, content_filter, other, none: whatever else a network
writes is `other`, never a free-text label).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.core.contract import ERROR_GRADES, Cell, ContractRun

LABELS = ("network", "model")
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")


def finish_label(reason: str | None) -> str:
    if reason is None:
        return "none"
    return reason if reason in FINISH_REASONS else "other"


class ContractMetrics:
    """A contract sink (monitor.runtime.contract.ContractSink) into the monitor's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "depin_contract_tool_calls",
            "Tool-call suite answers graded (failed requests are not graded).", LABELS,
            registry=registry)
        self.errors = Counter(
            "depin_contract_tool_call_errors",
            "Tool-call suite answers graded other than ok, by grade: error rate = "
            "errors / calls.", (*LABELS, "grade"), registry=registry)
        self.finish = Counter(
            "depin_contract_finish_reasons",
            "Tool-call suite answers by finish_reason (none: the answer had none).",
            (*LABELS, "finish_reason"), registry=registry)
        self.honoured = Gauge(
            "depin_contract_param_honoured",
            "1: the latest run found the parameter honoured; 0: ignored or rejected; NaN: "
            "not applicable to the model (a request that failed leaves the value as it was).",
            (*LABELS, "param"), registry=registry)
        self.cell = Gauge(
            "depin_contract_param_cell",
            "1 for the parameter's cell in the latest run, 0 for the other cells.",
            (*LABELS, "param", "cell"), registry=registry)
        self.last_run = Gauge(
            "depin_contract_last_run_timestamp_seconds",
            "When the latest contract run of the network and model started (0: none yet).",
            LABELS, registry=registry)

    def init(self, targets: Iterable[tuple[str, str]]) -> None:
        """Known series at start, for (network, model) pairs: no run yet."""
        for network, model in targets:
            self.calls.labels(network, model)
            for grade in ERROR_GRADES:
                self.errors.labels(network, model, grade.value)
            self.last_run.labels(network, model).set(0)

    def on_contract(self, run: ContractRun) -> None:
        labels = (run.network, run.model)
        for g in run.grades:
            self.finish.labels(*labels, finish_label(g.finish_reason)).inc()
            if g.grade is None:
                continue
            self.calls.labels(*labels).inc()
            if g.grade.value != "ok":
                self.errors.labels(*labels, g.grade.value).inc()
        for c in run.cells:
            if c.cell is Cell.UNMEASURED:
                continue
            value = {Cell.HONOURED: 1.0, Cell.NOT_APPLICABLE: math.nan}.get(c.cell, 0.0)
            self.honoured.labels(*labels, c.param.value).set(value)
            for cell in Cell:
                self.cell.labels(*labels, c.param.value, cell.value).set(
                    1.0 if cell is c.cell else 0.0)
        self.last_run.labels(*labels).set(run.started_at)

