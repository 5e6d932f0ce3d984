"""`depin-monitor check`: validate a config and print what it would monitor.

Exit 0 if the config is valid (missing API key variables are warnings), 2 with one line per
mistake otherwise.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from monitor.cli.commands import Subparsers
from monitor.cli.keys import add_env_file_argument, load_env_file
from monitor.config import Config, Network, load_config
from monitor.core.capacity import cost_bound
from monitor.core.numbers import setting
from monitor.core.tables import Column, console, say, show
from monitor.core.times import format_duration
from monitor.exporter.rules import resolution_warnings, slos_from_config

EXAMPLE = """\
examples:
  depin-monitor check -c examples/demo.yaml
  depin-monitor check -c examples/networks.yaml
  depin-monitor check -c /etc/depin-monitor/config.yaml --env-file /etc/depin-monitor/env
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "check", help="validate a config and summarise what it would monitor",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-c", "--config", required=True, help="the monitor's YAML config")
    add_env_file_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    load_env_file(args)
    config = load_config(args.config)
    out = console()
    for line in _head(config):
        say(out, line)
    say(out)
    show(out, NETWORK_COLUMNS, [_network_row(net) for net in config.networks])
    say(out)
    show(out, TIER_COLUMNS, [[net.name, tier, model] for net in config.networks
                             for tier, model in net.models])
    notes = _notes(config)
    if notes:
        say(out)
    for line in notes:
        say(out, line)
    err = Console(stderr=True, highlight=False)  # wrapped in a terminal, one line elsewhere
    for line in resolution_warnings(slos_from_config(config)):  # stderr: the exit code stays
        say(err, f"depin-monitor: warning: {config.path}: {line}")
    return 0


# Two tables, so that each fits a terminal 80 columns wide: one row a network (its jobs wrap),
# then one a model tier (a long model id wraps rather than being cut). In a pipe, one line a row.
NETWORK_COLUMNS = (Column("network"), Column("kind"), Column("every", right=True),
                   Column("sla"), Column("jobs", wrap=True))
TIER_COLUMNS = (Column("network"), Column("tier"), Column("model", wrap=True))


def _network_row(net: Network) -> list[str]:
    return [net.name, net.kind, format_duration(net.interval_s), net.sla or "-",
            ", ".join(net.jobs)]


def _head(config: Config) -> list[str]:
    schedules = config.schedules()
    per_hour = sum(3600.0 / interval for _, _, interval in schedules)
    lines = [f"{config.path}: ok",
             f"location {config.location}; {len(config.networks)} networks, "
             f"{len(config.targets())} targets, {len(schedules)} schedules "
             f"(~{per_hour:.0f} runs/hour); global concurrency {config.concurrency}"]
    if config.disabled:
        lines.append(f"disabled: {', '.join(config.disabled)}")
    return lines


def _notes(config: Config) -> list[str]:
    """What the table does not show: transports, SLA profiles, ladders, equality, warnings."""
    lines = [f"{net.name} transport: {net.transport.describe()}"
             for net in config.networks if net.transport.describe()]
    used = sorted({n.sla for n in config.networks if n.sla})
    for name in used:
        p = config.profiles[name]
        lines.append(f"SLA {name}: availability {setting(p.availability, '%', 100)}, "
                     f"TTFT p95 {setting(p.ttft_p95_s, 's')}, E2E p99 "
                     f"{setting(p.e2e_p99_s, 's')}, disconnects "
                     f"{setting(p.disconnect_rate, '%', 100)}, decode >= "
                     f"{p.decode_tps_min or '-'} tok/s, window {p.window_days} d")
    lines += _capacity_lines(config)
    if config.equality is not None:
        eq = config.equality.settings
        lines.append(
            f"model equality: {len(config.equality.comparisons)} comparisons every "
            f"{format_duration(eq.interval_s)} ({eq.prompts} prompts x {eq.samples_per_prompt} "
            f"samples of {eq.prompt_set}, temperature {eq.temperature:g}, first {eq.chars} "
            f"chars); differs below p {eq.alpha:g}, alert after {eq.consecutive} in a row "
            f"(false alarms <= {eq.alpha ** eq.consecutive:.2g} a test); per network and run "
            f"<= {eq.max_requests} requests and ${eq.max_spend_usd:g}")
    if config.quality is not None:
        qa = config.quality.settings
        lines.append(
            f"quality: {len(config.quality.comparisons)} comparisons every "
            f"{format_duration(qa.interval_s)} ({qa.items} items of {qa.suite}: "
            f"{len(qa.families)} families, difficulties "
            f"{'/'.join(map(str, qa.difficulties))}; temperature 0, max_tokens "
            f"{qa.max_tokens}); worse below one-sided p {qa.alpha:g}, alert after "
            f"{qa.consecutive} in a row; per network and audit <= {qa.max_requests} requests "
            f"and ${qa.max_spend_usd:g}")
    if config.contract is not None:
        ct = config.contract.settings
        ref = config.contract.reference
        lines.append(
            f"API contract: {len(config.contract.targets)} network models every "
            f"{format_duration(ct.interval_s)} ({ct.suite} streamed and not, "
            f"{len(ct.params)} parameters{f'; reference {ref[0]}' if ref else ''}); per "
            f"network and run {ct.planned_requests()} requests (cap {ct.max_requests}) and "
            f"<= ${ct.max_spend_usd:g}")
    if config.fingerprint is not None:
        fp = config.fingerprint.settings
        refs = ", ".join(sorted({t.reference for t in config.fingerprint.targets
                                 if t.reference}))
        against = f" (reference {refs}, sampled in the same run)" if refs else ""
        lines.append(
            f"fingerprint: {len(config.fingerprint.targets)} network models{against} every "
            f"{format_duration(fp.interval_s)} ({fp.border_inputs} border inputs x "
            f"{fp.samples_per_input} samples, or x {fp.logprob_samples} with top_logprobs, "
            f"one token each); changed below p {fp.alpha:g} (false alarms <= {fp.alpha:g} a "
            f"run); per network and run <= {fp.max_requests} requests and "
            f"${fp.max_spend_usd:g}, per discovery <= {fp.discovery_max_requests} and "
            f"${fp.discovery_max_spend_usd:g}")
    if config.jobs:
        lines.append(f"custom jobs: {', '.join(config.jobs)}")
    if config.maintenance:
        lines.append(f"maintenance windows: {len(config.maintenance)}")
    if used and not config.runbook_url:
        lines.append("warning: alerting.runbook_url is not set: the alerts from `depin-monitor "
                     "rules` link to a placeholder. Host docs/runbooks.md where your on-call "
                     "can open it (a wiki, your Git host) and set alerting.runbook_url to its "
                     "URL")
    for net in config.networks:
        if net.transport.insecure:
            lines.append(f"warning: network {net.name}: tls.insecure is on: its certificates "
                         "are NOT verified (anyone on the path can pose as it); trust its CA "
                         "with tls.ca_file instead")
    for name, var in config.missing_keys():
        lines.append(f"warning: network {name}: environment variable {var} is not set; `run` "
                     "refuses to start without it (or skips the network with "
                     "--skip-missing-keys)")
    return lines


def _capacity_lines(config: Config) -> list[str]:
    """Each capacity ladder and what it may cost: the hard limits, and at most how much a
    month at its interval (docs/capacity.md)."""
    lines = []
    for schedule in config.capacity_schedules():
        s = schedule.settings
        bound = cost_bound(schedule.job, schedule.price)
        requests = min(s.limits.max_requests, s.requests_needed())
        month = 30 * 86400 / s.interval_s
        spend = "no price: spend not bounded in USD"
        if bound is not None:
            ladder = requests * bound
            if s.limits.max_spend_usd is not None:
                ladder = min(ladder, s.limits.max_spend_usd)
            spend = f"at most ${ladder:.4f} a ladder, ${ladder * month:.2f} a month"
        lines.append(f"capacity {schedule.key}: {'/'.join(map(str, s.ladder))} streams of "
                     f"{schedule.job.name} every {format_duration(s.interval_s)}; at most "
                     f"{requests} requests ({s.limits.max_concurrency} in flight), {spend}")
    for name in sorted({n.sla for n in config.networks if n.sla and n.capacity}):
        item = config.profiles[name].capacity
        if item is not None:
            lines.append(f"SLA {name} capacity: sustains {item.streams} streams in "
                         f"{item.ladders:.0%} of ladders")
    return lines
