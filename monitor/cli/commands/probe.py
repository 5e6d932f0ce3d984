"""`depin-monitor probe`: one-shot probes of an endpoint (ad hoc) or of a config's networks.

Like curl with a stopwatch and a verdict: prints one row (or one JSON line) per run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

from rich.text import Text

from monitor.cli import ladder
from monitor.cli.commands import Subparsers
from monitor.cli.options import checked, count, seconds
from monitor.config import load_config
from monitor.core import numbers, values
from monitor.core.errors import UserError
from monitor.core.jobs import DEFAULT_JOB, JOBS_BY_NAME, STANDARD_JOBS, Job, get_job
from monitor.core.kinds import bind
from monitor.core.logs import scrub_logs
from monitor.core.params import query_problems
from monitor.core.result import TOKENS_COUNTED, TOKENS_REPORTED, ProbeResult
from monitor.core.tables import Cell, Column, console, say, show
from monitor.core.target import Target
from monitor.core.transport import TransportSettings
from probes import PROBES
from probes.base import probe_error_result
from probes.session import SessionPool
from probes.tls import TLSSettingsError, client_context

EXAMPLE = """\
examples:
  depin-monitor probe --url http://127.0.0.1:18081/v1 --model sim-llama-3.1-8b-instruct
  depin-monitor probe --url https://api.hyperbolic.xyz/v1 --model Qwen/Qwen2.5-72B-Instruct \\
      --api-key-env HYPERBOLIC_API_KEY --job chat-long-v1 --count 5 --json
  depin-monitor probe --kind ollama --url http://127.0.0.1:11434 --model llama3.1:8b
  depin-monitor probe -c examples/networks.yaml --network chutes --fail-on-error
  depin-monitor probe --url https://node.internal:8443/v1 --model m --cacert ca.pem \
      --cert monitor.pem --key monitor.key --proxy http://proxy.corp:3128 -6
  depin-monitor probe --capacity --url http://127.0.0.1:18082/v1 --model m --ladder 1,4,16,64
  depin-monitor probe --capacity -c examples/demo.yaml --network depin-steady
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "probe", help="probe an endpoint once (or N times) and print what it measured",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("what to probe (either a config or --url/--model)")
    src.add_argument("-c", "--config", help="config file; probes its networks")
    src.add_argument("--network", action="append", default=[],
                     help="with -c: only this network (repeatable)")
    src.add_argument("--url", help="ad hoc: the endpoint (for openai the base URL with /v1)")
    src.add_argument("--model", help="ad hoc: the model id to request")
    src.add_argument("--kind", default="openai", help="ad hoc: probe kind (default: openai)")
    src.add_argument("--api-key-env", metavar="VAR",
                     help="ad hoc: environment variable holding the API key (sent as Bearer)")
    net = p.add_argument_group("ad hoc TLS and transport (a config sets these per network)")
    net.add_argument("--cacert", metavar="PEM", help="trust this CA bundle instead of the system's")
    net.add_argument("--cert", metavar="PEM", help="client certificate (mTLS; may hold the key)")
    net.add_argument("--key", metavar="PEM", help="the client certificate's key, if separate")
    net.add_argument("--key-password-env", metavar="VAR",
                     help="environment variable holding the key's password")
    net.add_argument("--server-name", metavar="NAME",
                     help="TLS server name (SNI) the certificate must carry")
    net.add_argument("-k", "--insecure", action="store_true",
                     help="do not verify the certificate (loudly; prefer --cacert)")
    net.add_argument("--proxy", metavar="URL",
                     help="proxy URL, or `direct` (default: HTTPS_PROXY/NO_PROXY)")
    family = net.add_mutually_exclusive_group()
    family.add_argument("-4", dest="ip_preference", action="store_const", const="ipv4",
                        help="prefer IPv4 (the other family only if IPv4 fails)")
    family.add_argument("-6", dest="ip_preference", action="store_const", const="ipv6",
                        help="prefer IPv6")
    p.add_argument("--job", action="append", default=[],
                   help=f"job to run (repeatable; default {DEFAULT_JOB}; see `depin-monitor jobs`)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the output check (for endpoints serving arbitrary models)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="total deadline per run in seconds (overrides the job's)")
    p.add_argument("--count", type=int, default=1, help="runs per target and job (default 1)")
    p.add_argument("--concurrency", type=int, default=1,
                   help="runs in flight at once per target (default 1)")
    p.add_argument("--json", action="store_true", help="one JSON object per result per line")
    p.add_argument("--wide", action="store_true",
                   help="add HTTP status, largest token gap, serving node and error columns")
    p.add_argument("--fail-on-error", action="store_true",
                   help="exit 1 unless every outcome is ok (--capacity: every step held)")
    ladder.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    count("--count", args.count, hi=1_000_000)
    count("--concurrency", args.concurrency, hi=1000)  # as a network's concurrency
    args.timeout = seconds("--timeout", args.timeout)
    ladder.check_arguments(args)
    plan, location = _plan_from_config(args) if args.config else (_plan_ad_hoc(args), "")
    if args.capacity:
        return ladder.run(args, plan)
    results = asyncio.run(probe_all(plan, count=args.count, concurrency=args.concurrency,
                                    on_result=_json_line if args.json else None,
                                    location=location))
    if not args.json:
        print_table(results, wide=args.wide)
    if args.fail_on_error and not all(r.ok for r in results):
        return 1
    return 0


def _adjust(job: Job, args: argparse.Namespace) -> Job:
    if args.timeout is not None:
        job = dataclasses.replace(job, deadline_s=args.timeout,
                                  stall_s=min(job.stall_s, args.timeout))
    return job


def _jobs_for(names: Sequence[str], kind: str, args: argparse.Namespace,
              custom: Mapping[str, Job] | None = None) -> list[Job]:
    speaks = PROBES[kind].requests
    if not names:
        default = get_job(DEFAULT_JOB)
        if default.request not in speaks:
            default = next(j for j in STANDARD_JOBS if j.request in speaks)
        names = [default.name]
    jobs = []
    for name in names:
        try:
            job = get_job(name, custom)
        except KeyError:
            known = ", ".join(JOBS_BY_NAME)
            raise UserError(f"--job {name!r} is not a known job; choose one of: {known}"
                            ) from None
        if job.request not in speaks:
            raise UserError(f"--job {name!r} is a {job.request} job, which kind {kind!r} does "
                            f"not speak; pick a job of: {', '.join(sorted(speaks))}")
        jobs.append(_adjust(job, args))
    return jobs


def _bound(job: Job, target: Target) -> Job:
    """The job with the settings the target's kind reads, typed (monitor.core.kinds.bind); a
    custom job's setting that this kind cannot use is refused before any run."""
    try:
        return bind(job, target.kind, target.base_url)
    except ValueError as exc:
        raise UserError(f"--job {job.name!r}: params.{exc}") from None


def _plan_ad_hoc(args: argparse.Namespace) -> list[tuple[Target, Job]]:
    if not args.url or not args.model:
        raise UserError("give either -c CONFIG, or both --url URL and --model MODEL "
                        "(e.g. --url http://127.0.0.1:18081/v1 --model sim-llama-3.1-8b-instruct)")
    if args.network:
        raise UserError("--network selects networks of a config; use it with -c CONFIG")
    if args.kind not in PROBES:
        raise UserError(f"--kind {args.kind!r} is unknown; choose one of: "
                        f"{', '.join(sorted(PROBES))}")
    checked("--url", lambda url: values.url_parts(
        url, expected=f"an http(s) URL; expected {PROBES[args.kind].url_hint}",
        with_credentials="must not carry credentials; pass the key with --api-key-env VAR"),
        args.url)
    parts = urlsplit(args.url)
    kind = PROBES[args.kind]
    problems = query_problems(kind.params, args.url) if kind.query_params else []
    if problems:
        raise UserError(f"--url: query {'; '.join(problems)}")
    if args.api_key_env and not os.environ.get(args.api_key_env):
        raise UserError(f"--api-key-env {args.api_key_env}: that variable is not set; "
                        f"export {args.api_key_env}=<your key> first")
    target = Target(network=parts.hostname, name="adhoc", kind=args.kind,
                    base_url=args.url.rstrip("/"), model=args.model,
                    api_key_env=args.api_key_env, concurrency=args.concurrency,
                    check_output=not args.no_check, transport=_transport(args))
    scrub_logs(target.secrets())
    return [(target, _bound(job, target)) for job in _jobs_for(args.job, args.kind, args)]


def _transport(args: argparse.Namespace) -> TransportSettings:
    """The ad hoc transport flags, checked like a config's tls section."""
    if args.key and not args.cert:
        raise UserError("--key needs --cert (the client certificate)")
    if args.insecure and args.cacert:
        raise UserError("--insecure turns verification off, so --cacert would be ignored; "
                        "drop one")
    if args.proxy is not None:
        checked("--proxy", values.proxy_url, args.proxy)
    if args.server_name is not None:
        checked("--server-name", values.server_name, args.server_name)
    for option, var in (("--api-key-env", args.api_key_env),
                        ("--key-password-env", args.key_password_env)):
        if var is not None:
            checked(option, values.env_name, var)
    if args.key_password_env and not os.environ.get(args.key_password_env):
        raise UserError(f"--key-password-env {args.key_password_env}: that variable is not "
                        f"set; export {args.key_password_env}=<the key's password> first")
    settings = TransportSettings(
        ca_file=args.cacert, cert_file=args.cert, key_file=args.key,
        key_password_env=args.key_password_env, server_name=args.server_name,
        insecure=args.insecure, proxy=args.proxy, ip_preference=args.ip_preference)
    try:
        client_context(settings)
    except TLSSettingsError as exc:
        flag = {"ca_file": "--cacert", "cert_file": "--cert", "key_file": "--key"}[exc.field]
        hint = str(exc).replace("tls.key_password_env", "--key-password-env")
        raise UserError(f"{flag}: {hint}") from None
    if settings.insecure:
        print("depin-monitor: warning: --insecure: the certificate is NOT verified",
              file=sys.stderr)
    return settings


def _plan_from_config(args: argparse.Namespace) -> tuple[list[tuple[Target, Job]], str]:
    """The config's (target, job) pairs to probe, and its `location` (recorded with each run,
    as `run` records it)."""
    if args.url or args.model:
        raise UserError("give either -c CONFIG or --url/--model, not both")
    config = load_config(args.config)
    wanted = set(args.network)
    known = {t.network for t in config.targets()}
    for name in wanted - known:
        raise UserError(f"--network {name!r} is not in {args.config}; it has: "
                        f"{', '.join(sorted(known))}")
    plan: list[tuple[Target, Job]] = []
    seen: set[tuple[str, str]] = set()
    for target, job, _interval in config.schedules():
        if wanted and target.network not in wanted:
            continue
        if args.no_check:
            target = dataclasses.replace(target, check_output=False)
        if args.job:
            jobs = [_bound(j, target) for j in _jobs_for(args.job, target.kind, args, config.jobs)]
        else:
            jobs = [_adjust(job, args)]
        for j in jobs:
            if (target.key, j.name) not in seen:
                seen.add((target.key, j.name))
                plan.append((target, j))
    missing = sorted({t.api_key_env for t, _ in plan if t.api_key_env and not t.api_key()})
    if missing:
        raise UserError(f"{args.config}: API key variable(s) not set: {', '.join(missing)}; "
                        "export them, or select other networks with --network")
    return plan, config.location


async def probe_all(plan: Sequence[tuple[Target, Job]], *, count: int = 1,
                    concurrency: int = 1,
                    on_result: Callable[[ProbeResult], None] | None = None,
                    location: str = "") -> list[ProbeResult]:
    """Run every (target, job) `count` times, at most `concurrency` at once per target; each
    result carries `location` (where the config says this agent runs)."""
    pool = SessionPool()
    limits: dict[str, asyncio.Semaphore] = {}
    results: list[ProbeResult] = []

    async def one(target: Target, job: Job) -> None:
        sem = limits.setdefault(target.key, asyncio.Semaphore(concurrency))
        async with sem:
            session = pool.for_target(target, concurrency=concurrency)
            wall, start = time.time(), time.perf_counter()
            try:
                result = await PROBES[target.kind].run(target, job, session)
            except Exception as exc:  # a probe bug: a malformed row, not a traceback
                result = probe_error_result(target, job, wall, time.perf_counter() - start, exc)
        result = result.scrubbed(target.secrets())  # before it is printed, in any form
        if location:
            result = dataclasses.replace(result, location=location)
        results.append(result)
        if on_result:
            on_result(result)

    try:
        await asyncio.gather(*(one(t, j) for t, j in plan for _ in range(count)))
    finally:
        await pool.close()
    return results


def _json_line(result: ProbeResult) -> None:
    sys.stdout.write(json.dumps(result.to_dict(), separators=(",", ":")) + "\n")
    sys.stdout.flush()


COMPACT = (Column("target"), Column("job"), Column("outcome"), Column("TTFT\nms", right=True),
           Column("E2E\nms", right=True), Column("tokens", right=True),
           Column("tok/s", right=True))
WIDE = (*COMPACT, Column("http", right=True), Column("max gap\nms", right=True),
        Column("served by", wrap=True), Column("error", wrap=True))


def print_table(results: Sequence[ProbeResult], wide: bool = False) -> None:
    """One row a run; in the compact layout each failure's reason on its own line below."""
    rows: list[list[Cell]] = []
    for r in results:
        row: list[Cell] = [
            f"{r.network}/{r.target}", r.job, Text(r.outcome.value,
                                                   style="green" if r.ok else "red"),
            numbers.milliseconds(r.ttft_s), numbers.milliseconds(r.duration_s),
            "-" if r.output_tokens is None else f"{r.output_tokens}"
            + ("" if r.token_source == TOKENS_REPORTED else "*"),
            "-" if r.tokens_per_s is None else f"{r.tokens_per_s:.1f}"]
        if wide:
            row += [str(r.http_status or "-"), numbers.milliseconds(r.max_gap_s),
                    r.node or r.served_model or "-", r.error or ""]
        rows.append(row)
    out = console()
    show(out, WIDE if wide else COMPACT, rows)
    if not wide:
        for i, r in enumerate(results, start=1):
            if r.error:
                say(out, f"run {i} ({r.network}/{r.target} {r.job}): {r.error}")
    ok = sum(r.ok for r in results)
    note = ""
    if any(r.token_source == TOKENS_COUNTED for r in results):
        note = "  (* tokens counted from content deltas: the server reported no usage)"
    say(out, f"{ok}/{len(results)} ok{note}")
