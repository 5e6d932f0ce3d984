"""`depin-monitor demo`: the first thing to run. No keys, no internet.

Starts three reference networks on loopback (a datacenter provider, a steady DePIN network and
a flaky one), monitors them with the standard chat jobs every second and a capacity ladder a
minute, stores every run, serves /metrics and the status page like `run`, and shows a live
side-by-side comparison. It also tests whether the DePIN networks serve the model they claim
(model equality, against the datacenter's completions): the steady one quietly serves another
model, and is caught. With trustme installed (`pip install 'depin-monitor[tls]'`) the
datacenter network serves HTTPS with a private CA made for the demo, so its TLS phases and
certificate show too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import socket
import sqlite3
import sys
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from monitor.analysis.report import GroupSummary, build_report, rank_cell, verdict_word
from monitor.cli.commands import Subparsers
from monitor.config import Config, StoreSettings, parse_config
from monitor.core.equality import EqualityResult, EqualitySettings, Verdict
from monitor.core.errors import UserError
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import BUILTIN_PROFILES
from monitor.runtime.agent import close_store, monitor, open_store
from monitor.runtime.scheduler import Scheduler
from monitor.simulator.app import start_network
from monitor.simulator.profiles import PROFILES
from monitor.simulator.tls import PrivateCA, make_private_ca
from monitor.storage.store import Store, open_stores
from monitor.web.server import DEFAULT_LISTEN

# (network name = simulator profile, SLA profile it is judged against)
NETWORKS: tuple[tuple[str, str], ...] = (
    ("datacenter", "enterprise"),
    ("depin-steady", "standard"),
    ("depin-flaky", "standard"),
)
# What each network really serves when sampled (monitor.simulator.sampling): the steady
# network looks best after the datacenter, and serves another model under the claimed name.
SERVES = {"depin-steady": "substituted"}
EQUALITY_REFERENCE = "datacenter"
# Model equality in a minute: 10 prompts x 8 samples (the paper's ~10 a prompt), at once.
EQUALITY = EqualitySettings(prompts=10, samples_per_prompt=8, concurrency=40,
                            max_requests=80, deadline_s=30.0)
JOBS = ("chat-short-v1", "json-v1")
# A capacity ladder a minute on each network (a real deployment climbs hourly); the profiles'
# SLA capacity item asks for 16 streams.
CAPACITY = {"interval": "60s", "job": "json-v1", "ladder": [1, 4, 16, 64],
            "step_duration": "2s", "requests_per_stream": 1, "max_requests": 200,
            "max_spend": 0.01}
CAPACITY_ITEM = {"streams": 16}
HTTPS_NETWORK = "datacenter"  # served over HTTPS when trustme can make its certificate
INTERVAL_S = 1.0
# What the demo's networks cost (USD per million tokens, as examples/demo.yaml) and what a
# buyer spends on each a month; service credits by monthly availability, shaped like public
# cloud SLAs (a worse month earns a larger share of its spend back).
PRICES = {"datacenter": {"input": 0.18, "output": 0.18},
          "depin-steady": {"input": 0.05, "output": 0.08},
          "depin-flaky": {"input": 0.02, "output": 0.04}}
MONTHLY_SPEND_USD = {"datacenter": 2000.0, "depin-steady": 800.0, "depin-flaky": 300.0}
CREDITS = {"enterprise": ((0.999, 0.10), (0.99, 0.25), (0.95, 1.00)),
           "standard": ((0.99, 0.10), (0.95, 0.25), (0.90, 1.00))}
CONFIG_HEADER = ("# Written by `depin-monitor demo`: its networks, SLA profiles with credit\n"
                 "# schedules, prices and monthly spend, for `depin-monitor report -c`.\n"
                 "# The URLs were the demo's simulators (gone once the demo stopped).\n")
DEFAULT_DURATION_S = 60.0
RECENT_RESULTS = 20_000  # the live table's memory: about an hour of the demo's runs
STORE_GIVE_UP_S = 2.0  # a failing store is retried this long at exit (run: the config's)

EXAMPLE = """\
examples:
  depin-monitor demo                       # one minute, then the table and the report command
  depin-monitor demo --duration 0          # until Ctrl-C
  depin-monitor demo --db demo.db --listen 127.0.0.1:9464
  depin-monitor report --db demo.db -c demo.config.yaml   # the buyer's report afterwards

The same networks by hand: examples/demo.yaml (`depin-monitor simulate` + `run`).
"""


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "demo", help="start three simulated networks, monitor them, show a live comparison",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=DEFAULT_DURATION_S, metavar="S",
                   help=f"stop after S seconds (default {DEFAULT_DURATION_S:g}; 0 = until Ctrl-C)")
    p.add_argument("--db", metavar="PATH",
                   help="SQLite store (default: a new file in the temporary directory)")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help=f"serve /metrics and the status page (default {DEFAULT_LISTEN}, or a "
                        "free port if that one is taken; `off` to disable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.duration < 0:
        raise UserError(f"--duration {args.duration}: must be 0 (until Ctrl-C) or more seconds")
    db = args.db or str(Path(tempfile.gettempdir()) /
                        f"depin-monitor-demo-{time.strftime('%Y%m%d-%H%M%S')}.db")
    listen = args.listen or (DEFAULT_LISTEN if _free(DEFAULT_LISTEN) else "127.0.0.1:0")
    if not args.verbose:  # stopping cancels long runs by design; do not warn over the table
        logging.getLogger(Scheduler.__module__).setLevel(logging.ERROR)
    tty = sys.stdout.isatty()
    console = Console() if tty else Console(width=140, force_terminal=False)
    store = open_store(db, StoreSettings(shutdown_timeout_s=STORE_GIVE_UP_S))
    board = Board(duration_s=args.duration or None)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_demo(store, board, listen, args.duration, console, tty, db))
    finally:
        lost = close_store(store)
    if not tty:
        console.print(board.table())
        console.print(board.equality_line(), highlight=False)
    https = board.tls_line()
    if https:
        console.print(https, highlight=False)
    console.print(f"\nDatabase: {db} ({_count(db)})", highlight=False, soft_wrap=True)
    if lost:
        console.print(f"[red]Could not store every run:[/] {lost}", highlight=False)
        return 1
    report = f"depin-monitor report --db {db}"
    if board.config_path:
        report += f" -c {board.config_path}"
    # soft_wrap: commands stay whole for copying, however narrow the terminal
    console.print(f"Buyer's report: {report}", highlight=False, soft_wrap=True)
    console.print(f"   as a page:   {report} --format html -o report.html", highlight=False,
                  soft_wrap=True)
    return 0


def _count(db: str) -> str:
    try:
        reader = open_stores([db])
        try:
            return f"{reader.count()} runs"
        finally:
            reader.close()
    except (OSError, sqlite3.Error):  # e.g. the disk was full before the schema was written
        return "no runs stored"


def _free(listen: str) -> bool:
    host, _, port = listen.rpartition(":")
    with socket.socket() as s:
        try:
            s.bind((host, int(port)))
        except OSError:
            return False
    return True


def demo_config_data(bases: Sequence[tuple[str, str, str, str]],
                     ca_files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The demo's config, as YAML would hold it, for (name, base_url, model, sla) of the
    running simulators (and the CA file of those served over HTTPS): the built-in profiles with
    credit schedules, list prices and a monthly spend, so that the live table and the report
    show cost and SLA credits."""
    profiles = {
        name: {**{k: v for k, v in dataclasses.asdict(BUILTIN_PROFILES[name]).items()
                  if k not in ("name", "credits")},
               "credits": [{"below": below, "credit": credit} for below, credit in tiers],
               "capacity": CAPACITY_ITEM}
        for name, tiers in CREDITS.items()}
    networks = []
    for name, base_url, model, sla in bases:
        network: dict[str, Any] = {
            "name": name, "kind": "openai", "base_url": base_url, "models": {"small": model},
            "jobs": list(JOBS), "interval": f"{INTERVAL_S:g}s", "concurrency": 4, "sla": sla,
            "price_per_mtok": PRICES[name], "monthly_spend_usd": MONTHLY_SPEND_USD[name],
            "capacity": CAPACITY}
        if ca_files and name in ca_files:
            network["tls"] = {"ca_file": ca_files[name]}
        networks.append(network)
    equality = {"prompts": EQUALITY.prompts, "samples_per_prompt": EQUALITY.samples_per_prompt,
                "concurrency": EQUALITY.concurrency, "max_requests": EQUALITY.max_requests,
                "deadline": f"{EQUALITY.deadline_s:g}s",
                "compare": [{"network": name, "reference": EQUALITY_REFERENCE}
                            for name, *_ in bases if name != EQUALITY_REFERENCE]}
    return {"location": "demo", "concurrency": 32, "sla_profiles": profiles,
            "networks": networks, "equality": equality}


def demo_config(bases: Sequence[tuple[str, str, str, str]],
                ca_files: Mapping[str, str] | None = None) -> Config:
    """The demo's Config (see demo_config_data)."""
    return parse_config(yaml.safe_dump(demo_config_data(bases, ca_files), sort_keys=False),
                        "<demo>")


def _write_config(db: str, bases: Sequence[tuple[str, str, str, str]]) -> str | None:
    """The demo's config beside its store, for `report -c` (without the demo's temporary CA,
    which a report does not need); never over a file of the user's."""
    path = Path(db).with_suffix(".config.yaml")
    try:
        if path.exists() and not path.read_text().startswith(CONFIG_HEADER):
            return None
        path.write_text(CONFIG_HEADER + yaml.safe_dump(demo_config_data(bases), sort_keys=False))
    except (OSError, UnicodeDecodeError):  # a full or read-only disk: the demo goes on
        with contextlib.suppress(OSError):
            if path.stat().st_size == 0:  # the write made the file, then found no room
                path.unlink()
        return None
    return str(path)


async def _demo(store: Store, board: Board, listen: str, duration: float, console: Console,
                tty: bool, db: str) -> None:
    sims = []
    ca = _private_ca()
    ca_files = {HTTPS_NETWORK: str(ca.ca_file)} if ca else {}
    try:
        for seed, (name, _) in enumerate(NETWORKS):
            tls = ca.server_context() if ca is not None and name in ca_files else None
            profile = PROFILES[name].with_overrides(serves=SERVES.get(name, "faithful"))
            sims.append(await start_network(profile, name=name, seed=seed, ssl_context=tls))
        bases = [(s.name, s.base_url, s.sim.model, sla)
                 for s, (_, sla) in zip(sims, NETWORKS, strict=True)]
        config = demo_config(bases, ca_files)
        board.config_path = _write_config(db, bases)

        def ready(scheduler: Scheduler, port: int | None) -> None:
            board.scheduler = scheduler
            if port:
                board.serving = f"http://{listen.rpartition(':')[0]}:{port}/"

        live = Live(board, console=console, refresh_per_second=4, transient=False) \
            if tty else contextlib.nullcontext()
        with live:
            await monitor(config, store, listen=listen, grace_s=2.0, extra_sinks=[board],
                          duration_s=duration or None, on_ready=ready, verdict_sinks=[board])
    finally:
        for sim in sims:
            await sim.stop()


def _private_ca() -> PrivateCA | None:
    """A CA for the demo's HTTPS network, or None without trustme (the demo stays HTTP)."""
    try:
        return make_private_ca()
    except RuntimeError:
        return None


class Board:
    """Sink and rich renderable: the live comparison table and a progress line."""

    def __init__(self, duration_s: float | None) -> None:
        # bounded: `demo --duration 0` runs for weeks in the compose stack (the store keeps all)
        self.results: deque[ProbeResult] = deque(maxlen=RECENT_RESULTS)
        self.profiles = {name: BUILTIN_PROFILES[sla] for name, sla in NETWORKS}
        self.config_path: str | None = None
        self.duration_s = duration_s
        self.started = time.perf_counter()
        self.scheduler: Scheduler | None = None
        self.serving = ""
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            TextColumn("{task.fields[runs]} runs"), TimeElapsedColumn(), auto_refresh=False)
        self.task = self.progress.add_task("probing", total=duration_s, runs=0)
        self.verdicts: dict[str, EqualityResult] = {}

    def on_result(self, result: ProbeResult) -> None:
        self.results.append(result)

    def on_verdict(self, result: EqualityResult) -> None:
        self.verdicts[result.network] = result

    def equality_line(self) -> str:
        """Model equality against the reference: the latest verdict of each network."""
        head = f"model equality vs {EQUALITY_REFERENCE}: "
        if not self.verdicts:
            return head + (f"sampling {EQUALITY.prompts} prompts x {EQUALITY.samples_per_prompt}"
                           " from each network (the first verdicts take a few seconds)")
        parts = []
        for name, v in sorted(self.verdicts.items()):
            p = "-" if v.p_value is None else f"{v.p_value:.3g}"
            word = ("[bold red]DIFFERS: serves another model?[/]"
                    if v.verdict is Verdict.DIFFERS else
                    "[green]same[/]" if v.verdict is Verdict.SAME else f"[yellow]{v.verdict}[/]")
            parts.append(f"{name} {word} (p={p}, {v.samples}/{v.reference_samples} samples)")
        return head + " · ".join(parts)

    def tls_line(self) -> str:
        """What the HTTPS network's last TLS run showed, for the closing lines."""
        seen = [r for r in self.results if r.network == HTTPS_NETWORK and r.tls_version]
        if not seen:
            return ""
        last = seen[-1]
        until = time.strftime("%Y-%m-%d", time.gmtime(last.tls_cert_expiry or 0))
        handshakes = [r.tls_s for r in seen if r.tls_s is not None]
        took = f", handshake {1000 * handshakes[-1]:.1f} ms" if handshakes else ""
        return (f"{HTTPS_NETWORK} is HTTPS: {last.tls_version} {last.tls_cipher}, private-CA "
                f"certificate chain valid until {until}{took}")

    def __rich__(self) -> Group:
        elapsed = time.perf_counter() - self.started
        self.progress.update(self.task, completed=elapsed, runs=len(self.results),
                             description=f"probing {len(NETWORKS)} networks"
                             + (f" · {self.serving}" if self.serving else ""))
        return Group(self.table(), self.equality_line(), self.progress)

    def table(self) -> Table:
        report = build_report([r.to_dict() for r in self.results], profiles=self.profiles,
                              prices=PRICES)
        rows = {g.key[0]: g for g in report.groups}
        table = Table(title="depin-monitor demo: the same jobs on three networks",
                      box=None, title_justify="left", padding=(0, 1), header_style="bold",
                      pad_edge=False, collapse_padding=True, caption_justify="left",
                      caption="avail: ok runs / runs · TTFT: seconds · tok/s: median decode "
                              "rate · disc: disconnects · wrong: wrong answers · other: "
                              "other failures · nodes: machines seen · $/Mtok: per million "
                              "good output tokens · rank: 2= tied (no significant difference) · "
                              "SLA: verdict so far (? = too few runs to be sure)")
        # short headers: the table fits an 80-column terminal (the caption explains them)
        for header in ("network", "runs", "avail", "TTFT\np95", "tok/s", "disc", "wrong",
                       "other", "nodes", "$/Mtok", "rank", "SLA"):
            left = header == "network"
            table.add_column(header, justify="left" if left else "right", no_wrap=True,
                             min_width=12 if left else None)
        best = max((s.availability or 0 for s in rows.values()), default=0)
        for name, _ in NETWORKS:
            s = rows.get(name)
            if s is None:
                table.add_row(name, "0", *["-"] * 10)
                continue
            disc = s.outcomes.get(Outcome.DISCONNECT.value, 0)
            wrong = s.outcomes.get(Outcome.WRONG_OUTPUT.value, 0)
            other = s.runs - s.outcomes.get(Outcome.OK.value, 0) - disc - wrong
            verdict = verdict_word(s)
            color = "green" if verdict.startswith("MEETS") else "red"
            cost = "-" if s.effective_usd_per_mtok is None else f"${s.effective_usd_per_mtok:.2f}"
            table.add_row(name, str(s.runs), _avail(s, best), _ms(s.ttft_p95_s),
                          _num(s.decode_tps_median), str(disc), str(wrong), str(other),
                          str(s.nodes or "-"), cost, rank_cell(s).replace(" tied", "="),
                          f"[{color}]{verdict}[/]")
        return table


def _avail(s: GroupSummary, best: float) -> str:
    a = s.availability
    if a is None:
        return "-"
    color = "green" if a >= best - 1e-9 else ("yellow" if a >= 0.95 else "red")
    return f"[{color}]{a * 100:.1f}%[/]"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}s"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"
