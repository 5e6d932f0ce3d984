"""`depin-monitor probe --capacity`: climb one concurrency ladder per target, ad hoc, and print
its curve (docs/capacity.md). The probe command's arguments and plan, the ladder's settings
from the config or the flags, and the table.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from monitor.cli.options import checked, count
from monitor.config import CapacityModel, Config, Network, load_config
from monitor.core import numbers
from monitor.core.capacity import (
    DEFAULT_JOB,
    CapacityLimits,
    CapacitySchedule,
    CapacitySettings,
    Ladder,
    Step,
    StepCriteria,
    cost_bound,
    parse_ladder,
)
from monitor.core.errors import UserError
from monitor.core.jobs import CHAT, COMPLETION, Job, get_job
from monitor.core.kinds import bind
from monitor.core.slaprofile import BUILTIN_PROFILES, ENTERPRISE, SLAProfile
from monitor.core.tables import Cell, Column, console, say, show
from monitor.core.target import Target
from monitor.core.times import parse_duration
from monitor.core.values import money
from monitor.runtime.capacity import run_ladder
from probes import PROBES

AD_HOC = CapacitySettings(step_s=10.0)  # an engineer at a terminal: 10 s steps


def add_arguments(p: argparse.ArgumentParser) -> None:
    cap = p.add_argument_group(
        "capacity ladder (--capacity; docs/capacity.md): the steps send real requests, within "
        "hard limits")
    cap.add_argument("--capacity", action="store_true",
                     help="climb a concurrency ladder per target and print the curve")
    cap.add_argument("--ladder", metavar="N,N,...",
                     help="concurrent streams per step (default: the config's, else 1,4,16,64)")
    cap.add_argument("--step-duration", metavar="DURATION",
                     help="how long a step sends new requests (default: the config's, else 10s)")
    cap.add_argument("--requests-per-stream", type=int, metavar="N",
                     help="most requests a stream sends in a step (default 2)")
    cap.add_argument("--max-concurrency", type=int, metavar="N",
                     help="hard limit: requests in flight (default: the top step)")
    cap.add_argument("--max-requests", type=int, metavar="N",
                     help="hard limit: requests per ladder (default: what the ladder needs)")
    cap.add_argument("--max-spend", type=float, metavar="USD",
                     help="hard limit: worst-case spend per ladder (needs a price)")
    cap.add_argument("--price", metavar="IN,OUT",
                     help="ad hoc: USD per million input and output tokens, e.g. 0.1,0.3")
    cap.add_argument("--profile", metavar="NAME",
                     help="SLA profile a step must meet (default: the network's, else "
                          "enterprise)")


def check_arguments(args: argparse.Namespace) -> None:
    """Capacity flags without --capacity, or probe flags that mean nothing to a ladder."""
    flags = {"--ladder": args.ladder, "--step-duration": args.step_duration,
             "--requests-per-stream": args.requests_per_stream,
             "--max-concurrency": args.max_concurrency, "--max-requests": args.max_requests,
             "--max-spend": args.max_spend, "--price": args.price, "--profile": args.profile}
    given = [flag for flag, value in flags.items() if value is not None]
    if given and not args.capacity:
        raise UserError(f"{', '.join(given)} only apply to a ladder; add --capacity")
    if args.capacity and (args.count != 1 or args.concurrency != 1):
        raise UserError("--count and --concurrency do not apply to --capacity: the ladder "
                        "sets the concurrency (--ladder) and the requests (--max-requests)")
    if args.capacity and len(args.job) > 1:
        raise UserError("--capacity climbs with one job; give one --job")


def run(args: argparse.Namespace, plan: Sequence[tuple[Target, Job]]) -> int:
    """Climb a ladder per target of the probe's plan, one after another; print each."""
    config = load_config(args.config) if args.config else None
    schedules = _schedules(args, plan, config)
    ladders = []
    out = console()
    for schedule in schedules:
        _announce(schedule)
        ladder = asyncio.run(run_ladder(schedule.target, schedule.job, schedule.settings,
                                        schedule.criteria, price=schedule.price,
                                        location=config.location if config else ""))
        ladders.append(ladder)
        if args.json:
            print(json.dumps(ladder_json(ladder), separators=(",", ":")), flush=True)
        else:
            print_ladder(ladder, out)
    if args.fail_on_error and not all(ladder.knee is None and ladder.stopped.value == "top"
                                      for ladder in ladders):
        return 1
    return 0


def _announce(schedule: CapacitySchedule) -> None:
    """What is about to climb, on stderr (wrapped in a terminal, one line elsewhere)."""
    s = schedule.settings
    spend = "" if s.limits.max_spend_usd is None else f", ${s.limits.max_spend_usd:g}"
    say(Console(stderr=True, highlight=False),
        f"climbing {schedule.key} with {schedule.job.name}: "
        f"{'/'.join(map(str, s.ladder))} streams, {s.step_s:g} s a step (limits: "
        f"{s.limits.max_concurrency} in flight, {s.limits.max_requests} requests{spend})")


def _schedules(args: argparse.Namespace, plan: Sequence[tuple[Target, Job]],
               config: Config | None) -> list[CapacitySchedule]:
    out: list[CapacitySchedule] = []
    seen: set[str] = set()
    for target, job in plan:
        if target.key in seen:
            continue
        seen.add(target.key)
        network = _network(config, target)
        base = network.capacity if network and network.capacity else AD_HOC
        if not args.job and network is not None and network.capacity is not None:
            assert config is not None
            job = config.bound_job(network.capacity.job, network)
        elif not args.job:
            job = bind(get_job(DEFAULT_JOB), target.kind, target.base_url)
        if job.request not in (CHAT, COMPLETION) or job.request not in PROBES[target.kind].requests:
            raise UserError(f"--job {job.name!r} is a {job.request} job; a ladder streams text: "
                            f"give a chat or completion job, e.g. --job {DEFAULT_JOB}")
        if args.timeout is not None:
            job = dataclasses.replace(job, deadline_s=args.timeout,
                                      stall_s=min(job.stall_s, args.timeout))
        price = _price(args, network.price_per_mtok if network else None)
        settings = _settings(args, base, job, price)
        profile = _profile(args, config, network.sla if network else None)
        out.append(CapacitySchedule(target, job, settings, StepCriteria.for_profile(profile),
                                    price))
    return out


def _network(config: Config | None, target: Target) -> Network | None:
    return config.network(target.network) if config is not None else None


def _price(args: argparse.Namespace, configured: Mapping[str, float] | None
           ) -> Mapping[str, float] | None:
    if args.price is None:
        return configured
    parts = args.price.split(",")
    try:
        values = [money(float(p)) for p in parts]
    except ValueError:
        values = []
    if len(values) != 2:
        raise UserError(f"--price {args.price!r}: write USD per million input and output "
                        "tokens, e.g. 0.1,0.3")
    return {"input": values[0], "output": values[1]}


def _settings(args: argparse.Namespace, base: CapacitySettings, job: Job,
              price: Mapping[str, float] | None) -> CapacitySettings:
    try:
        ladder = parse_ladder(args.ladder) if args.ladder else base.ladder
    except ValueError as exc:
        raise UserError(f"--ladder {exc}") from None
    try:
        step_s = parse_duration(args.step_duration) if args.step_duration else base.step_s
    except ValueError as exc:
        raise UserError(f"--step-duration {exc}") from None
    # the config's bounds; a flag not given is None (0 is refused, never "unset")
    per_stream = count("--requests-per-stream", args.requests_per_stream, hi=1000)
    max_concurrency = count("--max-concurrency", args.max_concurrency, hi=10_000)
    max_requests = count("--max-requests", args.max_requests)
    per_stream = base.requests_per_stream if per_stream is None else per_stream
    changed = args.ladder is not None or args.requests_per_stream is not None
    concurrency = max_concurrency if max_concurrency is not None else (
        ladder[-1] if changed else base.limits.max_concurrency)
    requests = max_requests if max_requests is not None else (
        sum(ladder) * per_stream if changed else base.limits.max_requests)
    spend = (checked("--max-spend", lambda v: money(v, positive=True), args.max_spend)
             if args.max_spend is not None else base.limits.max_spend_usd)
    for flag, value in (("--requests-per-stream", per_stream), ("--max-concurrency", concurrency),
                        ("--max-requests", requests)):
        if value < 1:
            raise UserError(f"{flag} {value}: must be at least 1")
    if ladder[-1] > concurrency:
        raise UserError(f"--max-concurrency {concurrency} is below the ladder's top step "
                        f"({ladder[-1]} streams); raise it or shorten --ladder")
    if sum(ladder) > requests:
        raise UserError(f"--max-requests {requests}: the ladder needs at least {sum(ladder)} "
                        "(one request a stream a step)")
    if spend is not None:
        bound = cost_bound(job, price)
        if bound is None:
            raise UserError("--max-spend needs a price: --price IN,OUT (USD per million "
                            "tokens) or the network's price_per_mtok in the config")
        if spend <= 0 or sum(ladder) * bound > spend:
            raise UserError(f"--max-spend {spend:g}: one request a stream a step may cost "
                            f"${sum(ladder) * bound:.4f} (worst case); raise it or shorten "
                            "--ladder")
    derived = {name for name, given in (("max_concurrency", max_concurrency),
                                        ("max_requests", max_requests)) if given is None}
    _within_config_bounds(ladder, step_s, per_stream, concurrency, requests, spend, derived)
    return dataclasses.replace(base, ladder=ladder, step_s=step_s, requests_per_stream=per_stream,
                               limits=CapacityLimits(concurrency, requests, spend), job=job.name)


_FLAGS = {"ladder": "--ladder", "step_duration": "--step-duration",
          "requests_per_stream": "--requests-per-stream", "max_concurrency": "--max-concurrency",
          "max_requests": "--max-requests", "max_spend": "--max-spend"}


def _within_config_bounds(ladder: tuple[int, ...], step_s: float, per_stream: int,
                          concurrency: int, requests: int, spend: float | None,
                          derived: set[str]) -> None:
    """The ladder as the flags make it, checked by the config's own validator (a network's
    `capacity:`), so that no flag reaches what the config refuses (a top step of a million
    streams). A limit in `derived` was not given but derived from the ladder."""
    try:
        CapacityModel(ladder=list(ladder), step_duration=step_s, requests_per_stream=per_stream,
                      max_concurrency=concurrency, max_requests=requests, max_spend=spend)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = "--ladder" if field in derived else _FLAGS.get(field, "--ladder")
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise UserError(f"{flag}: {msg} (the bound a config's capacity: section has)"
                        ) from None


def _profile(args: argparse.Namespace, config: Config | None, network_sla: str | None
             ) -> SLAProfile:
    profiles = dict(config.profiles) if config else dict(BUILTIN_PROFILES)
    name = args.profile or network_sla
    if name is None:
        return ENTERPRISE
    if name not in profiles:
        raise UserError(f"--profile {name!r} is unknown; profiles: {', '.join(profiles)}")
    return profiles[name]


# -- output -----------------------------------------------------------------------------------

def step_cells(step: Step) -> list[Cell]:
    ok = step.outcomes.get("ok", 0)
    return [str(step.streams), str(step.runs), str(ok), numbers.fixed(step.tokens_per_s, 0),
            numbers.fixed(step.stream_tps_p50), numbers.milliseconds(step.ttft_p50_s),
            numbers.milliseconds(step.ttft_p95_s), numbers.percent(step.error_rate),
            numbers.percent(step.disconnect_rate), verdict(step)]


COLUMNS = (Column("streams", right=True), Column("runs", right=True), Column("ok", right=True),
           Column("tok/s", right=True), Column("tok/s\n/stream", right=True),
           Column("TTFT\np50 ms", right=True), Column("TTFT\np95 ms", right=True),
           Column("errors", right=True), Column("disc", right=True),
           Column("step", wrap=True))


def verdict(step: Step) -> Text:
    if step.held is None:
        return Text("not judged", style="dim")
    if step.held:
        return Text("held", style="green")
    return Text("broke: " + "; ".join(step.broke), style="red")


def print_ladder(ladder: Ladder, out: Console) -> None:
    """The ladder's curve, one row a step: fitted to a terminal, plain elsewhere."""
    show(out, COLUMNS, [step_cells(step) for step in ladder.steps],
         title=f"{ladder.network}/{ladder.target} {ladder.job} ({ladder.model})")
    say(out, summary(ladder))


def summary(ladder: Ladder) -> str:
    """The ladder's finding in one line."""
    sustained = ladder.sustained
    if sustained is None:
        found = "no step judged"
    elif sustained == 0:
        found = f"sustained no step: {ladder.steps[0].streams} streams already broke"
    else:
        found = f"sustained {sustained} streams"
    spend = "" if ladder.spend_usd is None else f", at most ${ladder.spend_usd:.4f}"
    return (f"{found}; stopped: {ladder.stopped.value} ({ladder.detail}); "
            f"{ladder.requests} requests{spend}, {ladder.elapsed_s:.1f} s")


def ladder_json(ladder: Ladder) -> dict[str, Any]:
    """The ladder as JSON (steps without their runs), with its sustained concurrency."""
    data = dataclasses.asdict(dataclasses.replace(
        ladder, steps=tuple(dataclasses.replace(s, results=()) for s in ladder.steps)))
    for step in data["steps"]:
        step.pop("results", None)
    data.update(sustained=ladder.sustained, knee=ladder.knee, stopped=ladder.stopped.value)
    return data
