"""`depin-monitor rules`: Prometheus recording and burn-rate alert rules from a config's SLAs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from monitor.cli.commands import Subparsers
from monitor.cli.keys import add_env_file_argument, apply_key_policy, load_env_file
from monitor.cli.options import checked
from monitor.cli.paths import check_output
from monitor.config import load_config
from monitor.core.errors import UserError
from monitor.core.tables import say
from monitor.core.values import runbook_url
from monitor.exporter.rules import (
    RUNBOOK_PLACEHOLDER,
    render,
    render_prometheus_rule,
    resolution_warnings,
    slos_from_config,
)

EXAMPLE = """\
examples:
  depin-monitor rules -c examples/demo.yaml -o deploy/prometheus/rules/demo.yml
  depin-monitor rules -c examples/networks.yaml --check deploy/prometheus/rules/networks.yml
  promtool check rules deploy/prometheus/rules/demo.yml
  depin-monitor rules -c examples/networks.yaml --skip-missing-keys -o catalog.yml
  depin-monitor rules -c config.yaml --env-file /etc/depin-monitor/env --skip-missing-keys
  depin-monitor rules -c examples/networks.yaml --format prometheusrule | kubectl apply -f -
  depin-monitor rules -c monitor.yaml --runbook-base https://wiki.example.com/depin/runbooks

Per network: slo:sli_error:ratio_rate{5m,30m,1h,2h,6h,1d,3d} for each SLI of its profile,
Sloth's objective/budget/period rules, and multiwindow multi-burn-rate alerts (page 14.4x 1h/5m
and 6x 6h/30m; ticket 3x 1d/2h and 1x 3d/6h), and a ticket when a TLS certificate of the
network expires within the config's `cert_expiry_warning` (default 14d). Each tier fires only
once its long window holds the minimum failures of its runs (docs/sla.md): a network whose
probe rate cannot resolve the 14.4x page in 1h is named on stderr, with the interval that
would. See docs/sla.md and docs/runbooks.md.
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "rules", help="generate Prometheus recording and alert rules for the SLA profiles",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-c", "--config", required=True, help="the monitor's YAML config")
    p.add_argument("-o", "--output", help="write the rules to this file (default: stdout)")
    p.add_argument("--check", metavar="FILE",
                   help="exit 1 if FILE differs from what would be generated (CI)")
    p.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                   help="divide every window and `for:` by X (tests only; default 1)")
    p.add_argument("--format", choices=("rules", "prometheusrule"), default="rules",
                   help="a Prometheus rule file (default), or the same rules wrapped in a "
                        "Prometheus Operator PrometheusRule resource")
    p.add_argument("--skip-missing-keys", action="store_true",
                   help="leave out networks whose api_key_env is not set, as `run "
                        "--skip-missing-keys` does (else they would page DepinProbesStopped)")
    p.add_argument("--runbook-base", metavar="URL",
                   help="where you host docs/runbooks.md, for the alerts' runbook_url "
                        "(default: the config's alerting.runbook_url; unset: a placeholder "
                        "that says so)")
    add_env_file_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.time_scale < 1e6:  # also NaN and infinity
        raise UserError(f"--time-scale {args.time_scale}: must be a number greater than 0 "
                        "(and below 1e6)")
    if args.output:
        check_output(args.output, make_folders=True)
    if args.runbook_base is not None:
        checked("--runbook-base", runbook_url, args.runbook_base)
    load_env_file(args)
    if args.format == "prometheusrule" and args.time_scale != 1.0:
        raise UserError("--time-scale is for tests; it cannot make a PrometheusRule")
    config = load_config(args.config)
    if args.skip_missing_keys:
        config = apply_key_policy(config, skip=True)
    slos = slos_from_config(config)
    if not slos:
        raise UserError(f"{args.config}: no network has an SLA profile; nothing to generate")
    err = Console(stderr=True, highlight=False)  # wrapped in a terminal, one line elsewhere
    for line in resolution_warnings(slos):
        say(err, f"depin-monitor: warning: {args.config}: {line}")
    runbook_base = args.runbook_base or config.runbook_url
    if not runbook_base:
        runbook_base = RUNBOOK_PLACEHOLDER
        print(f"depin-monitor: warning: {args.config}: alerting.runbook_url is not set; the "
              f"alerts link to the placeholder {RUNBOOK_PLACEHOLDER}. Set it to where you "
              "host docs/runbooks.md, or pass --runbook-base URL", file=sys.stderr)
    if args.format == "prometheusrule":
        text = render_prometheus_rule(slos, source=Path(args.config).as_posix(),
                                      runbook_base=runbook_base,
                                      cert_warning_s=config.cert_expiry_warning_s)
    else:
        text = render(slos, source=Path(args.config).as_posix(), time_scale=args.time_scale,
                      runbook_base=runbook_base,
                      cert_warning_s=config.cert_expiry_warning_s)
    if args.check:
        try:
            current = Path(args.check).read_text()
        except OSError as exc:
            raise UserError(f"--check {args.check}: {exc.strerror}") from None
        if current != text:
            print(f"{args.check} is out of date; regenerate it with:\n  depin-monitor rules "
                  f"-c {args.config} -o {args.check}", file=sys.stderr)
            return 1
        print(f"{args.check} is up to date")
        return 0
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(f"wrote {args.output}: {text.count('- record:')} recording rules, "
              f"{text.count('- alert:')} alerts", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
