"""Scenarios for `promtool test rules` with several locations: the quorum and per-location alerts.

Writes deploy/prometheus/tests/quorum-rules.yml (the generator's rules for `testnet`, enterprise
profile, 60 s interval, quorum 2) and deploy/prometheus/tests/locations.test.yml. Three
locations probe testnet, each with its own monitor; their series carry `location` as the
central Prometheus stores them (an external label of the agent's Prometheus, or a target label).
What fires, when and with which labels is stated here by hand.

    python -m tests.promtool_locations          # regenerate both files
    promtool test rules deploy/prometheus/tests/locations.test.yml
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.exporter.rules import (
    LOCATION_ERROR_RATIO,
    MONITOR_DOWN_ALERT,
    PROBES_STOPPED_ALERT,
    NetworkSLO,
    generate,
    render,
)
from tests.promtool_cases import AVAIL, INSTANCE, NET, _annotations, burn

ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = ROOT / "deploy" / "prometheus" / "tests"
RULES_FILE = "quorum-rules.yml"
TEST_FILES = ("locations.test.yml",)
QUORUM = 2
RUNS_PER_MIN = 10
SLO = NetworkSLO(NET, BUILTIN_PROFILES["enterprise"], 60.0, quorum=QUORUM,
                 runs_per_interval=RUNS_PER_MIN)
# Every location's monitor has the same INSTANCE name: only `location` tells them apart.
LOCATIONS = ("eu-west", "us-east", "ap-south")


def _labels(location: str, **more: str) -> str:
    pairs = {"job": "depin-monitor", "instance": INSTANCE, "location": location, **more}
    return ",".join(f'{k}="{v}"' for k, v in pairs.items())


@dataclass
class Location:
    """One location's monitor over `minutes`: which runs fail from when, and how it ends."""

    name: str
    failing_from: int | None = None  # every run fails (connect_error) from this minute
    stuck_from: int | None = None  # runs stop (the scheduler hangs; /metrics still served)
    stopped_from: int | None = None  # the monitor process is gone: up 0, its series go stale
    vanished_from: int | None = None  # nothing arrives any more, not even `up`

    def series(self, minutes: int) -> list[dict[str, str]]:
        """Each series sampled every minute, 0..minutes, written out sample by sample."""
        ended = self.stopped_from or self.vanished_from or minutes + 1
        after_end = "stale" if self.stopped_from else "_"
        ran = [min(m, self.stuck_from or m) for m in range(minutes + 1)]  # minutes with runs
        failing = self.failing_from if self.failing_from is not None else minutes + 1
        probe = _labels(self.name, network=NET, target="small", workload="chat-short-v1")
        values = {
            f"depin_probe_runs_total{{{probe}}}": [RUNS_PER_MIN * r for r in ran],
            f'depin_probe_failures_total{{{probe},outcome="connect_error"}}':
                [RUNS_PER_MIN * max(r - failing, 0) for r in ran],
            f"depin_probe_last_run_timestamp_seconds{{{probe}}}": [60 * r for r in ran],
            f"depin_monitor_start_time_seconds{{{_labels(self.name)}}}": [0] * (minutes + 1),
        }
        series = [{"series": name, "values": " ".join(
            f"{v:g}" if m < ended else after_end for m, v in enumerate(samples))}
            for name, samples in values.items()]
        # `up` is the scrape's: 0 once the monitor is stopped (its Prometheus still scrapes),
        # absent once the whole location is gone
        up = [("1" if m < ended else "0" if self.stopped_from else "_")
              for m in range(minutes + 1)]
        series.append({"series": f"up{{{_labels(self.name)}}}", "values": " ".join(up)})
        return series


@dataclass
class Scenario:
    name: str
    minutes: int
    locations: list[Location]
    checks: list[tuple[int, str, list[dict[str, object]]]] = field(default_factory=list)
    ratios: list[tuple[int, str, float]] = field(default_factory=list)  # (minute, loc, 5m)


def stopped(rules: dict, location: str) -> dict[str, object]:
    return {"exp_labels": {"severity": "page", "network": NET, "sli": "probes",
                           "location": location},
            "exp_annotations": _annotations(rules, PROBES_STOPPED_ALERT, "page")}


def scenarios(rules: dict) -> list[Scenario]:
    eu, us, ap = LOCATIONS
    one = Scenario("one location's route to testnet fails: that location burns, nobody is paged",
                   40, [Location(eu, failing_from=10), Location(us), Location(ap)])
    one.checks = [(30, AVAIL, []), (40, AVAIL, [])]
    one.ratios = [(30, eu, 1.0), (30, us, 0.0), (30, ap, 0.0)]

    two = Scenario("two of three locations see testnet fail: the quorum pages", 40,
                   [Location(eu, failing_from=10), Location(us, failing_from=20),
                    Location(ap)])
    two.checks = [(19, AVAIL, []),
                  (21, AVAIL, []),  # the second location's burn is pending (`for: 2m`)
                  (30, AVAIL, burn(rules, AVAIL, "availability", "page", "ticket"))]
    two.ratios = [(30, eu, 1.0), (30, us, 1.0), (30, ap, 0.0)]

    stuck = Scenario("one location's runs stop while its monitor still answers: "
                     "probes stopped there only", 30,
                     [Location(eu), Location(us, stuck_from=10), Location(ap)])
    stuck.checks = [(14, PROBES_STOPPED_ALERT, []),
                    (20, PROBES_STOPPED_ALERT, [stopped(rules, us)]),
                    (20, MONITOR_DOWN_ALERT, [])]

    down = Scenario("one location's monitor is stopped (its series go stale): probes stopped "
                    "and monitor down there only", 30,
                    [Location(eu), Location(us), Location(ap, stopped_from=10)])
    down.checks = [(14, PROBES_STOPPED_ALERT, []),
                   (20, PROBES_STOPPED_ALERT, [stopped(rules, ap)]),
                   (20, MONITOR_DOWN_ALERT, [{
                       "exp_labels": {"severity": "page", "network": "all", "sli": "prober",
                                      "job": "depin-monitor", "instance": INSTANCE,
                                      "location": ap},
                       "exp_annotations": _annotations(rules, MONITOR_DOWN_ALERT, "page",
                                                       INSTANCE)}])]

    gone = Scenario("a whole location falls silent (nothing arrives, not even up): probes "
                    "stopped there all the same", 60,
                    [Location(eu), Location(us), Location(ap, vanished_from=10)])
    gone.checks = [(14, PROBES_STOPPED_ALERT, []),
                   (20, PROBES_STOPPED_ALERT, [stopped(rules, ap)]),
                   (60, PROBES_STOPPED_ALERT, [stopped(rules, ap)])]
    return [one, two, stuck, down, gone]


def test_file(rules: dict) -> dict[str, object]:
    tests = []
    for sc in scenarios(rules):
        test: dict[str, object] = {
            "name": sc.name, "interval": "1m",
            "input_series": [s for loc in sc.locations for s in loc.series(sc.minutes)],
            "alert_rule_test": [{"eval_time": f"{m}m", "alertname": a, "exp_alerts": exp}
                                for m, a, exp in sc.checks]}
        if sc.ratios:
            test["promql_expr_test"] = [{
                "expr": f'{LOCATION_ERROR_RATIO}5m{{network="{NET}",sli="availability",'
                        f'location="{loc}"}}',
                "eval_time": f"{m}m",
                "exp_samples": [{"labels": (
                    f'{LOCATION_ERROR_RATIO}5m{{location="{loc}",network="{NET}",'
                    f'sli="availability",sloth_id="{NET}-availability",sloth_service="{NET}",'
                    'sloth_slo="availability"}'), "value": value}],
            } for m, loc, value in sc.ratios]
        tests.append(test)
    return {"rule_files": [RULES_FILE], "evaluation_interval": "1m", "tests": tests}


def render_files() -> dict[Path, str]:
    rules = generate([SLO])
    header = ("# Generated by `python -m tests.promtool_locations`. Do not edit: regenerate.\n"
              "# Run: promtool test rules deploy/prometheus/tests/locations.test.yml\n")
    body = yaml.safe_dump(test_file(rules), sort_keys=False, width=10_000)
    return {TESTS_DIR / RULES_FILE: render([SLO], source="tests/promtool_locations.py"),
            TESTS_DIR / TEST_FILES[0]: header + body}


if __name__ == "__main__":
    for path, text in render_files().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
