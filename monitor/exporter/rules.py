"""Prometheus rules from SLA profiles: Sloth-named recording rules and multiwindow,
multi-burn-rate alerts (Google SRE workbook, chapter 5), plus the prober's own alerts.

Labels: every SLO series carries our own `network` and `sli` labels (what the alerts, the
Alertmanager routes and our dashboards use) and Sloth's `sloth_id`, `sloth_service` (= network)
and `sloth_slo` (= sli), so Sloth's Grafana dashboards work on them too. The window is in the
metric name (`slo:sli_error:ratio_rate5m`), so there is no `sloth_window` label and the
multiwindow `and` joins need no `ignoring()`.

Locations (docs/scale.md): the `slo:*` series sum over every location, as the SLA does. Beside
them, `location:slo_sli_error:ratio_rate<window>` keeps each location's own error ratios, and a
burn alert fires only when at least `quorum` locations burn at once: a bad route from one place
pages nobody. `DepinProbesStopped` is per location, and still fires when a location sends
nothing at all any more (its last run is latched in a recording rule).

Evidence (monitor/analysis/evidence.py, docs/sla.md): a burn tier fires only when its long
window also holds at least the minimum number of failures that a network exactly at its
objective reaches in at most `EVIDENCE_ALPHA` of windows, at the runs the config sends in that
window (`location:slo_sli_error:increase<window>`, beside the runs judged,
`location:slo_sli_events:increase<window>`). One failure in a handful of runs pages nobody,
also after a start, when the windows hold fewer runs than the config sends in them.

`time_scale` divides every window and `for:` duration (names keep their nominal window): tests
use it to watch a 1h/5m page alert fire in seconds against a real Prometheus.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from monitor.analysis.evidence import EVIDENCE_ALPHA, min_failures, resolution
from monitor.analysis.sla import (
    SLI_AVAILABILITY,
    SLI_DECODE,
    SLI_DISCONNECT,
    SLI_E2E,
    SLI_TTFT,
    SLI_WRONG_OUTPUT,
    objectives,
)
from monitor.catalog import CHECK_EVERY_S
from monitor.config import Config
from monitor.core.result import NOT_THE_NETWORKS_FAULT, Outcome
from monitor.core.slaprofile import SLAProfile
from monitor.core.times import format_duration as duration
from monitor.core.transport import DEFAULT_CERT_EXPIRY_WARNING_S
from monitor.exporter.metrics import le_label

Rule = dict[str, Any]  # one recording or alerting rule, as the YAML file holds it

# Where alerts link when the operator has not said where they host docs/runbooks.md
# (`alerting.runbook_url` or `rules --runbook-base`): a reserved name that never resolves
# (RFC 6761), so that nobody mistakes it for a real page, and easy to find and replace.
RUNBOOK_PLACEHOLDER = "https://runbooks.example.invalid/depin-monitor/runbooks.md"
RUNBOOK_BASE = RUNBOOK_PLACEHOLDER
PLACEHOLDER_NOTE = (f"# runbook_url: {RUNBOOK_PLACEHOLDER} is a placeholder. Host\n"
                    "# docs/runbooks.md where your on-call can open it, set alerting.runbook_url"
                    "\n# in the config to its URL and regenerate (or pass --runbook-base).\n")

# Windows the recording rules are evaluated at, in seconds, by their Sloth name suffix.
WINDOWS: dict[str, int] = {
    "5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259200,
}


@dataclass(frozen=True, slots=True)
class BurnTier:
    """One multiwindow condition: error ratio above factor * budget over both windows."""

    severity: str
    factor: float
    long: str
    short: str


# SRE workbook table 5-8: 2 % of a 30-day budget in 1 h, 5 % in 6 h (page); 10 % in 1 d,
# 10 % in 3 d (ticket).
BURN_TIERS: tuple[BurnTier, ...] = (
    BurnTier("page", 14.4, "1h", "5m"),
    BurnTier("page", 6.0, "6h", "30m"),
    BurnTier("ticket", 3.0, "1d", "2h"),
    BurnTier("ticket", 1.0, "3d", "6h"),
)
ALERT_FOR_S = 120  # a burn must hold for 2 minutes (one scrape blip does not page)

# The alerts, by SLI; one runbook section each (docs/runbooks.md, anchor = lower-case name).
BURN_ALERTS: dict[str, str] = {
    SLI_AVAILABILITY: "DepinAvailabilityBudgetBurn",
    SLI_DISCONNECT: "DepinDisconnectBudgetBurn",
    SLI_TTFT: "DepinTTFTBudgetBurn",
    SLI_E2E: "DepinE2ELatencyBudgetBurn",
    SLI_WRONG_OUTPUT: "DepinWrongOutputBudgetBurn",
}
DECODE_ALERT = "DepinDecodeRateBelowFloor"
PROBES_STOPPED_ALERT = "DepinProbesStopped"
MISCONFIGURED_ALERT = "DepinProbeMisconfigured"
OVERLOADED_ALERT = "DepinProberOverloaded"
MONITOR_DOWN_ALERT = "DepinMonitorDown"
CATALOG_ALERT = "DepinCatalogModelNotListed"
CERT_EXPIRY_ALERT = "DepinCertificateExpiringSoon"
STORE_FAILING_ALERT = "DepinStoreFailing"
MODEL_EQUALITY_ALERT = "DepinModelDiffersFromReference"
FINGERPRINT_ALERT = "DepinModelChanged"
ALL_ALERTS = (*BURN_ALERTS.values(), DECODE_ALERT, PROBES_STOPPED_ALERT, MISCONFIGURED_ALERT,
              OVERLOADED_ALERT, MONITOR_DOWN_ALERT, CERT_EXPIRY_ALERT, CATALOG_ALERT,
              MODEL_EQUALITY_ALERT, STORE_FAILING_ALERT, FINGERPRINT_ALERT)
STORE_FAILING_FOR_S = 300  # the store cannot write for 5 minutes: ticket; results dropped: page
CERT_EXPIRY_FOR_S = 600  # the expiry seen must stay that close for 10 minutes

STOPPED_AFTER_INTERVALS = 3  # no run for this many intervals (and at least 5 minutes)
# A location's last run is latched (re-recorded from itself) so that "probes stopped" still
# fires when the location sends nothing at all; a location silent this long is forgotten.
LATCH_LOOKBACK_S = 600
FORGET_LOCATION_AFTER_S = 7 * 86400
# Probe misconfigured: runs refused for the monitor's own account in every window of 2
# intervals (at least 5 minutes) for 3 intervals (at least 10 minutes); one refusal is a blip.
MISCONFIGURED_WINDOW_INTERVALS, MISCONFIGURED_WINDOW_MIN_S = 2, 300.0
MISCONFIGURED_FOR_INTERVALS, MISCONFIGURED_FOR_MIN_S = 3, 600.0
LOOP_LAG_P99_MAX_S = 0.1  # prober overloaded: event-loop lag p99 above this ...
LATENESS_P90_MAX_S = 5.0  # ... or scheduling lateness p90 above this, for 10 minutes
MONITOR_JOB = "depin-monitor"  # the scrape job name of deploy/prometheus/prometheus.yml
# Per-location series the quorum and "probes stopped" read (location_rules)
LOCATION_ERROR_RATIO = "location:slo_sli_error:ratio_rate"  # + a WINDOWS name
# Per-location counts over each burn tier's long window (the evidence condition)
LOCATION_ERRORS = "location:slo_sli_error:increase"  # + a long window's name
LOCATION_EVENTS = "location:slo_sli_events:increase"
EVIDENCE_WINDOWS = tuple(dict.fromkeys(t.long for t in BURN_TIERS))
LAST_RUN = "location:depin_probe_last_run_timestamp_seconds:max"

SLI_DESCRIPTIONS: dict[str, str] = {
    SLI_AVAILABILITY: "availability",
    SLI_DISCONNECT: "disconnect rate",
    SLI_TTFT: "TTFT p95",
    SLI_E2E: "end-to-end p99",
    SLI_WRONG_OUTPUT: "wrong-output rate",
    SLI_DECODE: "decode tokens/s median",
}


@dataclass(frozen=True, slots=True)
class NetworkSLO:
    """What the generator needs of a configured network. `quorum`: how many locations must
    burn the budget at once before a burn alert fires; `runs_per_interval`: runs each interval
    (model tiers x jobs), which with the interval sets the runs a window holds."""

    network: str
    profile: SLAProfile
    interval_s: float
    quorum: int = 1
    runs_per_interval: int = 1

    def runs_in(self, window_s: float) -> int:
        """Runs one location sends in `window_s` seconds at the configured rate."""
        return max(1, round(window_s / self.interval_s * self.runs_per_interval))

    def min_failures(self, sli: str, window: str, time_scale: float = 1.0) -> int:
        """Failures the long `window` must hold before a burn tier of `sli` fires."""
        budget = 1 - objectives(self.profile)[sli]
        return min_failures(self.runs_in(WINDOWS[window] / time_scale), round(budget, 12))


def _num(x: float) -> str:
    """A float for PromQL without binary noise (0.001 not 0.0010000000000000009)."""
    return repr(round(x, 12))


DISCONNECT = f'outcome="{Outcome.DISCONNECT.value}"'
WRONG = f'outcome="{Outcome.WRONG_OUTPUT.value}"'
# The wrong-output rate is judged on completed runs (COMPLETED_OUTCOMES: ok, wrong_output),
# counted here as the runs minus every failure other than wrong_output.
NOT_WRONG = f'outcome!="{Outcome.WRONG_OUTPUT.value}"'
# Failures that are not the network's (monitor.core.result): left out of availability.
NOT_JUDGED = "|".join(sorted(NOT_THE_NETWORKS_FAULT))


def error_ratio_expr(sli: str, network: str, profile: SLAProfile, window: str,
                     by: str = "") -> str:
    """PromQL for the SLI's error ratio over `window` (a Prometheus duration), over every
    series of the network, or per value of the `by` labels (e.g. "location")."""
    sel = f'network="{network}"'
    total = f"sum by ({by}) " if by else "sum"
    runs = f"{total}(rate(depin_probe_runs_total{{{sel}}}[{window}]))"

    def failures(matcher: str = "") -> str:
        extra = f",{matcher}" if matcher else ""
        # `or ... * 0`: before the first failure of that kind the series may not exist yet
        return (f"({total}(rate(depin_probe_failures_total{{{sel}{extra}}}[{window}])) "
                f"or {runs} * 0)")

    def slow(metric: str, threshold: float) -> str:
        good = f'{total}(rate({metric}_bucket{{{sel},le="{le_label(threshold)}"}}[{window}]))'
        return f"1 - ({good} / {total}(rate({metric}_count{{{sel}}}[{window}])))"

    judged, failed = runs, failures()  # the runs availability is judged on, their failures
    if NOT_JUDGED:
        judged = f"""({runs} - {failures(f'outcome=~"{NOT_JUDGED}"')})"""
        failed = failures(f'outcome!~"{NOT_JUDGED}"')
    if sli == SLI_AVAILABILITY:
        return f"{failed} / {judged}"
    if sli == SLI_DISCONNECT:
        return f"{failures(DISCONNECT)} / {judged}"
    if sli == SLI_WRONG_OUTPUT:
        return f"{failures(WRONG)} / ({runs} - {failures(NOT_WRONG)})"
    if sli == SLI_TTFT:
        assert profile.ttft_p95_s is not None
        return slow("depin_probe_ttft_seconds", profile.ttft_p95_s)
    if sli == SLI_E2E:
        assert profile.e2e_p99_s is not None
        return slow("depin_probe_duration_seconds", profile.e2e_p99_s)
    if sli == SLI_DECODE:
        assert profile.decode_tps_min is not None
        # le is "<=": a run at exactly the floor counts as slow here (docs/sla.md)
        slow_runs = (f'{total}(rate(depin_probe_tokens_per_second_bucket{{{sel},'
                     f'le="{le_label(profile.decode_tps_min)}"}}[{window}]))')
        return (f"{slow_runs} / "
                f"{total}(rate(depin_probe_tokens_per_second_count{{{sel}}}[{window}]))")
    raise ValueError(f"unknown SLI {sli!r}")


def event_count_expr(sli: str, network: str, profile: SLAProfile, window: str,
                     window_s: float, by: str = "") -> str:
    """PromQL for the events the SLI judges over `window`: the error ratio's denominator as a
    count (rate x seconds, the same extrapolation as the ratio), per value of `by`."""
    sel = f'network="{network}"'
    total = f"sum by ({by}) " if by else "sum"
    secs = _num(window_s)

    def rate(metric: str) -> str:
        return f"{total}(rate({metric}[{window}]))"

    runs = rate(f"depin_probe_runs_total{{{sel}}}")

    def failures(matcher: str) -> str:
        return f"({rate(f'depin_probe_failures_total{{{sel},{matcher}}}')} or {runs} * 0)"

    if sli in (SLI_AVAILABILITY, SLI_DISCONNECT):
        return f"""({runs} - {failures(f'outcome=~"{NOT_JUDGED}"')}) * {secs}"""
    if sli == SLI_WRONG_OUTPUT:
        return f"({runs} - {failures(NOT_WRONG)}) * {secs}"
    if sli == SLI_TTFT:
        return f"{rate(f'depin_probe_ttft_seconds_count{{{sel}}}')} * {secs}"
    if sli == SLI_E2E:
        return f"{rate(f'depin_probe_duration_seconds_count{{{sel}}}')} * {secs}"
    raise ValueError(f"no burn-rate events for SLI {sli!r}")


def _labels(network: str, sli: str) -> dict[str, str]:
    return {"network": network, "sli": sli, "sloth_id": f"{network}-{sli}",
            "sloth_service": network, "sloth_slo": sli}


def _sel(network: str, sli: str) -> str:
    return f'{{network="{network}",sli="{sli}"}}'


def recording_rules(slo: NetworkSLO, time_scale: float = 1.0) -> list[Rule]:
    rules: list[Rule] = []
    period = f"{slo.profile.window_days}d"
    for sli, objective in objectives(slo.profile).items():
        labels = _labels(slo.network, sli)
        for name, seconds in WINDOWS.items():
            rules.append({
                "record": f"slo:sli_error:ratio_rate{name}",
                "expr": error_ratio_expr(sli, slo.network, slo.profile,
                                         duration(seconds / time_scale)),
                "labels": labels,
            })
        sel = _sel(slo.network, sli)
        period_window = duration(slo.profile.window_days * 86400 / time_scale)
        rules += [
            {"record": "slo:objective:ratio", "expr": _num(objective), "labels": labels},
            {"record": "slo:error_budget:ratio", "expr": _num(1 - objective), "labels": labels},
            {"record": "slo:time_period:days", "expr": str(slo.profile.window_days),
             "labels": labels},
            {"record": "slo:current_burn_rate:ratio",
             "expr": f"slo:sli_error:ratio_rate5m{sel} / slo:error_budget:ratio{sel}",
             "labels": labels},
            # Sloth's period SLI: the mean of the 5m ratios over the SLO window
            {"record": f"slo:sli_error:ratio_rate{period}",
             "expr": f"sum_over_time(slo:sli_error:ratio_rate5m{sel}[{period_window}]) / "
                     f"count_over_time(slo:sli_error:ratio_rate5m{sel}[{period_window}])",
             "labels": labels},
            {"record": "slo:period_burn_rate:ratio",
             "expr": f"slo:sli_error:ratio_rate{period}{sel} / slo:error_budget:ratio{sel}",
             "labels": labels},
            {"record": "slo:period_error_budget_remaining:ratio",
             "expr": f"1 - slo:period_burn_rate:ratio{sel}", "labels": labels},
        ]
    return rules


def location_rules(slo: NetworkSLO, time_scale: float = 1.0) -> list[Rule]:
    """Each location's own error ratios (what the quorum counts) and its latched last run."""
    rules: list[Rule] = []
    for sli in objectives(slo.profile):
        for name, seconds in WINDOWS.items():
            rules.append({
                "record": f"{LOCATION_ERROR_RATIO}{name}",
                "expr": error_ratio_expr(sli, slo.network, slo.profile,
                                         duration(seconds / time_scale), by="location"),
                "labels": _labels(slo.network, sli),
            })
    for sli in objectives(slo.profile):
        if sli not in BURN_ALERTS:
            continue
        sel = _sel(slo.network, sli)
        for name in EVIDENCE_WINDOWS:
            span = WINDOWS[name] / time_scale
            events = event_count_expr(sli, slo.network, slo.profile, duration(span), span,
                                      by="location")
            # failures = the ratio just recorded x the events: no second pass over the series
            rules += [{"record": f"{LOCATION_EVENTS}{name}", "expr": events,
                       "labels": _labels(slo.network, sli)},
                      {"record": f"{LOCATION_ERRORS}{name}",
                       "expr": f"{LOCATION_ERROR_RATIO}{name}{sel} * {LOCATION_EVENTS}{name}{sel}",
                       "labels": _labels(slo.network, sli)}]
    net = f'network="{slo.network}"'
    last_run = f"depin_probe_last_run_timestamp_seconds{{{net}}}"
    # A location's newest run; one that never ran counts from its monitor's start (its series
    # sit at 0); one that sends nothing any more keeps its last value (the latch) for a week.
    rules.append({
        "record": LAST_RUN,
        "expr": f"max by (location) ({last_run} > 0)\nor\n"
                f"(max by (location) (depin_monitor_start_time_seconds)"
                f" and on (location) max by (location) ({last_run}))\nor\n"
                f"max by (location) (last_over_time({LAST_RUN}{{{net}}}"
                f"[{duration(LATCH_LOOKBACK_S / time_scale)}]) "
                f"> time() - {_num(FORGET_LOCATION_AFTER_S / time_scale)})",
        "labels": {"network": slo.network, "sli": "probes"},
    })
    return rules


def quorum_expr(slo: NetworkSLO, sli: str,
                conditions: Sequence[tuple[str, str, float] | tuple[str, str, float, int]]
                ) -> str:
    """Locations whose `LOCATION_ERROR_RATIO` is above each (long, short, threshold) in both
    windows (for any of them), and whose long window holds at least the minimum failures
    when one is given (long, short, threshold, minimum), counted; at least `slo.quorum` of
    them to fire."""
    sel = _sel(slo.network, sli)

    def one(cond: tuple[str, str, float] | tuple[str, str, float, int]) -> str:
        long, short, threshold = cond[:3]
        text = (f"(\n    {LOCATION_ERROR_RATIO}{long}{sel} > {_num(threshold)}\n    and\n"
                f"    {LOCATION_ERROR_RATIO}{short}{sel} > {_num(threshold)}")
        if len(cond) == 4:  # counts are rate x seconds: half a failure of slack for rounding
            text += f"\n    and\n    {LOCATION_ERRORS}{long}{sel} > {cond[3] - 0.5:g}"
        return text + "\n  )"

    either = "\n  or\n  ".join(one(c) for c in conditions)
    return f"count without (location) (\n  {either}\n) >= {slo.quorum}"


def _quorum_note(slo: NetworkSLO) -> str:
    return (f" Seen from at least {slo.quorum} locations at once (the quorum); the alert's "
            "value is how many." if slo.quorum > 1 else "")


def _annotations(alert: str, summary: str, description: str, runbook_base: str
                 ) -> dict[str, str]:
    return {"summary": summary, "description": description,
            "runbook_url": f"{runbook_base}#{alert.lower()}"}


def alert_rules(slo: NetworkSLO, time_scale: float = 1.0,
                runbook_base: str = RUNBOOK_BASE,
                cert_warning_s: float = DEFAULT_CERT_EXPIRY_WARNING_S) -> list[Rule]:
    rules: list[Rule] = []
    objs = objectives(slo.profile)
    net = slo.network
    for sli, alert in BURN_ALERTS.items():
        if sli not in objs:
            continue
        budget = 1 - objs[sli]
        for severity in ("page", "ticket"):
            tiers = [t for t in BURN_TIERS if t.severity == severity]
            minimum = {t.long: slo.min_failures(sli, t.long, time_scale) for t in tiers}
            expr = quorum_expr(slo, sli, [(t.long, t.short, t.factor * budget, minimum[t.long])
                                          for t in tiers])
            factors = " or ".join(f"{t.factor:g}x the budget over {t.long} and {t.short} "
                                  f"with at least {minimum[t.long]} failed in {t.long}"
                                  for t in tiers)
            what = SLI_DESCRIPTIONS[sli]
            rules.append({
                "alert": alert,
                "expr": expr,
                "for": duration(ALERT_FOR_S / time_scale),
                "labels": {"severity": severity, "network": net, "sli": sli},
                "annotations": _annotations(
                    alert,
                    f"{net}: {what} error budget burning too fast ({severity})",
                    f"{net} {what}: the error ratio is above {factors}, the budget being "
                    f"{budget:.4%} of runs over {slo.profile.window_days} days "
                    f"(SLA profile {slo.profile.name}). At this rate the budget is gone "
                    f"before the window ends. The minimum failures are what a network "
                    f"exactly at its objective shows in at most {EVIDENCE_ALPHA:g} of such "
                    f"windows.{_quorum_note(slo)}",
                    runbook_base),
            })
    if SLI_DECODE in objs:
        rules.append({
            "alert": DECODE_ALERT,
            "expr": quorum_expr(slo, SLI_DECODE, [("6h", "30m", 0.5)]),
            "for": duration(ALERT_FOR_S / time_scale),
            "labels": {"severity": "ticket", "network": net, "sli": SLI_DECODE},
            "annotations": _annotations(
                DECODE_ALERT,
                f"{net}: median decode rate below {slo.profile.decode_tps_min:g} tokens/s",
                f"More than half of {net}'s completed runs decoded at or below "
                f"{slo.profile.decode_tps_min:g} tokens/s over both 6h and 30m."
                f"{_quorum_note(slo)}",
                runbook_base),
        })
    stopped_s = max(STOPPED_AFTER_INTERVALS * slo.interval_s, 300.0) / time_scale
    rules.append({
        "alert": PROBES_STOPPED_ALERT,
        # per location, from its latched last run (location_rules)
        "expr": f'time() - {LAST_RUN}{{network="{net}"}} > {_num(stopped_s)}',
        "for": duration(max(slo.interval_s, 60.0) / time_scale),
        "labels": {"severity": "page", "network": net, "sli": "probes"},
        "annotations": _annotations(
            PROBES_STOPPED_ALERT,
            f"{net}: no probe run for {duration(stopped_s)}",
            f"The monitor has not started a run against {net} for more than "
            f"{STOPPED_AFTER_INTERVALS} intervals ({duration(slo.interval_s)} each): "
            "its SLA is not being measured from this location (the alert's `location` "
            "label), or from anywhere if it has none.",
            runbook_base),
    })
    rules.append(misconfigured_rule(slo, time_scale, runbook_base))
    rules.append(cert_expiry_rule(net, cert_warning_s, time_scale, runbook_base))
    return rules


def misconfigured_rule(slo: NetworkSLO, time_scale: float = 1.0,
                       runbook_base: str = RUNBOOK_BASE) -> Rule:
    """A ticket for the operator while the network refuses the monitor's own key or account:
    those runs measure nothing (they are left out of availability), so the network goes
    unmeasured until someone fixes the key or adds credits. One alert per outcome (and per
    location: each place may hold its own key)."""
    net = slo.network
    window = max(MISCONFIGURED_WINDOW_INTERVALS * slo.interval_s, MISCONFIGURED_WINDOW_MIN_S)
    hold = max(MISCONFIGURED_FOR_INTERVALS * slo.interval_s, MISCONFIGURED_FOR_MIN_S)
    return {
        "alert": MISCONFIGURED_ALERT,
        "expr": f"sum by (location, outcome) (increase(depin_probe_failures_total"
                f'{{network="{net}",outcome=~"{NOT_JUDGED}"}}[{duration(window / time_scale)}]))'
                " > 0",
        "for": duration(hold / time_scale),
        "labels": {"severity": "ticket", "network": net, "sli": "probes"},
        "annotations": _annotations(
            MISCONFIGURED_ALERT,
            f"{net}: the monitor's own account is refused ({{{{ $labels.outcome }}}})",
            f"Runs against {net} keep ending in {{{{ $labels.outcome }}}} (for "
            f"{duration(hold)}): auth_error = the network refuses the monitor's API key "
            "(401/403), quota_exhausted = the account is out of credits or quota (402, or a "
            f"billing 429). Those runs measure nothing and are left out of {net}'s "
            "availability: fix the key or the credits, or the network goes unmeasured.",
            runbook_base),
    }


def cert_expiry_rule(net: str, warning_s: float, time_scale: float = 1.0,
                     runbook_base: str = RUNBOOK_BASE) -> Rule:
    """A certificate of the network's chain expires within `warning_s` (or has expired).
    The threshold is wall-clock time against timestamps: time_scale does not shrink it."""
    warning = duration(warning_s)
    return {
        "alert": CERT_EXPIRY_ALERT,
        "expr": f'depin_probe_tls_cert_expiry_timestamp_seconds{{network="{net}"}} - time() '
                f"< {_num(warning_s)}",
        "for": duration(CERT_EXPIRY_FOR_S / time_scale),
        "labels": {"severity": "ticket", "network": net, "sli": "certificate"},
        "annotations": _annotations(
            CERT_EXPIRY_ALERT,
            f"{net}: a TLS certificate expires within {warning}",
            f"The certificate chain {net} serves to target {{{{ $labels.target }}}} has a "
            f"certificate that expires in less than {warning}, or already has: once it does, "
            "every run is a connect_error. The network must renew it.",
            runbook_base),
    }


def prober_rules(time_scale: float = 1.0, runbook_base: str = RUNBOOK_BASE) -> list[Rule]:
    window = duration(300 / time_scale)
    lag = (f"histogram_quantile(0.99, sum by (location, instance, le) "
           f"(rate(depin_monitor_event_loop_lag_seconds_bucket[{window}]))) "
           f"> {_num(LOOP_LAG_P99_MAX_S)}")
    late = (f"histogram_quantile(0.9, sum by (location, instance, le) "
            f"(rate(depin_monitor_scheduling_lateness_seconds_bucket[{window}]))) "
            f"> {_num(LATENESS_P90_MAX_S)}")
    return [
        {
            "alert": OVERLOADED_ALERT,
            "expr": f"{lag}\nor\n{late}",
            "for": duration(600 / time_scale),
            "labels": {"severity": "ticket", "network": "all", "sli": "prober"},
            "annotations": _annotations(
                OVERLOADED_ALERT,
                "depin-monitor on {{ $labels.instance }} is overloaded",
                f"Event-loop lag p99 above {LOOP_LAG_P99_MAX_S:g}s or scheduling lateness p90 "
                f"above {LATENESS_P90_MAX_S:g}s for 10 minutes: its latency numbers are "
                "inflated by the prober itself and runs start late.",
                runbook_base),
        },
        {
            "alert": STORE_FAILING_ALERT,
            "expr": "depin_monitor_store_up == 0",
            "for": duration(STORE_FAILING_FOR_S / time_scale),
            "labels": {"severity": "ticket", "network": "all", "sli": "store"},
            "annotations": _annotations(
                STORE_FAILING_ALERT,
                "depin-monitor {{ $labels.instance }} cannot write its store",
                "No result could be written to the SQLite store for 5 minutes (disk full, "
                "read-only or locked file). Probing and /metrics go on; results wait in "
                "memory up to store.buffer_results, then the oldest are dropped.",
                runbook_base),
        },
        {
            "alert": STORE_FAILING_ALERT,
            "expr": f"increase(depin_monitor_results_dropped_total[{duration(600 / time_scale)}])"
                    " > 0",
            "labels": {"severity": "page", "network": "all", "sli": "store"},
            "annotations": _annotations(
                STORE_FAILING_ALERT,
                "depin-monitor {{ $labels.instance }} is losing results",
                "The store has failed for longer than its buffer lasts: results are being "
                "dropped unstored, and reports and the month SLA will have a gap.",
                runbook_base),
        },
        {
            # The monitor counts the tests (monitor.exporter.equality): the alarm is set after
            # `equality.consecutive` "differs" in a row, so on a network serving the reference
            # model it fires at most alpha^consecutive of the tests (docs/equality.md).
            "alert": MODEL_EQUALITY_ALERT,
            "expr": "depin_model_equality_alarm == 1",
            "labels": {"severity": "ticket", "sli": "model_equality"},
            "annotations": _annotations(
                MODEL_EQUALITY_ALERT,
                "{{ $labels.network }} ({{ $labels.model }}) answers unlike "
                "{{ $labels.reference }}",
                "The model equality tests of {{ $labels.network }}'s {{ $labels.model }} "
                "against {{ $labels.reference }} said 'differs' several times in a row "
                "(equality.consecutive): its completions come from another distribution. "
                "It may serve another, quantized or fine-tuned model, or change the prompt "
                "or decoding settings; a flag to investigate, not proof.",
                runbook_base),
        },
        {
            # The monitor sets the alarm from the latest fingerprint run
            # (monitor.exporter.fingerprint): "changed" or "differs from reference", each a
            # permutation test at level alpha, so an unchanged model raises it in at most
            # 2 alpha of the runs (docs/fingerprint.md); it holds until the next run.
            "alert": FINGERPRINT_ALERT,
            "expr": "depin_fingerprint_alarm == 1",
            "labels": {"severity": "ticket", "sli": "fingerprint"},
            "annotations": _annotations(
                FINGERPRINT_ALERT,
                "The model behind {{ $labels.network }}'s {{ $labels.model }} changed",
                "The fingerprint of {{ $labels.network }}'s {{ $labels.model }} (first "
                "tokens on its border inputs, temperature 0) moved away from its own recent "
                "runs or from its reference by more than its own nondeterminism explains. "
                "Another model, quantization, fine-tune, serving engine or GPU type; a model "
                "equality run has started. A flag to investigate, not proof.",
                runbook_base),
        },
        {
            "alert": MONITOR_DOWN_ALERT,
            "expr": f'up{{job="{MONITOR_JOB}"}} == 0',
            "for": duration(300 / time_scale),
            "labels": {"severity": "page", "network": "all", "sli": "prober"},
            "annotations": _annotations(
                MONITOR_DOWN_ALERT,
                "depin-monitor {{ $labels.instance }} cannot be scraped",
                "Prometheus has not scraped the monitor for 5 minutes: no network is measured.",
                runbook_base),
        },
    ]


def catalog_rules(time_scale: float = 1.0, runbook_base: str = RUNBOOK_BASE) -> list[Rule]:
    """A configured model the network no longer lists (monitor.catalog.watch): a config
    problem, raised once two checks in a row agree."""
    return [{
        "alert": CATALOG_ALERT,
        "expr": "depin_catalog_model_listed == 0",
        "for": duration(CHECK_EVERY_S / time_scale),
        "labels": {"severity": "ticket", "sli": "catalog"},
        "annotations": _annotations(
            CATALOG_ALERT,
            "{{ $labels.network }} no longer lists {{ $labels.model }}",
            "The {{ $labels.target }} model of {{ $labels.network }} is not in the network's "
            "model listing for an hour: its runs fail because the config names a model the "
            "network retired, not because the network is down. Fix the config.",
            runbook_base),
    }]


def generate(slos: Sequence[NetworkSLO], *, time_scale: float = 1.0,
             runbook_base: str = RUNBOOK_BASE,
             cert_warning_s: float = DEFAULT_CERT_EXPIRY_WARNING_S) -> dict[str, Any]:
    """The rule file as a dict: per network a recording group and an alert group."""
    if time_scale <= 0:
        raise ValueError("time_scale must be > 0")
    groups: list[Rule] = []
    for slo in slos:
        groups.append({"name": f"depin-slo-{slo.network}-recording",
                       "rules": recording_rules(slo, time_scale)})
        groups.append({"name": f"depin-slo-{slo.network}-locations",
                       "rules": location_rules(slo, time_scale)})
        groups.append({"name": f"depin-slo-{slo.network}-alerts",
                       "rules": alert_rules(slo, time_scale, runbook_base, cert_warning_s)})
    groups.append({"name": "depin-monitor-prober", "rules": prober_rules(time_scale, runbook_base)})
    groups.append({"name": "depin-catalog", "rules": catalog_rules(time_scale, runbook_base)})
    return {"groups": groups}


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:  # no &id001 anchors: plain, greppable YAML
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _header(source: str, runbook_base: str) -> str:
    header = (f"# Generated by `depin-monitor rules`{f' from {source}' if source else ''}. "
              "Do not edit: regenerate.\n")
    return header + (PLACEHOLDER_NOTE if runbook_base == RUNBOOK_PLACEHOLDER else "")


def render(slos: Sequence[NetworkSLO], *, source: str = "", time_scale: float = 1.0,
           runbook_base: str = RUNBOOK_BASE,
           cert_warning_s: float = DEFAULT_CERT_EXPIRY_WARNING_S) -> str:
    """The rule file as YAML text, with a header naming its source (deterministic)."""
    header = _header(source, runbook_base)
    if time_scale != 1.0:
        header += (f"# time_scale={time_scale:g}: windows and `for:` are divided by it; rule "
                   "names keep their nominal window. For tests only.\n")
    body = yaml.dump(generate(slos, time_scale=time_scale, runbook_base=runbook_base,
                              cert_warning_s=cert_warning_s),
                     Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)
    return header + body


def render_prometheus_rule(slos: Sequence[NetworkSLO], *, name: str = "depin-monitor-slos",
                           source: str = "", runbook_base: str = RUNBOOK_BASE,
                           cert_warning_s: float = DEFAULT_CERT_EXPIRY_WARNING_S) -> str:
    """The same rules as a Prometheus Operator PrometheusRule (monitoring.coreos.com/v1)."""
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "depin-monitor"}},
        "spec": generate(slos, runbook_base=runbook_base, cert_warning_s=cert_warning_s),
    }
    return _header(source, runbook_base) + yaml.dump(
        resource, Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)


def slos_from_config(config: Config) -> list[NetworkSLO]:
    """NetworkSLOs of the config's networks that name an SLA profile."""
    profiles = config.network_profiles()
    return [NetworkSLO(net.name, profiles[net.name], net.interval_s, config.quorum,
                       runs_per_interval=max(1, len(net.models) * len(net.jobs)))
            for net in config.networks if net.name in profiles]


def resolution_warnings(slos: Sequence[NetworkSLO]) -> list[str]:
    """One line per network and SLO whose probe rate cannot tell a network exactly at its
    objective from one burning at the fast page's rate (14.4x) within its window (1h): the
    page then needs a faster burn than that, and the line names the interval, or the jobs x
    tiers, that would resolve it (monitor/analysis/evidence.py, docs/sla.md)."""
    fast = BURN_TIERS[0]
    window_s = WINDOWS[fast.long]
    lines = []
    for slo in slos:
        for sli, objective in objectives(slo.profile).items():
            if sli not in BURN_ALERTS:
                continue
            budget = round(1 - objective, 12)
            r = resolution(slo.runs_in(window_s), budget, fast.factor)
            if r.resolved:
                continue
            # the longest interval, in whole seconds, and the fewest jobs x tiers that would
            interval = math.floor(window_s * slo.runs_per_interval / r.runs_needed) or 1
            tiers_jobs = math.ceil(r.runs_needed * slo.interval_s / window_s)
            lines.append(
                f"network {slo.network}, {SLI_DESCRIPTIONS[sli]} (objective "
                f"{objective * 100:.4g} %): "
                f"{r.runs} runs in {fast.long} cannot tell a network at its objective from one "
                f"burning at {fast.factor:g}x ({r.runs * fast.factor * budget:.2g} failures "
                f"expected): its page needs {r.minimum} failures in {fast.long}, a "
                f"{r.burn_needed:.0f}x burn. {r.runs_needed} runs in {fast.long} would: an "
                f"interval of {duration(interval)} ({slo.runs_per_interval} jobs x tiers), or "
                f"{tiers_jobs} jobs x tiers every {duration(slo.interval_s)}")
    return lines


def alerts_in(rules: dict[str, Any]) -> Iterable[str]:
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                yield rule["alert"]
