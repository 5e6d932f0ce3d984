"""The monitor agent that `run` and `demo` share: config -> scheduler -> (store, metrics, run
log), /metrics, /healthz, /readyz and the status page served beside it, signals, a summary line
per minute, the garbage collector tuned for timing and run on a clock
(monitor.runtime.collector), and an hourly read of each network's model
listing (monitor.catalog.watch)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from monitor.catalog import watch as catalog_watch
from monitor.config import Config, StoreSettings
from monitor.core.comparison import Comparison, ComparisonKey
from monitor.core.errors import UserError
from monitor.core.fingerprint import FingerprintResult
from monitor.core.fingerprint import Verdict as FingerprintVerdict
from monitor.core.numbers import fixed
from monitor.core.result import Outcome, ProbeResult
from monitor.core.times import format_duration
from monitor.core.warmup import PAGE_WINDOW_S, WarmUp
from monitor.exporter.capacity import CapacityMetrics
from monitor.exporter.contract import ContractMetrics
from monitor.exporter.equality import EqualityMetrics
from monitor.exporter.fingerprint import FingerprintMetrics
from monitor.exporter.metrics import MetricsSink
from monitor.exporter.quality import QualityMetrics
from monitor.exporter.rules import slos_from_config
from monitor.exporter.sla_collector import SLACollector, month_figures_source
from monitor.runtime import collector, contract, equality, fingerprint, owned, quality
from monitor.runtime.capacity import CapacityScheduler, LadderLog
from monitor.runtime.loopwatch import LoopWatch
from monitor.runtime.scheduler import DEFAULT_GRACE_S, Scheduler, Sink
from monitor.storage.capacity import LadderStore
from monitor.storage.contract import ContractWriter
from monitor.storage.equality import VerdictWriter, differs_in_a_row
from monitor.storage.fingerprint import FingerprintWriter
from monitor.storage.quality import AuditWriter, worse_in_a_row
from monitor.storage.reads import fingerprint_history as history
from monitor.storage.reads import read_audits, read_verdicts
from monitor.storage.reads import read_border_sets as read_sets
from monitor.storage.store import Store
from monitor.web.api import StatusSource
from monitor.web.server import attach, bound_port, parse_listen, start_server
from monitor.web.webconfig import WebConfig

log = logging.getLogger("monitor.run")

SUMMARY_EVERY_S = 60.0


def open_for_writing(path: str, settings: StoreSettings | None = None) -> Store:
    """The store the agent appends to (storage.reads.open_store opens one to read); a
    UserError naming --db if it cannot be opened (a disk that is full or a file that is locked
    is not that: the store starts failing and retries)."""
    settings = settings or StoreSettings()
    try:
        return Store(path, buffer_limit=settings.buffer_results,
                     shutdown_timeout_s=settings.shutdown_timeout_s)
    except Exception as exc:  # sqlite3.DatabaseError, OSError: one line, no traceback
        raise UserError(f"--db {path}: cannot open the store: {exc}") from None


def close_store(store: Store) -> str:
    """Close the store (a failing one gives up after its shutdown timeout); what it could not
    store, as one sentence for the user ("" when nothing was lost)."""
    store.close()
    lost = store.lost
    if not lost:
        return ""
    problem = store.health().problem
    parts = []
    if store.dropped:
        parts.append(f"{store.dropped} dropped while it failed (buffer limit "
                     f"{store.buffer_limit})")
    if lost > store.dropped:
        parts.append(f"{lost - store.dropped} still held in memory when it gave up at exit")
    return (f"could not store {lost} result{'s' if lost != 1 else ''} in {store.path}"
            + (f" ({problem})" if problem else "") + ": " + ", ".join(parts))


@dataclass
class RunLog:
    """Sink: one structured debug line per run; counts for the per-minute summary."""

    counts: Counter[str] = field(default_factory=Counter)

    def on_result(self, r: ProbeResult) -> None:
        self.counts[r.outcome.value] += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("run network=%s target=%s job=%s outcome=%s http=%s ttft_s=%s "
                      "duration_s=%s tokens=%s lateness_s=%s lagged=%s error=%s",
                      r.network, r.target, r.job, r.outcome.value, r.http_status or "-",
                      fixed(r.ttft_s, 3), fixed(r.duration_s, 3), r.output_tokens,
                      fixed(r.lateness_s, 3), int(r.lagged), _quote(r.error))

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"' if text else "-"


def metrics_sink(config: Config) -> MetricsSink:
    """The Prometheus sink of the config's networks, their known series initialised at 0."""
    profiles = config.network_profiles()
    sink = MetricsSink(network_profiles=profiles, extra_profiles=list(config.profiles.values()))
    sink.init_targets((t.network, t.name, j.name) for t, j, _ in config.schedules())
    for net in config.networks:
        sink.set_tls_insecure(net.name, net.transport.insecure)
    return sink


def capacity_scheduler(config: Config, store: Store, metrics: MetricsSink, *,
                       grace_s: float) -> CapacityScheduler:
    """The capacity ladders of the config (none: a scheduler with nothing to do), into the
    store, the exporter and the log."""
    schedules = config.capacity_schedules()
    exported = CapacityMetrics(metrics.registry)
    exported.init(((s.target.network, s.target.name, s.job.name) for s in schedules),
                  {n.name: config.profile(n) for n in config.networks})
    if schedules:
        log.info("capacity ladders: %s", ", ".join(
            f"{s.key} every {format_duration(s.settings.interval_s)} "
            f"({'/'.join(map(str, s.settings.ladder))} streams)" for s in schedules))
    return CapacityScheduler(schedules, sinks=[LadderStore(store.path), exported, LadderLog()],
                             location=config.location, grace_s=grace_s)


def warn_insecure(config: Config) -> None:
    """tls.insecure must never pass unnoticed: one warning per network, at every start."""
    for net in config.networks:
        if net.transport.insecure:
            log.warning("network %s: tls.insecure is on: its certificates are NOT verified "
                        "(anyone on the path can pose as it); trust its CA with tls.ca_file "
                        "instead", net.name)


async def monitor(config: Config, store: Store, *, listen: str | None = None,
                  once: bool = False, grace_s: float = DEFAULT_GRACE_S,
                  extra_sinks: Sequence[Sink] = (), duration_s: float | None = None,
                  on_ready: Callable[[Scheduler, int | None], None] | None = None,
                  handle_signals: bool = True,
                  verdict_sinks: Sequence[equality.VerdictSink] = (),
                  web_config: WebConfig | None = None,
                  fingerprint_sinks: Sequence[fingerprint.VerdictSink] = (),
                  audit_sinks: Sequence[quality.AuditSink] = ()) -> Scheduler:
    """Run the scheduler over `config` into `store` (and /metrics if `listen`, with the TLS
    and authentication of `web_config`) until a signal, `duration_s`, or (once) every
    schedule ran once; the config's model equality, quality audit, contract and fingerprint
    jobs beside it (once: one run of each, waited for). Returns the finished scheduler.

    Each component is stopped by the exit stack it joins as it starts, in the reverse order:
    whatever raises, at start or later, leaves no server, helper process, task or signal
    handler behind. The store is the caller's: it is flushed here, closed by the caller.
    Process-wide tuning is the caller's too (monitor.runtime.tuning)."""
    warn_insecure(config)
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        metrics = metrics_sink(config)
        equality_runner = _equality_runner(config, store, metrics, verdict_sinks)
        contract_runner = _contract_runner(config, store, metrics)
        fingerprints = _fingerprint_runner(config, store, metrics, equality_runner,
                                           fingerprint_sinks)
        quality_runner = _quality_runner(config, store, metrics, audit_sinks)
        watch = LoopWatch()
        watch.on_sample.append(metrics.observe_loop_lag)
        runlog = RunLog()
        warmup = WarmUp({slo.network: slo.runs_in(PAGE_WINDOW_S)
                         for slo in slos_from_config(config)})
        sinks: list[Sink] = [store, metrics, runlog, warmup, *extra_sinks]
        ladders = capacity_scheduler(config, store, metrics, grace_s=grace_s)
        scheduler = Scheduler(config.schedules(), sinks=sinks, concurrency=config.concurrency,
                              location=config.location, grace_s=grace_s, loopwatch=watch,
                              hold=ladders.holds)
        port = await _serve(stack, listen, metrics, scheduler, store, config, web_config,
                            warmup)
        stack.push_async_callback(asyncio.to_thread, store.flush)  # before the server goes
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                stack.callback(_restore_signal, loop, sig, signal.getsignal(sig))
                loop.add_signal_handler(sig, _on_signal, scheduler, sig)
        if collector.tuned():  # the tuned collector's clock (monitor.runtime.collector)
            _task(stack, collector.collect_every(), "gc-clock")
        watch.start()
        stack.push_async_callback(watch.stop)
        _task(stack, _summaries(scheduler, runlog, store), "summaries")
        if not once:
            stack.push_async_callback(owned.cancel, catalog_watch.start(config.networks,
                                                                        metrics.registry))
        if duration_s:
            stack.callback(loop.call_later(duration_s, scheduler.stop).cancel)
        log.info("monitoring %d networks, %d schedules (location %s)%s", len(config.networks),
                 len(scheduler.schedules), config.location,
                 f", serving {'https' if web_config and web_config.tls else 'http'}://"
                 f"{listen.rsplit(':', 1)[0]}:{port}/metrics"
                 + (" (authentication required)" if web_config and web_config.auth_required
                    else "") if listen and port else "")
        if on_ready is not None:
            on_ready(scheduler, port)
        if not once:
            climbing = asyncio.create_task(ladders.run())
            stack.push_async_callback(_finish, climbing)
            stack.callback(ladders.stop)
        tests = None
        if equality_runner is not None:
            tests = asyncio.create_task(equality_runner.run_once() if once
                                        else equality_runner.run())
            stack.push_async_callback(owned.cancel, tests)
        audits = None
        if quality_runner is not None:
            audits = asyncio.create_task(quality_runner.run_once() if once
                                         else quality_runner.run())
            stack.push_async_callback(owned.cancel, audits)
        checks = None
        if contract_runner is not None:
            checks = asyncio.create_task(contract_runner.run_once() if once
                                         else contract_runner.run())
            stack.push_async_callback(owned.cancel, checks)
        fingerprinting = None
        if fingerprints is not None:
            fingerprinting = asyncio.create_task(fingerprints.run_once() if once
                                                 else fingerprints.run())
            stack.push_async_callback(owned.cancel, fingerprinting)
        await scheduler.run(once=once)
        if once and tests is not None:
            await tests
        if once and audits is not None:
            await audits
        if once and checks is not None:
            await checks
        if once and fingerprinting is not None:
            await fingerprinting
    _log_summary(scheduler, runlog, store, final=True)
    return scheduler


def _task(stack: contextlib.AsyncExitStack, work: Coroutine[Any, Any, None], name: str) -> None:
    """`work` as a task that the exit stack cancels."""
    stack.push_async_callback(owned.cancel, asyncio.create_task(work, name=name))


async def _finish(task: asyncio.Task[None]) -> None:
    """Wait for a task told to stop; cancelled if the wait itself is."""
    try:
        await task
    except BaseException:
        await owned.cancel_all([task])
        raise


def _export_streaks(exported: EqualityMetrics | QualityMetrics,
                    comparisons: Sequence[Comparison], streaks: Mapping[ComparisonKey, int],
                    consecutive: int) -> None:
    """Each comparison's bad verdicts in a row as stored, and its alarm, on /metrics from the
    start: the alert's count goes on across restarts."""
    for c in comparisons:
        count = streaks.get(c.key, 0)
        exported.in_a_row.labels(*c.key).set(count)
        exported.alarm.labels(*c.key).set(int(count >= consecutive))


def _equality_runner(config: Config, store: Store, metrics: MetricsSink,
                     extra: Sequence[equality.VerdictSink]) -> equality.EqualityRunner | None:
    """The model equality job of the config (None without one): its verdicts go to the
    store and /metrics; the alert's count of "differs" in a row goes on from the store."""
    if config.equality is None or not config.equality.comparisons:
        return None
    exported = EqualityMetrics(metrics.registry, config.equality.settings)
    exported.init(config.equality.comparisons)
    streaks = differs_in_a_row(read_verdicts([store.path]))
    _export_streaks(exported, config.equality.comparisons, streaks,
                    config.equality.settings.consecutive)
    return equality.EqualityRunner(config, sinks=[VerdictWriter(store.path), exported, *extra],
                                   differs_in_a_row=streaks)


def _quality_runner(config: Config, store: Store, metrics: MetricsSink,
                    extra: Sequence[quality.AuditSink]) -> quality.QualityRunner | None:
    """The quality audit job of the config (None without one): its audits go to the store
    and /metrics; the alert's count of "worse" in a row goes on from the store."""
    if config.quality is None or not config.quality.comparisons:
        return None
    exported = QualityMetrics(metrics.registry, config.quality.settings)
    exported.init(config.quality.comparisons)
    streaks = worse_in_a_row(read_audits([store.path]))
    _export_streaks(exported, config.quality.comparisons, streaks,
                    config.quality.settings.consecutive)
    return quality.QualityRunner(config, sinks=[AuditWriter(store.path), exported, *extra],
                                 worse_in_a_row=streaks)


def _contract_runner(config: Config, store: Store, metrics: MetricsSink
                     ) -> contract.ContractRunner | None:
    """The contract checks of the config (None without them): runs go to the store and
    /metrics."""
    if config.contract is None or not config.contract.targets:
        return None
    exported = ContractMetrics(metrics.registry)
    exported.init((n, t.model) for n, tier in config.contract.targets
                  for t in config.network(n).targets() if t.name == tier)
    return contract.ContractRunner(config, sinks=[ContractWriter(store.path), exported])
def _fingerprint_runner(config: Config, store: Store, metrics: MetricsSink,
                        tests: equality.EqualityRunner | None,
                        extra: Sequence[fingerprint.VerdictSink]
                        ) -> fingerprint.FingerprintRunner | None:
    """The fingerprint job of the config (None without one): sets and baselines from the
    store; verdicts to the store and /metrics; a change starts a model equality run now."""
    plan = config.fingerprint
    if plan is None or not plan.targets:
        return None
    exported = FingerprintMetrics(metrics.registry, plan.settings)
    exported.init(plan.targets)
    writer = FingerprintWriter(store.path)
    past = history(store.path, plan.settings.baseline_runs + 2)
    for runs in past.values():  # what the store knows, until the next run says more
        if runs:
            labels = (runs[-1].network, runs[-1].model)
            exported.set_version.labels(*labels).set(runs[-1].set_version)
            changes = [r.started_at for r in runs if r.verdict is FingerprintVerdict.CHANGED]
            if changes:
                exported.changed.labels(*labels).set(changes[-1])

    def on_change(result: FingerprintResult) -> None:
        if tests is not None and any(c.network == result.network and c.tier == result.tier
                                     for c in tests.plan.comparisons):
            log.info("fingerprint: %s %s changed; model equality runs now", result.network,
                     result.model)
            tests.wake()

    return fingerprint.FingerprintRunner(config, sinks=[writer, exported, *extra],
                                         set_sinks=[writer], sets=read_sets(store.path),
                                         history=past, on_change=on_change)


def _restore_signal(loop: asyncio.AbstractEventLoop, sig: signal.Signals,
                    previous: Callable[[int, FrameType | None], Any] | int | None) -> None:
    """The handler `sig` had before the loop's (asyncio's removal leaves Python's default)."""
    loop.remove_signal_handler(sig)
    if previous is not None:
        signal.signal(sig, previous)


def _on_signal(scheduler: Scheduler, sig: signal.Signals) -> None:
    log.info("%s: stopping; %d run(s) in flight get %.3gs to finish", sig.name,
             scheduler.in_flight, scheduler.grace_s)
    scheduler.stop()


async def _serve(stack: contextlib.AsyncExitStack, listen: str | None, metrics: MetricsSink,
                 scheduler: Scheduler, store: Store, config: Config,
                 web_config: WebConfig | None, warmup: WarmUp) -> int | None:
    """Serve /metrics and the rest on `listen` (None or "off": nothing); the port bound. The
    SLA figures' collector and the server join `stack`."""
    if not listen or listen == "off":
        return None
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    profiles = config.network_profiles()
    metrics.watch_in_flight(lambda: scheduler.in_flight)
    metrics.watch_store(store.health)
    if profiles:
        # evaluated once now, before any probe runs; then refreshed in a helper process,
        # where reading the store cannot slow the probes (monitor/exporter/sla_collector.py)
        sla = SLACollector(month_figures_source(store.path, profiles, config.maintenance),
                           processes=True)
        stack.callback(sla.close)
        metrics.add_collector(sla)
    try:
        runner = await start_server(host, port, registry=metrics.registry,
                                    scheduler=scheduler, store=store,
                                    status=StatusSource.from_config(config, store.path),
                                    web_config=web_config)
    except OSError as exc:
        raise UserError(f"--listen {listen}: cannot listen there ({exc.strerror}); pick "
                        "another port or `--listen off`") from None
    stack.push_async_callback(runner.cleanup)
    attach(runner, warmup=warmup)
    return bound_port(runner)


async def _summaries(scheduler: Scheduler, runlog: RunLog, store: Store) -> None:
    while True:
        await asyncio.sleep(SUMMARY_EVERY_S)
        _log_summary(scheduler, runlog, store)


def _log_summary(scheduler: Scheduler, runlog: RunLog, store: Store, final: bool = False
                 ) -> None:
    counts = runlog.take() if not final else Counter(scheduler.outcomes)
    runs = sum(counts.values())
    ok = Outcome.OK.value
    failures = " ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k != ok)
    log.info("%s runs=%d ok=%d %s missed=%d held=%d in_flight=%d max_lateness_s=%.3f "
             "stored=%d pending=%d dropped=%d at=%s", "total" if final else "last minute:",
             runs, counts.get(ok, 0), failures or "failures=0", scheduler.missed_total,
             sum(scheduler.held.values()), scheduler.in_flight, scheduler.max_lateness_s,
             store.written, store.pending, store.dropped, time.strftime("%H:%M:%S"))
