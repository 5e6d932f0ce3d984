"""Scenarios for `promtool test rules`: each alert firing and not firing.

Writes deploy/prometheus/tests/testnet-rules.yml (the generator's rules for one network,
`testnet`, enterprise profile, 60 s interval) and deploy/prometheus/tests/*.test.yml (the
scenarios below). Annotations are copied from the rules, because promtool compares them too;
what fires, when and with which labels is stated here by hand.

    python -m tests.promtool_cases          # regenerate both files
    promtool test rules deploy/prometheus/tests/*.test.yml
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.exporter.rules import (
    BURN_ALERTS,
    CATALOG_ALERT,
    CERT_EXPIRY_ALERT,
    DECODE_ALERT,
    FINGERPRINT_ALERT,
    MISCONFIGURED_ALERT,
    MODEL_EQUALITY_ALERT,
    MONITOR_DOWN_ALERT,
    OVERLOADED_ALERT,
    PROBES_STOPPED_ALERT,
    STORE_FAILING_ALERT,
    NetworkSLO,
    generate,
    render,
)

ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = ROOT / "deploy" / "prometheus" / "tests"
RULES_FILE = "testnet-rules.yml"
# Scenarios are split over files so that promtool instances can run them in parallel.
TEST_FILES = ("availability.test.yml", "slis.test.yml", "prober.test.yml", "account.test.yml")
NET = "testnet"
SLO = NetworkSLO(NET, BUILTIN_PROFILES["enterprise"], 60.0, runs_per_interval=10)
INSTANCE = "monitor:9464"
SERIES = (f'job="depin-monitor",instance="{INSTANCE}",'  # as Prometheus stores them
          f'network="{NET}",target="small",workload="chat-short-v1"')

AVAIL, DISC, TTFT, E2E, WRONG = (BURN_ALERTS[s] for s in (
    "availability", "disconnect_rate", "ttft_p95", "e2e_p99", "wrong_output_rate"))
EVERY_ALERT = (AVAIL, DISC, TTFT, E2E, WRONG, DECODE_ALERT, PROBES_STOPPED_ALERT,
               MISCONFIGURED_ALERT, OVERLOADED_ALERT, MONITOR_DOWN_ALERT, CERT_EXPIRY_ALERT,
               CATALOG_ALERT, MODEL_EQUALITY_ALERT, STORE_FAILING_ALERT)
BUYER_SIDE = ("auth_error", "quota_exhausted")  # fed only to the scenarios that use them
CATALOG_MODEL = "meta-llama/Llama-3.3-70B-Instruct"


def counter(minutes: int, *segments: tuple[int, float]) -> str:
    """A counter sampled each minute: segments of (minutes, increase per minute)."""
    parts, value, used = [], 0.0, 0
    plan = list(segments) or [(minutes, 0.0)]
    covered = sum(m for m, _ in plan)
    if covered < minutes:
        plan.append((minutes - covered, plan[-1][1]))
    parts.append("0")
    for span, per_min in plan:
        used += span
        parts.append(f"{value + per_min:g}+{per_min:g}x{span - 1}")
        value += per_min * span
    return " ".join(parts)


def gauge(minutes: int, value: float) -> str:
    return f"{value:g}+0x{minutes}"


@dataclass
class Scenario:
    name: str
    minutes: int
    file: str = TEST_FILES[0]
    runs_per_min: float = 10.0
    failures: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    ttft_fast_per_min: float | None = None  # None: all runs under the threshold
    e2e_fast_per_min: float | None = None
    decode_slow_per_min: float = 0.0
    last_run: str | None = None  # None: a run every minute
    up: str | None = None
    lag_slow: bool = False
    late: bool = False
    cert_expiry_days: dict[str, float] = field(default_factory=dict)  # target -> days left
    model_listed: str | None = None  # None: the configured model is listed throughout
    extra: list[tuple[str, str]] = field(default_factory=list)  # more (series, values)
    checks: list[tuple[int, str, list[dict[str, str]]]] = field(default_factory=list)

    def series(self) -> list[dict[str, str]]:
        n, r = self.minutes, self.runs_per_min
        out = [
            (f"depin_probe_runs_total{{{SERIES}}}", counter(n, (n, r))),
            (f'depin_probe_ttft_seconds_bucket{{{SERIES},le="2.0"}}',
             counter(n, (n, r if self.ttft_fast_per_min is None else self.ttft_fast_per_min))),
            (f"depin_probe_ttft_seconds_count{{{SERIES}}}", counter(n, (n, r))),
            (f'depin_probe_duration_seconds_bucket{{{SERIES},le="30.0"}}',
             counter(n, (n, r if self.e2e_fast_per_min is None else self.e2e_fast_per_min))),
            (f"depin_probe_duration_seconds_count{{{SERIES}}}", counter(n, (n, r))),
            (f'depin_probe_tokens_per_second_bucket{{{SERIES},le="20.0"}}',
             counter(n, (n, self.decode_slow_per_min))),
            (f"depin_probe_tokens_per_second_count{{{SERIES}}}", counter(n, (n, r))),
            (f"depin_probe_last_run_timestamp_seconds{{{SERIES}}}",
             self.last_run or f"0+60x{n}"),
            ("depin_monitor_start_time_seconds", gauge(n, 0)),
            (f'up{{job="depin-monitor",instance="{INSTANCE}"}}', self.up or gauge(n, 1)),
            (f'depin_catalog_model_listed{{job="depin-monitor",instance="{INSTANCE}",'
             f'network="{NET}",target="small",model="{CATALOG_MODEL}"}}',
             self.model_listed or gauge(n, 1)),
        ]
        outcomes = ["http_error", "disconnect", "wrong_output"]
        outcomes += [o for o in BUYER_SIDE if o in self.failures]
        for outcome in outcomes:
            segs = self.failures.get(outcome, ((n, 0.0),))
            out.append((f'depin_probe_failures_total{{{SERIES},outcome="{outcome}"}}',
                        counter(n, *segs)))
        lag = f'depin_monitor_event_loop_lag_seconds_bucket{{instance="{INSTANCE}"'
        out += [(f'{lag},le="0.005"}}', counter(n, (n, 0 if self.lag_slow else 10))),
                (f'{lag},le="0.25"}}', counter(n, (n, 10))),
                (f'{lag},le="+Inf"}}', counter(n, (n, 10)))]
        late = (f'depin_monitor_scheduling_lateness_seconds_bucket{{instance="{INSTANCE}",'
                f'network="{NET}"')
        out += [(f'{late},le="1.0"}}', counter(n, (n, 0 if self.late else 10))),
                (f'{late},le="10.0"}}', counter(n, (n, 10))),
                (f'{late},le="+Inf"}}', counter(n, (n, 10)))]
        for tier, days in self.cert_expiry_days.items():  # promtool's clock starts at 0
            where = f'job="depin-monitor",instance="{INSTANCE}",network="{NET}",target="{tier}"'
            out.append((f"depin_probe_tls_cert_expiry_timestamp_seconds{{{where}}}",
                        gauge(n, days * 86400)))
        return [{"series": s, "values": v} for s, v in [*out, *self.extra]]


def _annotations(rules: dict, alert: str, severity: str, instance: str = "",
                 **labels: str) -> dict:
    """The rule's annotations as promtool renders them for an alert with these labels."""
    labels["instance"] = instance
    net = labels.get("network")  # the rule of that network, when the file has several
    for group in rules["groups"]:
        for rule in group["rules"]:
            if (rule.get("alert") == alert and rule["labels"]["severity"] == severity
                    and rule["labels"].get("network") in (None, "all", net or NET)):
                out = dict(rule["annotations"])
                for name, value in labels.items():
                    out = {k: v.replace(f"{{{{ $labels.{name} }}}}", value)
                           for k, v in out.items()}
                return out
    raise KeyError((alert, severity))


def burn(rules: dict, alert: str, sli: str, *severities: str) -> list[dict]:
    return [{"exp_labels": {"severity": sev, "network": NET, "sli": sli,
                            "sloth_id": f"{NET}-{sli}", "sloth_service": NET, "sloth_slo": sli},
             "exp_annotations": _annotations(rules, alert, sev)} for sev in severities]


def scenarios(rules: dict) -> list[Scenario]:
    quiet = {a: [] for a in EVERY_ALERT}
    healthy = Scenario("healthy: every SLI within its objective, no alert", 65)
    healthy.checks = [(m, a, []) for m in (10, 65) for a in quiet]

    fast = Scenario("fast burn: testnet fails every run from minute 30 (page)", 45,
                    failures={"http_error": ((30, 0.0), (15, 10.0))})
    fast.checks = [
        (29, AVAIL, []),
        (31, AVAIL, []),  # pending: `for: 2m`
        (40, AVAIL, burn(rules, AVAIL, "availability", "page", "ticket")),
        (40, DISC, []),  # an http_error is not a disconnect
    ]

    # The ticket's 1d window must hold its minimum failures first: 34 at the config's 10
    # runs a minute (a network at 99.9 % shows that many in a day in < 1e-5 of days).
    slow = Scenario("slow burn: 0.5 % of runs fail (ticket, no page)", 45, runs_per_min=200,
                    failures={"http_error": ((45, 1.0),)})
    slow.checks = [(2, AVAIL, []), (30, AVAIL, []),
                   (40, AVAIL, burn(rules, AVAIL, "availability", "ticket"))]

    disc = Scenario("disconnects: 10 % of runs drop mid-stream", 40,
                    failures={"disconnect": ((40, 1.0),)})
    # 30 minutes in, the tickets' 1d windows hold fewer failures than their minimum: the
    # page alone (it would inhibit them anyway)
    disc.checks = [(30, DISC, burn(rules, DISC, "disconnect_rate", "page"))]

    ttft = Scenario("TTFT: 90 % of first tokens slower than 2 s", 40, ttft_fast_per_min=1)
    ttft.checks = [(30, TTFT, burn(rules, TTFT, "ttft_p95", "page")),
                   (30, E2E, [])]

    e2e = Scenario("end-to-end: half the runs take longer than 30 s", 40, e2e_fast_per_min=5)
    e2e.checks = [(30, E2E, burn(rules, E2E, "e2e_p99", "page")), (30, TTFT, [])]

    wrong = Scenario("wrong answers: 20 % of completed runs fail the check", 40,
                     failures={"wrong_output": ((40, 2.0),)})
    wrong.checks = [(30, WRONG, burn(rules, WRONG, "wrong_output_rate", "page")),
                    (30, DISC, [])]

    decode = Scenario("decode: every run at or below 20 tokens/s", 40, decode_slow_per_min=10)
    decode.checks = [(1, DECODE_ALERT, []), (30, DECODE_ALERT, [
        {"exp_labels": {"severity": "ticket", "network": NET, "sli": "decode_tps",
                        "sloth_id": f"{NET}-decode_tps", "sloth_service": NET,
                        "sloth_slo": "decode_tps"},
         "exp_annotations": _annotations(rules, DECODE_ALERT, "ticket")}])]

    stopped_labels = {"exp_labels": {"severity": "page", "network": NET, "sli": "probes"},
                      "exp_annotations": _annotations(rules, PROBES_STOPPED_ALERT, "page")}
    gap = Scenario("gap: the last run was at minute 30, then nothing", 60,
                   last_run="0+60x30 1800+0x30")
    gap.checks = [(34, PROBES_STOPPED_ALERT, []), (40, PROBES_STOPPED_ALERT, [stopped_labels])]

    never = Scenario("never ran: the network's series stay at 0 after the start", 20,
                     last_run=gauge(20, 0))
    never.checks = [(3, PROBES_STOPPED_ALERT, []), (10, PROBES_STOPPED_ALERT, [stopped_labels])]

    prober = {"severity": "ticket", "network": "all", "sli": "prober", "instance": INSTANCE}
    overloaded = {"exp_labels": prober,
                  "exp_annotations": _annotations(rules, OVERLOADED_ALERT, "ticket", INSTANCE)}
    lag = Scenario("overloaded: event-loop lag p99 around 0.25 s", 30, lag_slow=True)
    lag.checks = [(8, OVERLOADED_ALERT, []), (20, OVERLOADED_ALERT, [overloaded])]
    late = Scenario("overloaded: runs start 1-10 s late", 30, late=True)
    late.checks = [(8, OVERLOADED_ALERT, []), (20, OVERLOADED_ALERT, [overloaded])]

    down = Scenario("monitor down: the scrape fails from minute 10", 30,
                    up="1+0x9 0+0x20")
    down.checks = [(12, MONITOR_DOWN_ALERT, []), (20, MONITOR_DOWN_ALERT, [
        {"exp_labels": {"severity": "page", "network": "all", "sli": "prober",
                        "job": "depin-monitor", "instance": INSTANCE},
         "exp_annotations": _annotations(rules, MONITOR_DOWN_ALERT, "page", INSTANCE)}])]
    cert = Scenario("certificates: the small tier's chain expires in 10 days, the large one's "
                    "in 60", 20, cert_expiry_days={"small": 10, "large": 60})
    cert.checks = [(5, CERT_EXPIRY_ALERT, []), (15, CERT_EXPIRY_ALERT, [
        {"exp_labels": {"severity": "ticket", "network": NET, "sli": "certificate",
                        "target": "small", "job": "depin-monitor", "instance": INSTANCE},
         "exp_annotations": _annotations(rules, CERT_EXPIRY_ALERT, "ticket", target="small")}])]
    monitor = f'job="depin-monitor",instance="{INSTANCE}"'
    store = Scenario("store: writes fail from minute 10; the buffer is full at minute 25 and "
                     "results are dropped", 40, extra=[
                         (f"depin_monitor_store_up{{{monitor}}}", "1+0x9 0+0x30"),
                         (f"depin_monitor_results_dropped_total{{{monitor}}}",
                          counter(40, (25, 0.0), (15, 30.0)))])
    on_store = {"network": "all", "sli": "store", "job": "depin-monitor", "instance": INSTANCE}
    store.checks = [
        (12, STORE_FAILING_ALERT, []),  # pending: 5 minutes
        (20, STORE_FAILING_ALERT, [
            {"exp_labels": {"severity": "ticket", **on_store},
             "exp_annotations": _annotations(rules, STORE_FAILING_ALERT, "ticket", INSTANCE)}]),
        (30, STORE_FAILING_ALERT, [
            {"exp_labels": {"severity": sev, **on_store},
             "exp_annotations": _annotations(rules, STORE_FAILING_ALERT, sev, INSTANCE)}
            for sev in ("ticket", "page")]),
    ]
    healthy.extra += [(f"depin_monitor_store_up{{{monitor}}}", gauge(65, 1)),
                      (f"depin_monitor_results_dropped_total{{{monitor}}}",
                       counter(65, (65, 0.0)))]
    listed = {"job": "depin-monitor", "instance": INSTANCE, "network": NET, "target": "small",
              "model": CATALOG_MODEL}
    unlisted = Scenario("catalog: the network stops listing a configured model at minute 10",
                        80, model_listed="1+0x9 0+0x70")
    unlisted.checks = [(65, CATALOG_ALERT, []), (75, CATALOG_ALERT, [
        {"exp_labels": {"severity": "ticket", "sli": "catalog", **listed},
         "exp_annotations": _annotations(rules, CATALOG_ALERT, "ticket", **listed)}]),
        (75, AVAIL, [])]  # a config problem, not the network failing
    for sc in (disc, ttft, e2e, wrong, decode):
        sc.file = TEST_FILES[1]
    for sc in (gap, never, lag, late, down, cert, unlisted, store):
        sc.file = TEST_FILES[2]
    return [healthy, fast, slow, disc, ttft, e2e, wrong, decode, gap, never, lag, late, down,
            cert, unlisted, store, *account_scenarios(rules),
            equality_scenario(rules), fingerprint_scenario(rules)]


def fingerprint_scenario(rules: dict) -> Scenario:
    """The monitor sets depin_fingerprint_alarm from the latest fingerprint run
    (tests/test_fingerprint.py); the alert follows it, and clears at the next unalarmed run."""
    where = f'job="depin-monitor",instance="{INSTANCE}",model="sim-70b"'
    swapped = Scenario("fingerprint: testnet's model changes at minute 10, another's never",
                       40, file=TEST_FILES[2], extra=[
                           (f'depin_fingerprint_alarm{{{where},network="{NET}"}}',
                            "0+0x9 1+0x20 0+0x10"),
                           (f'depin_fingerprint_alarm{{{where},network="honest"}}',
                            gauge(40, 0))])
    labels = {"severity": "ticket", "sli": "fingerprint", "network": NET, "model": "sim-70b",
              "job": "depin-monitor", "instance": INSTANCE}
    text = {k: v.replace("{{ $labels.network }}", NET).replace("{{ $labels.model }}", "sim-70b")
            for k, v in _annotations(rules, FINGERPRINT_ALERT, "ticket").items()}
    swapped.checks = [(5, FINGERPRINT_ALERT, []),
                      (15, FINGERPRINT_ALERT, [{"exp_labels": labels,
                                                "exp_annotations": text}]),
                      (35, FINGERPRINT_ALERT, [])]
    return swapped


def equality_scenario(rules: dict) -> Scenario:
    """The monitor raises depin_model_equality_alarm after `consecutive` tests in a row said
    "differs" (tests/test_equality.py); the alert follows it, and clears with it."""
    where = f'job="depin-monitor",instance="{INSTANCE}",model="sim-70b",reference="baseline"'
    caught = Scenario("model equality: testnet's alarm from minute 10 to 30, another's never",
                      40, file=TEST_FILES[2], extra=[
                          (f'depin_model_equality_alarm{{{where},network="{NET}"}}',
                           "0+0x9 1+0x20 0+0x10"),
                          (f'depin_model_equality_alarm{{{where},network="honest"}}',
                           gauge(40, 0))])
    labels = {"severity": "ticket", "sli": "model_equality", "network": NET,
              "model": "sim-70b", "reference": "baseline", "job": "depin-monitor",
              "instance": INSTANCE}
    text = {k: v.replace("{{ $labels.network }}", NET).replace("{{ $labels.model }}", "sim-70b")
            .replace("{{ $labels.reference }}", "baseline")
            for k, v in _annotations(rules, MODEL_EQUALITY_ALERT, "ticket").items()}
    caught.checks = [(5, MODEL_EQUALITY_ALERT, []),
                     (15, MODEL_EQUALITY_ALERT, [{"exp_labels": labels,
                                                  "exp_annotations": text}]),
                     (35, MODEL_EQUALITY_ALERT, [])]
    return caught


def account_scenarios(rules: dict) -> list[Scenario]:
    """Runs refused for the monitor's own key or credits: a ticket to the operator, and the
    network's availability and disconnect rate exactly as they were."""
    def misconfigured(outcome: str) -> dict:
        return {"exp_labels": {"severity": "ticket", "network": NET, "sli": "probes",
                               "outcome": outcome},
                "exp_annotations": {k: v.replace("{{ $labels.outcome }}", outcome) for k, v in
                                    _annotations(rules, MISCONFIGURED_ALERT, "ticket").items()}}

    revoked = Scenario("key revoked: every run from minute 10 is a 401 (ticket, no burn)", 40,
                       file=TEST_FILES[3], failures={"auth_error": ((10, 0.0), (30, 10.0))})
    revoked.checks = [(12, MISCONFIGURED_ALERT, []),  # pending: `for: 10m`
                      (25, MISCONFIGURED_ALERT, [misconfigured("auth_error")]),
                      (25, AVAIL, []), (25, DISC, [])]
    blip = Scenario("one 402 at minute 10, then paid again: no ticket", 40, file=TEST_FILES[3],
                    failures={"quota_exhausted": ((10, 0.0), (1, 1.0), (29, 0.0))})
    blip.checks = [(12, MISCONFIGURED_ALERT, []), (20, MISCONFIGURED_ALERT, []),
                   (30, MISCONFIGURED_ALERT, [])]
    # Half the runs refused, 1 of the other 200 a minute failing: the availability error ratio
    # is 1/200 = 0.5 %, as with no refused run at all ("slow burn"), not 201/400.
    mixed = Scenario("half the runs out of credits: availability judged on the rest", 45,
                     file=TEST_FILES[3], runs_per_min=400,
                     failures={"quota_exhausted": ((45, 200.0),), "http_error": ((45, 1.0),)})
    mixed.checks = [(40, AVAIL, burn(rules, AVAIL, "availability", "ticket")),
                    (30, MISCONFIGURED_ALERT, [misconfigured("quota_exhausted")])]
    return [revoked, blip, mixed]


def test_file(rules: dict, name: str) -> dict:
    tests = []
    for sc in scenarios(rules):
        if sc.file != name:
            continue
        test: dict = {"name": sc.name, "interval": "1m", "input_series": sc.series(),
                      "alert_rule_test": [{"eval_time": f"{m}m", "alertname": a,
                                           "exp_alerts": exp} for m, a, exp in sc.checks]}
        if sc.name.startswith(("slow burn", "half the runs")):
            test["promql_expr_test"] = [{
                "expr": f'slo:sli_error:ratio_rate1h{{network="{NET}",sli="availability"}}',
                "eval_time": "30m",
                "exp_samples": [{"labels": ('slo:sli_error:ratio_rate1h{network="testnet",'
                                            'sli="availability",sloth_id="testnet-availability",'
                                            'sloth_service="testnet",sloth_slo="availability"}'),
                                 "value": 0.005}],
            }]
        tests.append(test)
    return {"rule_files": [RULES_FILE], "evaluation_interval": "1m", "tests": tests}


def render_files() -> dict[Path, str]:
    rules = generate([SLO])
    header = ("# Generated by `python -m tests.promtool_cases`. Do not edit: regenerate.\n"
              "# Run: promtool test rules deploy/prometheus/tests/*.test.yml\n")
    files = {TESTS_DIR / RULES_FILE: render([SLO], source="tests/promtool_cases.py")}
    for name in TEST_FILES:
        body = yaml.safe_dump(test_file(rules, name), sort_keys=False, width=10_000)
        files[TESTS_DIR / name] = header + body
    return files


if __name__ == "__main__":
    for path, text in render_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
