"""Scenarios for `promtool test rules`: the evidence a burn-rate page needs.

Writes deploy/prometheus/tests/evidence-rules.yml (the generator's per-location and alert
groups for `lownet`, one run a minute, and `testnet`, ten runs a minute, both held to 99.9 %
availability) and deploy/prometheus/tests/evidence.test.yml. Each scenario is also a list of
failures per minute, which tests/test_evidence.py hands to benchmarks/false_pages.py's
evaluator: the simulation behind docs/sla.md's table and the rules agree on every check.

    python -m tests.promtool_evidence          # regenerate both files
    promtool test rules deploy/prometheus/tests/evidence.test.yml
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from monitor.core.slaprofile import SLAProfile
from monitor.exporter.rules import LOCATION_ERROR_RATIO, NetworkSLO, generate
from tests.promtool_cases import AVAIL, INSTANCE, _annotations

ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = ROOT / "deploy" / "prometheus" / "tests"
RULES_FILE = "evidence-rules.yml"
TEST_FILES = ("evidence.test.yml",)
# The enterprise profile's availability alone: the other SLIs' rules would only slow promtool.
AVAILABILITY = SLAProfile(name="enterprise", ttft_p95_s=None, e2e_p99_s=None,
                          disconnect_rate=None, decode_tps_min=None, wrong_output_rate=None)
LOW = NetworkSLO("lownet", AVAILABILITY, 60.0)  # 60 runs an hour
BUSY = NetworkSLO("testnet", AVAILABILITY, 60.0, runs_per_interval=10)
SLOS = (LOW, BUSY)


@dataclass
class Scenario:
    name: str
    slo: NetworkSLO
    failures: list[float]  # failures in each minute 1..len (the runs: runs_per_interval a minute)
    checks: list[tuple[int, bool]] = field(default_factory=list)  # (minute, pages?)
    sloth_at: int | None = None  # a minute at which Sloth's 1h/5m condition alone holds

    @property
    def runs_per_min(self) -> int:
        return self.slo.runs_per_interval

    def series(self) -> list[dict[str, str]]:
        where = (f'job="depin-monitor",instance="{INSTANCE}",network="{self.slo.network}",'
                 'target="small",workload="chat-short-v1"')
        runs = " ".join(f"{self.runs_per_min * m:g}" for m in range(len(self.failures) + 1))
        total, fails = 0.0, ["0"]
        for f in self.failures:
            total += f
            fails.append(f"{total:g}")
        return [{"series": f"depin_probe_runs_total{{{where}}}", "values": runs},
                {"series": f'depin_probe_failures_total{{{where},outcome="http_error"}}',
                 "values": " ".join(fails)}]


def _at(minutes: int, *failing: int) -> list[float]:
    return [1.0 if m in failing else 0.0 for m in range(1, minutes + 1)]


def scenarios() -> list[Scenario]:
    low_min = LOW.min_failures("availability", "1h")
    one = Scenario("at its objective, one run a minute: one failure in the second hour pages "
                   "nobody (Sloth's 1h and 5m ratios alone would)", LOW, _at(100, 65),
                   checks=[(67, False), (69, False), (75, False), (100, False)], sloth_at=69)
    # Two failures close together: a network at 99.9 % shows them in 0.17 % of hours.
    two = Scenario(f"one run a minute: {low_min - 1} failures in an hour, one short of the "
                   f"minimum ({low_min}): no page", LOW,
                   _at(100, *range(62, 62 + 10 * (low_min - 1), 10)),
                   checks=[(m, False) for m in (65, 85, 90, 100)])
    warm = Scenario("warm-up: a fresh start, one failure in the third minute of one run a "
                    "minute: no page", LOW, _at(20, 3),
                    checks=[(4, False), (6, False), (10, False)], sloth_at=5)
    down = Scenario(f"down at one run a minute from minute 60: pages once {low_min} runs "
                    "have failed and the burn held `for: 2m`", LOW,
                    [0.0] * 60 + [1.0] * 10,
                    checks=[(60 + low_min - 1, False), (60 + low_min + 3, True)])
    # 15x: 9 of 600 runs an hour fail (the worked example of docs/sla.md). The 1h ratio passes
    # 14.4x after 1h x 14.4/15 = 57.6 min of burn, then `for: 2m`.
    burn = Scenario("burning at 15x (just above the 14.4x page rate) from minute 60, ten runs "
                    "a minute: pages about an hour after the burn starts", BUSY,
                    [0.0] * 60 + [0.15] * 65,
                    checks=[(60, False), (115, False), (122, True), (125, True)])
    return [one, two, warm, down, burn]


def _page(rules: dict, slo: NetworkSLO) -> dict:
    net, sli = slo.network, "availability"
    return {"exp_labels": {"severity": "page", "network": net, "sli": sli,
                           "sloth_id": f"{net}-{sli}", "sloth_service": net, "sloth_slo": sli},
            "exp_annotations": _annotations(rules, AVAIL, "page", network=net)}


def test_file(rules: dict) -> dict[str, object]:
    tests = []
    for sc in scenarios():
        test: dict[str, object] = {
            "name": sc.name, "interval": "1m", "input_series": sc.series(),
            "alert_rule_test": [{"eval_time": f"{m}m", "alertname": AVAIL,
                                 "exp_alerts": [_page(rules, sc.slo)] if pages else []}
                                for m, pages in sc.checks]}
        if sc.sloth_at is not None:
            sel = f'{{network="{sc.slo.network}",sli="availability"}}'
            net = sc.slo.network
            test["promql_expr_test"] = [{
                # what Sloth's multiwindow condition says here: 1 (it would page)
                "expr": f"({LOCATION_ERROR_RATIO}1h{sel} > bool 0.0144) * "
                        f"({LOCATION_ERROR_RATIO}5m{sel} > bool 0.0144)",
                "eval_time": f"{sc.sloth_at}m",
                "exp_samples": [{"labels": (f'{{network="{net}",sli="availability",'
                                            f'sloth_id="{net}-availability",'
                                            f'sloth_service="{net}",sloth_slo="availability"}}'),
                                 "value": 1}],
            }]
        tests.append(test)
    return {"rule_files": [RULES_FILE], "evaluation_interval": "1m", "tests": tests}


def burn_groups() -> dict:
    """The generator's groups that the burn alerts read (per-location ratios and counts, and
    the alerts): the network-wide Sloth series and the prober's alerts would only slow
    promtool down here."""
    rules = generate(list(SLOS))
    return {"groups": [g for g in rules["groups"]
                       if g["name"].endswith(("-locations", "-alerts"))]}


def render_files() -> dict[Path, str]:
    rules = burn_groups()
    header = ("# Generated by `python -m tests.promtool_evidence`. Do not edit: regenerate.\n"
              "# Run: promtool test rules deploy/prometheus/tests/evidence.test.yml\n")
    body = yaml.safe_dump(test_file(rules), sort_keys=False, width=10_000)
    rules_text = ("# Generated by `python -m tests.promtool_evidence` from "
                  "monitor.exporter.rules.generate (its -locations and -alerts groups). Do not "
                  "edit: regenerate.\n")
    rules_text += yaml.safe_dump(rules, sort_keys=False, width=10_000)
    return {TESTS_DIR / RULES_FILE: rules_text, TESTS_DIR / TEST_FILES[0]: header + body}


if __name__ == "__main__":
    for path, text in render_files().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
