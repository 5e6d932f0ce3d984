"""A store seeded by the real scheduler against reference networks, and the monitor's HTTP
server over it, on 127.0.0.1 in a thread of its own (so selenium and httpx can call it
synchronously). Seeded once per session: a few seconds of real probing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from monitor.analysis.quality import judge
from monitor.config import Config, Network
from monitor.core.comparison import Comparison as QualityComparison
from monitor.core.contract import Cell, ContractRun, Param, ParamCell, ToolGrade
from monitor.core.contract import Grade as ToolCallGrade
from monitor.core.equality import EqualityResult, Verdict
from monitor.core.fingerprint import FingerprintResult, Method
from monitor.core.fingerprint import Verdict as FingerprintVerdict
from monitor.core.quality import Answer, Asked, QualityResult, QualitySettings
from monitor.core.quality_grading import Grade
from monitor.core.result import ProbeResult
from monitor.core.slaprofile import BUILTIN_PROFILES, MaintenanceWindow
from monitor.exporter.metrics import MetricsSink
from monitor.runtime.agent import monitor
from monitor.simulator.app import start_network
from monitor.simulator.profiles import PROFILES
from monitor.storage.contract import ContractWriter
from monitor.storage.equality import VerdictWriter
from monitor.storage.fingerprint import FingerprintWriter
from monitor.storage.quality import AuditWriter
from monitor.storage.store import Store
from monitor.web.api import StatusSource
from monitor.web.server import bound_port, start_server
from tests.conftest import STEADY

DAY_S = 86400.0
PROBE_S = 5.0  # real probing that seeds the store
INTERVAL_S = 0.25
HISTORY_DAYS = 89  # copies of the real runs on earlier days ...
GAP_DAYS = range(30, 34)  # ... except these: the monitor was not running
KEY = "sk-status-test-0123456789"  # an API key the API must never show
KEY_ENV = "DEPIN_STATUS_TEST_KEY"

# name -> (reference network profile, SLA profile)
NETWORKS = {
    "steady": (STEADY, "standard"),
    # depin-flaky's faults at a pace that fits a few seconds (no 12 s stalls)
    "flaky": (PROFILES["depin-flaky"].with_overrides(ttft_s=0.08, tokens_per_s=150.0,
                                                     p_stall=0.0, churn_every_s=0.0),
              "standard"),
    # the node goes away for 1.2 s every 2.5 s: connection refused, streams reset, incidents
    "outage": (STEADY.with_overrides(name="test-outage", churn_every_s=2.5, churn_down_s=1.2),
               "standard"),
}


# A model equality verdict (docs/equality.md): flaky's model answers unlike the baseline's.
FLAKY_DIFFERS = EqualityResult(
    network="flaky", tier="small", model="sim-llama-3.1-8b-instruct", reference="baseline",
    started_at=1_790_000_000.0, verdict=Verdict.DIFFERS, p_value=0.000999, statistic=0.02,
    samples=250, reference_samples=248, requests=250, failed=0, spend_usd=None,
    prompt_set="continue-v1", prompt_set_digest="", alpha=0.01, permutations=1000,
    consecutive_differs=2)

# Two fingerprint runs (docs/fingerprint.md): the outage network's model changed on the
# second day.
OUTAGE_FINGERPRINTS = [
    FingerprintResult("outage", "small", "sim-llama-3.1-8b-instruct", 1_790_000_000.0 + day,
                      verdict, 1, Method.LOGPROBS, tv, p, tv, p, 20, 20, 0, 20, None, 0.001, 1)
    for day, verdict, tv, p in ((0.0, FingerprintVerdict.SAME, 0.02, 0.4),
                                (86_400.0, FingerprintVerdict.CHANGED, 0.61, 0.0005))]


def _flaky_worse() -> QualityResult:
    """A quality audit (docs/quality.md): flaky's large model got 60 of 90 items right, the
    baseline 80 of the same 90."""
    settings = QualitySettings(items=90)
    specs = settings.specs(7)

    def side(correct: int) -> tuple[Answer, ...]:
        return tuple(Answer(i, f, d, s, "ok", "Answer: 1", "1",
                            Grade.CORRECT if i < correct else Grade.WRONG)
                     for i, (f, d, s) in enumerate(specs))

    return judge(QualityComparison("flaky", "large", "sim-llama-3.3-70b-instruct", "baseline",
                                   "large"), Asked(side(60), requests=90), side(80), settings,
                 audit_id="a1", seed=7, started_at=1_790_000_000.0, worse_before=1)


FLAKY_WORSE = _flaky_worse()
def flaky_contract(at: float) -> ContractRun:
    """A contract run (docs/contract.md): flaky invents a function name on two of its eight
    tool-call answers and ignores `stop`."""
    base = {"run_id": "r1", "network": "flaky", "tier": "small",
            "model": "sim-llama-3.1-8b-instruct", "started_at": at}
    grades = tuple(ToolGrade(**base, suite="tools-v1", item=item, stream=stream,
                             grade=(ToolCallGrade.UNKNOWN_NAME if item == "one-call"
                                    else ToolCallGrade.OK),
                             outcome="ok", finish_reason="tool_calls", calls=1)
                   for item in ("one-call", "other-function", "no-call", "parallel")
                   for stream in (False, True))
    cells = tuple(ParamCell(**base, param=p,
                            cell=Cell.IGNORED if p is Param.STOP else Cell.HONOURED)
                  for p in Param if p is not Param.REASONING)
    return ContractRun(**base, reference=None, suite="tools-v1", suite_digest="",
                       requests=19, spend_usd=None, duration_s=3.0, grades=grades,
                       cells=cells)


@dataclass(frozen=True)
class Seeded:
    db: Path
    config: Config
    real_runs: list[ProbeResult]  # what the scheduler stored, before the history was added


async def _probe(db: Path) -> tuple[Config, list[ProbeResult]]:
    sims = [await start_network(profile, name=name, seed=i)
            for i, (name, (profile, _)) in enumerate(NETWORKS.items())]
    try:
        networks = tuple(
            Network(name=sim.name, kind="openai", base_url=sim.base_url,
                    models=(("small", sim.sim.model),), jobs=("chat-short-v1",),
                    interval_s=INTERVAL_S, concurrency=4, sla=sla, api_key_env=KEY_ENV)
            for sim, (_, sla) in zip(sims, NETWORKS.values(), strict=True))
        config = Config(path="/etc/depin/secret-config.yaml", location="test-lab",
                        networks=networks, profiles=dict(BUILTIN_PROFILES), concurrency=16)
        store = Store(db)
        try:
            await monitor(config, store, listen="off", grace_s=1.0, duration_s=PROBE_S,
                          handle_signals=False)
        finally:
            store.close()
    finally:
        for sim in sims:
            await sim.stop()
    reader = Store(db)
    try:
        runs = list(reader.results())
    finally:
        reader.close()
    return config, runs


def _history(runs: list[ProbeResult]) -> list[ProbeResult]:
    """The real runs again on earlier days, a different slice each day (so the bars differ),
    none on GAP_DAYS; and on earlier hours of the last day (the TTFT sparkline)."""
    out = []
    for day in range(1, HISTORY_DAYS + 1):
        if day in GAP_DAYS:
            continue
        start = (day * 7) % max(1, len(runs) // 2)
        for r in runs[start:]:
            out.append(_shifted(r, day * DAY_S))
    for hour in range(1, 24):
        out.extend(_shifted(r, hour * 3600.0) for r in runs)
    return out


def _shifted(r: ProbeResult, by: float) -> ProbeResult:
    return dataclasses.replace(r, started_at=r.started_at - by,
                               scheduled_at=None if r.scheduled_at is None
                               else r.scheduled_at - by)


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, KEY)
    try:
        db = tmp_path_factory.mktemp("status") / "runs.db"
        config, runs = asyncio.run(_probe(db))
        store = Store(db)
        try:
            store.add_many(_history(runs))
        finally:
            store.close()
        VerdictWriter(db).on_verdict(FLAKY_DIFFERS)
        AuditWriter(db).on_audit(FLAKY_WORSE)
        ContractWriter(db).on_contract(flaky_contract(max(r.started_at for r in runs)))
        for result in OUTAGE_FINGERPRINTS:
            FingerprintWriter(db).on_fingerprint(result)
        yield Seeded(db, config, runs)
    finally:
        mp.undo()


@dataclass
class Served:
    url: str
    source: StatusSource
    now: float  # the server's clock, stopped just after the real runs


@contextlib.contextmanager
def serving(source: StatusSource, now: float) -> Iterator[Served]:
    """The monitor's HTTP server over `source` (as `run` serves it), in a thread of its own."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, web.AppRunner] = {}

    async def start() -> None:
        sink = MetricsSink()
        box["runner"] = await start_server("127.0.0.1", 0, registry=sink.registry,
                                           status=source)
        ready.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=serve, name="status-server", daemon=True)
    thread.start()
    assert ready.wait(30), "the server did not start"
    try:
        yield Served(f"http://127.0.0.1:{bound_port(box['runner'])}", source, now)
    finally:
        asyncio.run_coroutine_threadsafe(box["runner"].cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _stopped_clock(seeded: Seeded) -> float:
    # The clock stands still just after the probing, so states do not go stale while the
    # session runs on.
    return max(r.started_at for r in seeded.real_runs) + 1.0


@pytest.fixture(scope="session")
def served(seeded: Seeded) -> Iterator[Served]:
    """The monitor's HTTP server over the seeded store (as `run` serves it)."""
    now = _stopped_clock(seeded)
    source = dataclasses.replace(StatusSource.from_config(seeded.config, seeded.db),
                                 clock=lambda: now)
    with serving(source, now) as served:
        yield served


# Declared maintenance for the second server: `outage` inside a window around "now" (its
# real runs and their incidents fall in it), `steady` in one that starts tomorrow.
IN_MAINTENANCE = "outage"
MAINTENANCE_REASON = "GPU driver upgrade <rack 7> & reboot"
SOON_S = 86400.0


@pytest.fixture(scope="session")
def served_maintenance(seeded: Seeded) -> Iterator[Served]:
    """The same store served with maintenance windows declared."""
    now = _stopped_clock(seeded)
    windows = (
        MaintenanceWindow(start=now - 600.0, end=now + 3600.0, networks=(IN_MAINTENANCE,),
                          reason=MAINTENANCE_REASON),
        MaintenanceWindow(start=now + SOON_S, end=now + SOON_S + 7200.0, networks=("steady",),
                          reason="planned move"),
    )
    source = dataclasses.replace(StatusSource.from_config(seeded.config, seeded.db),
                                 clock=lambda: now, maintenance=windows)
    with serving(source, now) as served:
        yield served
