"""`depin-monitor demo`: the first thing to run. No keys, no internet.

Starts three reference networks on loopback (a datacenter provider, a steady DePIN network and
a flaky one), monitors them with the standard chat jobs every second and a capacity ladder a
minute, stores every run, serves /metrics and the status page like `run`, and shows a live
side-by-side comparison. It also tests whether the DePIN networks serve the model they claim
(model equality, against the datacenter's completions): the steady one quietly serves another
model, and is caught; whether their large models answer as well as the datacenter's (a
quality audit on the same items): the steady one's answers worse, and is caught too; and
whether the model behind each name changes (the fingerprint, every
eight seconds here, daily in a real deployment): the flaky one swaps its model 40 seconds in,
and the next fingerprint run notices. With trustme installed
(`pip install 'depin-monitor[tls]'`) the datacenter network serves HTTPS with a private CA
made for the demo, so its TLS phases and certificate show too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import logging
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from monitor.analysis.recent import RecentRuns
from monitor.analysis.report import (
    GroupSummary,
    Judging,
    rank_cell,
    ranked_summaries,
    verdict_word,
)
from monitor.cli.commands import Subparsers
from monitor.cli.options import checked, seconds
from monitor.cli.paths import check_stores
from monitor.config import Config, StoreSettings, parse_config
from monitor.core import numbers
from monitor.core.equality import EqualityResult, EqualitySettings, Verdict
from monitor.core.fingerprint import FingerprintResult
from monitor.core.fingerprint import Verdict as Fingerprint
from monitor.core.quality import Answer, QualityResult
from monitor.core.quality import Verdict as QualityVerdict
from monitor.core.result import Outcome, ProbeResult
from monitor.core.slaprofile import ENTERPRISE
from monitor.core.tables import Cell, Column, console, fits, fitted, say, show, transposed
from monitor.core.values import listen_address
from monitor.runtime.agent import close_store, monitor, open_for_writing
from monitor.runtime.scheduler import Scheduler
from monitor.simulator.app import start_network
from monitor.simulator.profiles import PROFILES
from monitor.simulator.tls import PrivateCA, make_private_ca
from monitor.storage.reads import open_stores
from monitor.storage.store import Store
from monitor.web.server import DEFAULT_LISTEN

# examples/demo.yaml, installed with the package (the file under examples/ links to this copy):
# the demo runs its networks (name = simulator profile) with their SLA profiles and credit
# schedules, list prices and monthly spend, faster (every second) and on free ports.
EXAMPLE_FILE = files(__package__) / "demo.yaml"
# What each network really serves when sampled (monitor.simulator.sampling): the steady
# network looks best after the datacenter, and serves another model under the claimed name.
SERVES = {"depin-steady": "substituted"}
# How each network's large model answers the quality suite (monitor.simulator.quality): the
# steady network's quietly worse than the datacenter's.
SKILL = {"depin-steady": "degraded"}
QUALITY_TIER = "large"
# How each network breaks the API contract (monitor.simulator.contract): the flaky network
# invents a function name, ignores `stop` and answers prose to a JSON schema (docs/contract.md).
CONTRACT_BREAKS = {"depin-flaky": "invented_name,stop_ignored,json_schema_ignored"}
EQUALITY_REFERENCE = "datacenter"
# Model equality in a minute: 10 prompts x 8 samples (the paper's ~10 a prompt), at once.
EQUALITY = EqualitySettings(prompts=10, samples_per_prompt=8, concurrency=40,
                            max_requests=80, deadline_s=30.0)
# The fingerprint at the demo's pace: a run every 8 s instead of daily, a small discovery (100
# candidates, with logprobs one request each, then 6 reference requests for each of the 10
# kept: 160 requests at 16 streams, 10 s deadline). On the flaky network (median TTFT 0.9 s,
# a long tail) it took 18.4-24.1 s on a loaded 2-core machine (six demos, load average
# 4-13), its first run 2.5-6.4 s more. Its swap to another model (monitor.simulator.
# firsttoken) comes at 40 s, as it comes back from its node churn (down from 36 s): the
# discovery and a baseline run are over 10 s or more before it, and the first run with
# samples after it says "changed" (44-51 s measured: a run in the churn has no samples).
# Discovery's concurrency leaves room on each network's 48 streams (and 16 queued) for the
# canaries, the capacity ladder, the quality audit and the contract checks that start with it.
FINGERPRINT = {"interval": "8s", "candidates_tried": 100, "border_inputs": 10,
               "concurrency": 16, "deadline": "10s"}
SWAPS = {"depin-flaky": ("substituted", 40.0)}
JOBS = ("chat-short-v1", "json-v1")
# A capacity ladder a minute on each network (a real deployment climbs hourly); the profiles'
# SLA capacity item asks for 16 streams.
CAPACITY = {"interval": "60s", "job": "json-v1", "tiers": ["small"], "ladder": [1, 4, 16, 64],
            "step_duration": "2s", "requests_per_stream": 1, "max_requests": 200,
            "max_spend": 0.01}
CAPACITY_ITEM = {"streams": 16}
HTTPS_NETWORK = "datacenter"  # served over HTTPS when trustme can make its certificate
INTERVAL_S = 1.0
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
    p.set_defaults(func=run, tuned=True)


def run(args: argparse.Namespace) -> int:
    if args.duration != 0:  # 0: until Ctrl-C
        args.duration = seconds("--duration", args.duration)
    if args.listen is not None and args.listen != "off":
        checked("--listen", listen_address, args.listen)
    if args.db:
        check_stores([args.db], writing=True)
    db = args.db or str(Path(tempfile.gettempdir()) /
                        f"depin-monitor-demo-{time.strftime('%Y%m%d-%H%M%S')}.db")
    default_taken = not args.listen and not _free(DEFAULT_LISTEN)
    listen = args.listen or ("127.0.0.1:0" if default_taken else DEFAULT_LISTEN)
    if not args.verbose:  # stopping cancels long runs by design; do not warn over the table
        logging.getLogger(Scheduler.__module__).setLevel(logging.ERROR)
    out = console()  # a terminal: the live table; a pipe: the plain table at the end
    store = open_for_writing(db, StoreSettings(shutdown_timeout_s=STORE_GIVE_UP_S))
    board = Board(duration_s=args.duration or None)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_demo(store, board, listen, args.duration, out, db, default_taken))
    finally:
        lost = close_store(store)
    if not out.is_terminal:
        show(out, COLUMNS, board.rows(), title=TITLE, caption=CAPTION)
        say(out, board.equality_line().plain)
        say(out, board.quality_line().plain)
        say(out, board.fingerprint_line().plain)
    https = board.tls_line()
    if https:
        say(out, https)
    out.print(f"\nDatabase: {db} ({_count(db)})", highlight=False, markup=False, soft_wrap=True)
    if lost:
        out.print(f"[red]Could not store every run:[/] {lost}", highlight=False,
                  soft_wrap=True)
        return 1
    report = f"depin-monitor report --db {db}"
    if board.config_path:
        report += f" -c {board.config_path}"
    # soft_wrap: commands stay whole for copying, however narrow the terminal
    for line in (f"Buyer's report: {report}",
                 f"   as a page:   {report} --format html -o report.html"):
        out.print(line, highlight=False, markup=False, soft_wrap=True)
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


@functools.cache
def example() -> Config:
    """examples/demo.yaml: the networks, SLA profiles, prices and spend the demo runs."""
    return parse_config(EXAMPLE_FILE.read_text(encoding="utf-8"), "examples/demo.yaml")


def demo_config_data(bases: Sequence[tuple[str, str, str, str]],
                     ca_files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The demo's config, as YAML would hold it, for (name, base_url, model, sla) of the
    running simulators (and the CA file of those served over HTTPS): examples/demo.yaml's SLA
    profiles with their credit schedules, list prices and monthly spend, so that the live
    table and the report show cost and SLA credits, at the demo's pace."""
    ex = example()
    profiles = {}
    for name in sorted({sla for *_, sla in bases}):
        profile = ex.profiles[name]
        profiles[name] = {
            **{k: v for k, v in dataclasses.asdict(profile).items()
               if k not in ("name", "credits", "capacity")},
            "credits": [{"below": t.below, "credit": t.credit} for t in profile.credits],
            "capacity": CAPACITY_ITEM}
    networks = []
    for name, base_url, model, sla in bases:
        listed = ex.network(name)
        network: dict[str, Any] = {
            "name": name, "kind": "openai", "base_url": base_url,
            "models": {**dict(listed.models), "small": model},
            "jobs": list(JOBS), "interval": f"{INTERVAL_S:g}s", "concurrency": 4, "sla": sla,
            "price_per_mtok": dict(listed.price_per_mtok or {}),
            "monthly_spend_usd": listed.monthly_spend_usd, "capacity": CAPACITY}
        if ca_files and name in ca_files:
            network["tls"] = {"ca_file": ca_files[name]}
        networks.append(network)
    equality = {"prompts": EQUALITY.prompts, "samples_per_prompt": EQUALITY.samples_per_prompt,
                "concurrency": EQUALITY.concurrency, "max_requests": EQUALITY.max_requests,
                "deadline": f"{EQUALITY.deadline_s:g}s",
                "compare": [{"network": name, "tier": "small", "reference": EQUALITY_REFERENCE}
                            for name, *_ in bases if name != EQUALITY_REFERENCE]}
    assert ex.quality is not None
    qa = ex.quality.settings
    quality = {"items": qa.items, "seed": qa.seed, "min_items": qa.min_items,
               "concurrency": qa.concurrency, "max_requests": qa.max_requests,
               "max_spend_usd": qa.max_spend_usd, "deadline": "30s",
               "compare": [{"network": name, "tier": QUALITY_TIER,
                            "reference": EQUALITY_REFERENCE}
                           for name, *_ in bases if name != EQUALITY_REFERENCE]}
    fingerprint = {**FINGERPRINT, "networks": [{"network": name, "tier": "small"}
                                               for name, *_ in bases
                                               if name != EQUALITY_REFERENCE]}
    contract = {"interval": "60s", "deadline": "30s", "concurrency": 8,
                "networks": [name for name, *_ in bases if name != EQUALITY_REFERENCE],
                "reference": EQUALITY_REFERENCE}
    return {"location": "demo", "concurrency": 32, "sla_profiles": profiles,
            "networks": networks, "equality": equality, "quality": quality,
            "fingerprint": fingerprint, "contract": contract}


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


def serving_note(url: str, default_taken: bool) -> str:
    """Where the demo serves, said up front in a pipe (the live table says it on a terminal)."""
    taken = f" ({DEFAULT_LISTEN} was taken)" if default_taken else ""
    return f"status page and /metrics at {url}{taken}"


async def _demo(store: Store, board: Board, listen: str, duration: float, out: Console,
                db: str, default_taken: bool = False) -> None:
    sims = []
    ca = _private_ca()
    ca_files = {HTTPS_NETWORK: str(ca.ca_file)} if ca else {}
    try:
        networks = example().networks
        for seed, net in enumerate(networks):
            tls = ca.server_context() if ca is not None and net.name in ca_files else None
            swap_to, swap_at_s = SWAPS.get(net.name, ("", 0.0))
            profile = PROFILES[net.name].with_overrides(
                serves=SERVES.get(net.name, "faithful"), swap_to=swap_to, swap_at_s=swap_at_s,
                skill=SKILL.get(net.name, "faithful"),
                contract=CONTRACT_BREAKS.get(net.name, ""))
            sim = await start_network(profile, name=net.name, seed=seed, ssl_context=tls)
            sim.sim.served = [model for _, model in net.models]  # every tier it lists
            sims.append(sim)
        bases = [(s.name, s.base_url, s.sim.model, net.sla or ENTERPRISE.name)
                 for s, net in zip(sims, networks, strict=True)]
        config = demo_config(bases, ca_files)
        board.config_path = _write_config(db, bases)

        def ready(scheduler: Scheduler, port: int | None) -> None:
            board.scheduler = scheduler
            if port:
                board.serving = f"http://{listen.rpartition(':')[0]}:{port}/"
                if not out.is_terminal:
                    say(out, serving_note(board.serving, default_taken))

        live = Live(board, console=out, refresh_per_second=4, transient=False) \
            if out.is_terminal else contextlib.nullcontext()
        with live:
            try:
                await monitor(config, store, listen=listen, grace_s=2.0, extra_sinks=[board],
                              duration_s=duration or None, on_ready=ready,
                              verdict_sinks=[board], audit_sinks=[board],
                              fingerprint_sinks=[board])
            finally:
                board.stale()  # Live's last refresh, as it stops, shows every run
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
    """Sink and rich renderable: the live comparison table, the equality line and a progress
    line. Results arrive on the event loop; rich's Live renders on its own thread, so the
    aggregates are read under a lock, and the rows are rebuilt at most once a second."""

    def __init__(self, duration_s: float | None) -> None:
        # bounded: `demo --duration 0` runs for weeks in the compose stack (the store keeps all)
        self.recent = RecentRuns(RECENT_RESULTS)
        self.runs = 0
        ex = example()
        self.networks = [net.name for net in ex.networks]
        self.judging = Judging(profiles={net.name: ex.profile(net) for net in ex.networks},
                               prices={net.name: net.price_per_mtok for net in ex.networks
                                       if net.price_per_mtok})
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
        self.audits: dict[str, QualityResult] = {}
        self.fingerprints: dict[str, FingerprintResult] = {}
        self.changed: dict[str, float] = {}  # network -> when its fingerprint said "changed"
        self.last_tls: ProbeResult | None = None  # the HTTPS network's latest TLS run
        self.last_handshake_s: float | None = None
        self._lock = threading.Lock()
        self._built: _Rows | None = None
        self._wanted = 0  # stale() calls: rows built before the last one are stale

    def on_result(self, result: ProbeResult) -> None:
        with self._lock:
            self.recent.add(result)
            self.runs += 1
        if result.network == HTTPS_NETWORK and result.tls_version:
            self.last_tls = result
            if result.tls_s is not None:
                self.last_handshake_s = result.tls_s

    def on_verdict(self, result: EqualityResult) -> None:
        self.verdicts[result.network] = result

    def on_fingerprint(self, result: FingerprintResult) -> None:
        self.fingerprints[result.network] = result
        if result.verdict is Fingerprint.CHANGED:
            self.changed[result.network] = time.perf_counter() - self.started

    def fingerprint_line(self) -> Text:
        """Each network's latest fingerprint, and the change when one was seen."""
        head = "fingerprint (did the model behind the name change?): "
        latest = self.fingerprints.copy()
        changed = self.changed.copy()
        if not latest:
            return Text(head + "discovering border inputs (a few seconds)")
        line = Text(head)
        for i, (name, v) in enumerate(sorted(latest.items())):
            line.append(" · " if i else "")
            line.append(f"{name} ")
            if name in changed:
                line.append(f"CHANGED at {changed[name]:.0f} s", style="bold red")
                line.append(f" (p={v.p_value:.3g})" if v.verdict is Fingerprint.CHANGED
                            and v.p_value is not None else f" (now: {v.verdict.value})")
            elif v.verdict is Fingerprint.SAME:
                line.append("same", style="green")
                line.append(f" (TV {v.distance or 0:.3f}, {v.requests} requests)")
            else:
                line.append(v.verdict.value, style="yellow")
        return line

    def equality_line(self) -> Text:
        """Model equality against the reference: the latest verdict of each network."""
        head = f"model equality vs {EQUALITY_REFERENCE}: "
        verdicts = self.verdicts.copy()  # arrive on the loop while the Live thread reads
        if not verdicts:
            return Text(head + f"sampling {EQUALITY.prompts} prompts x "
                        f"{EQUALITY.samples_per_prompt} from each network (the first verdicts "
                        "take a few seconds)")
        line = Text(head)
        for i, (name, v) in enumerate(sorted(verdicts.items())):
            p = numbers.significant(v.p_value)
            word, style = (("DIFFERS: serves another model?", "bold red")
                           if v.verdict is Verdict.DIFFERS else
                           ("same", "green") if v.verdict is Verdict.SAME else
                           (str(v.verdict), "yellow"))
            line.append(" · " if i else "")
            line.append(f"{name} ")
            line.append(word, style=style)
            line.append(f" (p={p}, {v.samples}/{v.reference_samples} samples)")
        return line

    def on_audit(self, result: QualityResult,
                 answers: Sequence[tuple[str, str, str, str, Answer]] = ()) -> None:
        self.audits[result.network] = result

    def quality_line(self) -> Text:
        """The quality audit against the reference: each network's latest verdict."""
        head = f"answer quality ({QUALITY_TIER}) vs {EQUALITY_REFERENCE}: "
        audits = self.audits.copy()  # arrive on the loop while the Live thread reads
        if not audits:
            return Text(head + "asking each network the same items of the quality suite "
                        "(the first verdicts take a few seconds)")
        line = Text(head)
        for i, (name, a) in enumerate(sorted(audits.items())):
            word, style = (("WORSE", "bold red") if a.verdict is QualityVerdict.WORSE else
                           ("not worse", "green") if a.verdict is QualityVerdict.NOT_WORSE
                           else (str(a.verdict), "yellow"))
            line.append(" · " if i else "")
            line.append(f"{name} ")
            line.append(word, style=style)
            if a.accuracy is None or a.reference_accuracy is None or a.difference is None \
                    or a.difference_low is None or a.difference_high is None:
                line.append(f" ({a.pairs} of {a.items} items answered)")
                continue
            p = numbers.significant(a.p_value, 2)
            line.append(f" ({100 * a.accuracy:.0f}% vs {100 * a.reference_accuracy:.0f}%, "
                        f"{100 * a.difference:+.0f} points [{100 * a.difference_low:+.0f}, "
                        f"{100 * a.difference_high:+.0f}], p={p}, {a.pairs} items)")
        return line

    def tls_line(self) -> str:
        """What the HTTPS network's last TLS run showed, for the closing lines."""
        last = self.last_tls
        if last is None:
            return ""
        until = time.strftime("%Y-%m-%d", time.gmtime(last.tls_cert_expiry or 0))
        took = ("" if self.last_handshake_s is None
                else f", handshake {1000 * self.last_handshake_s:.1f} ms")
        return (f"{HTTPS_NETWORK} is HTTPS: {last.tls_version} {last.tls_cipher}, private-CA "
                f"certificate chain valid until {until}{took}")

    def __rich_console__(self, out: Console, options: ConsoleOptions) -> RenderResult:
        elapsed = time.perf_counter() - self.started
        self.progress.update(self.task, completed=elapsed, runs=self.runs,
                             description=f"probing {len(self.networks)} networks"
                             + (f" · {self.serving}" if self.serving else ""))
        yield self.table(out)
        yield self.equality_line()
        yield self.quality_line()
        yield self.fingerprint_line()
        yield self.progress

    def table(self, out: Console) -> Table:
        """The table for a terminal: fitted to it, or in a narrow one the networks across
        and the figures down."""
        rows = self.recent_rows()
        table = fitted(COLUMNS, rows, title=TITLE, caption=CAPTION)
        if not fits(out, table):
            table = fitted(*transposed(COLUMNS, rows), title=TITLE, caption=CAPTION)
        return table

    def recent_rows(self) -> list[list[Cell]]:
        """The rows, rebuilt at most once a second: Live refreshes four times a second, and
        the probes share this process's CPU."""
        now, runs, wanted = time.perf_counter(), self.runs, self._wanted
        built = self._built  # replaced whole: stale() may run meanwhile, on the loop
        if built is None or built.wanted != wanted or (
                runs != built.runs and now - built.at >= ROWS_EVERY_S):
            built = _Rows(self.rows(), now, runs, wanted)
            self._built = built
        return built.rows

    def stale(self) -> None:
        """Rebuild the rows at the next refresh, from every run so far (the last one)."""
        self._wanted += 1

    def rows(self) -> list[list[Cell]]:
        """One row a network, in the demo's order."""
        with self._lock:
            groups = self.recent.groups()
        summaries = {s.key[0]: s for s in ranked_summaries(groups, ("network",), self.judging)}
        best = max((s.availability or 0 for s in summaries.values()), default=0)
        rows: list[list[Cell]] = []
        for name in self.networks:
            s = summaries.get(name)
            if s is None:
                rows.append([name, "0", *["-"] * (len(COLUMNS) - 2)])
                continue
            disc = s.outcomes.get(Outcome.DISCONNECT.value, 0)
            wrong = s.outcomes.get(Outcome.WRONG_OUTPUT.value, 0)
            other = s.runs - s.outcomes.get(Outcome.OK.value, 0) - disc - wrong
            verdict = verdict_word(s)
            cost = "-" if s.effective_usd_per_mtok is None else f"${s.effective_usd_per_mtok:.2f}"
            rows.append([name, str(s.runs), _avail(s, best), numbers.seconds(s.ttft_p95_s),
                         numbers.fixed(s.decode_tps_median, 0), str(disc), str(wrong), str(other),
                         str(s.nodes or "-"), cost, rank_cell(s).replace(" tied", "="),
                         Text(verdict, style="green" if verdict.startswith("MEETS") else "red")])
        return rows


@dataclasses.dataclass(frozen=True, slots=True)
class _Rows:
    rows: list[list[Cell]]
    at: float  # perf_counter time they were built
    runs: int  # runs they show
    wanted: int  # Board.stale() calls before they were built


ROWS_EVERY_S = 1.0
TITLE = "depin-monitor demo: the same jobs on three networks"
CAPTION = ("avail: ok runs / runs · TTFT: seconds · tok/s: median decode rate · disc: "
           "disconnects · wrong: wrong answers · other: other failures · nodes: machines seen "
           "· $/Mtok: per million good output tokens · rank: 2= tied (no significant "
           "difference) · SLA: verdict so far (? = too few runs to be sure)")
# short headers: the table fits an 80-column terminal (the caption explains them)
COLUMNS = (Column("network"), *(Column(h, right=True) for h in (
    "runs", "avail", "TTFT\np95", "tok/s", "disc", "wrong", "other", "nodes", "$/Mtok", "rank",
    "SLA")))


def _avail(s: GroupSummary, best: float) -> Cell:
    a = s.availability
    if a is None:
        return "-"
    color = "green" if a >= best - 1e-9 else ("yellow" if a >= 0.95 else "red")
    return Text(numbers.percent(a, 1), style=color)


