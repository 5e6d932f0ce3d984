"""`depin-monitor run`: the long-running monitor (scheduler -> store + /metrics), plus an hourly
check of each network's model listing (monitor.catalog.watch).

Signals: SIGINT/SIGTERM stop scheduling, give in-flight runs a grace period, flush the store
and exit 0. Logs: one key=value line per run at debug (-vv), a summary per minute at info (-v).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from monitor.catalog import watch as catalog_watch
from monitor.config import Config, load_config
from monitor.errors import UserError
from monitor.loopwatch import LoopWatch
from monitor.result import ProbeResult
from monitor.scheduler import DEFAULT_GRACE_S, Scheduler, Sink
from monitor.store import Store

log = logging.getLogger("monitor.run")

DEFAULT_DB = "depin-monitor.db"
DEFAULT_LISTEN = "127.0.0.1:9464"
SUMMARY_EVERY_S = 60.0

EXAMPLE = """\
examples:
  depin-monitor run -c examples/demo.yaml --db results.db
  depin-monitor run -c monitor.yaml --listen 0.0.0.0:9464 -v
  depin-monitor run -c monitor.yaml --once --db results.db      # cron: every schedule once
  depin-monitor run -c monitor.yaml --skip-missing-keys          # probe the networks it can

API keys come from the variables named by api_key_env. If one is not set, run refuses to
start, unless --skip-missing-keys: then those networks are skipped with a warning.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="the long-running monitor: probe on schedule, store, serve /metrics",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-c", "--config", required=True, help="the monitor's YAML config")
    p.add_argument("--db", "--store", dest="db", default=DEFAULT_DB, metavar="PATH",
                   help=f"SQLite store to append results to (default: {DEFAULT_DB})")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="serve /metrics, /healthz, /readyz and a status page here (default: "
                        f"the config's `listen`, else {DEFAULT_LISTEN}; `off` to disable; "
                        "with --once only if given)")
    p.add_argument("--once", action="store_true",
                   help="run every schedule once, store the results and exit")
    p.add_argument("--skip-missing-keys", action="store_true",
                   help="skip networks whose api_key_env variable is not set (default: refuse)")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, metavar="S",
                   help=f"on SIGTERM, let runs in flight finish for S seconds "
                        f"(default {DEFAULT_GRACE_S:g})")
    p.set_defaults(func=run, daemon=True)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    config = apply_key_policy(config, skip=args.skip_missing_keys)
    if args.grace < 0:
        raise UserError(f"--grace {args.grace}: must be 0 or more seconds")
    listen = args.listen or (None if args.once else (config.listen or DEFAULT_LISTEN))
    store = open_store(args.db)
    try:
        asyncio.run(monitor(config, store, listen=listen, once=args.once, grace_s=args.grace))
    finally:
        store.close()
    log.info("stored %d results in %s", store.written, args.db)
    return 0


def apply_key_policy(config: Config, *, skip: bool) -> Config:
    """Refuse a config whose keys are missing, or drop those networks with a warning."""
    missing = config.missing_keys()
    if not missing:
        return config
    if not skip:
        lines = [f"{config.path}: networks: {net}: environment variable {var} is not set; "
                 f"export {var}=<key>, or pass --skip-missing-keys to skip this network"
                 for net, var in missing]
        raise UserError("\n".join(lines))
    for net, var in missing:
        print(f"depin-monitor: warning: skipping network {net}: environment variable {var} "
              "is not set", file=sys.stderr)
    config = config.without(net for net, _ in missing)
    if not config.networks:
        raise UserError(f"{config.path}: every network was skipped (missing API keys); "
                        "nothing to monitor")
    return config


def open_store(path: str) -> Store:
    try:
        return Store(path)
    except Exception as exc:  # sqlite3.DatabaseError, OSError: one line, no traceback
        raise UserError(f"--db {path}: cannot open the store: {exc}") from None


# -- the runtime shared with `demo` ------------------------------------------------------

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
                      _f(r.ttft_s), _f(r.duration_s), r.output_tokens, _f(r.lateness_s),
                      int(r.lagged), _quote(r.error))

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"' if text else "-"


def metrics_sink(config: Config) -> object | None:
    """The Prometheus sink, if monitor.metrics is installed (it is a colleague's module)."""
    try:
        from monitor.metrics import MetricsSink
    except ImportError:  # pragma: no cover - until monitor/metrics.py lands
        log.warning("monitor.metrics is not available; not exporting metrics")
        return None
    profiles = {n.name: config.profiles[n.sla] for n in config.networks if n.sla}
    sink = MetricsSink(network_profiles=profiles, extra_profiles=list(config.profiles.values()))
    sink.init_targets((t.network, t.name, j.name) for t, j, _ in config.schedules())
    return sink


def tune_gc() -> None:
    """Fewer, shorter collector pauses while probes are timed. CPython's default collects the
    young generation every 700 allocations; with hundreds of streams in flight the full
    collections paused the loop for 50-160 ms and every stream measured the pause as TTFT
    (benchmarks/RESULTS.md, accuracy). Start-up objects are frozen out of collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


async def monitor(config: Config, store: Store, *, listen: str | None = None,
                  once: bool = False, grace_s: float = DEFAULT_GRACE_S,
                  extra_sinks: Sequence[Sink] = (), duration_s: float | None = None,
                  on_ready: Callable[[Scheduler, int | None], None] | None = None,
                  handle_signals: bool = True) -> Scheduler:
    """Run the scheduler over `config` into `store` (and /metrics if `listen`) until a signal,
    `duration_s`, or (once) every schedule ran once. Returns the finished scheduler."""
    metrics = metrics_sink(config)
    watch = LoopWatch()
    if metrics is not None:
        watch.on_sample.append(metrics.observe_loop_lag)  # type: ignore[attr-defined]
    runlog = RunLog()
    sinks: list[Sink] = [store, runlog, *extra_sinks]
    if metrics is not None:
        sinks.insert(1, metrics)  # type: ignore[arg-type]
    scheduler = Scheduler(config.schedules(), sinks=sinks, concurrency=config.concurrency,
                          location=config.location, grace_s=grace_s, loopwatch=watch)
    runner, port = await _serve(listen, metrics, scheduler, store, config)
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _on_signal, scheduler, sig)
    tune_gc()
    watch.start()
    summary = asyncio.create_task(_summaries(scheduler, runlog, store))
    catalog = None if once or metrics is None else catalog_watch.start(
        config.networks, metrics.registry)  # type: ignore[attr-defined]
    timer = loop.call_later(duration_s, scheduler.stop) if duration_s else None
    log.info("monitoring %d networks, %d schedules (location %s)%s", len(config.networks),
             len(scheduler.schedules), config.location,
             f", serving http://{listen.rsplit(':', 1)[0]}:{port}/metrics" if port else "")
    if on_ready is not None:
        on_ready(scheduler, port)
    try:
        await scheduler.run(once=once)
    finally:
        if timer is not None:
            timer.cancel()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        for task in (summary, catalog):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await watch.stop()
        await asyncio.to_thread(store.flush)
        if runner is not None:
            await runner.cleanup()
    _log_summary(scheduler, runlog, store, final=True)
    return scheduler


def _on_signal(scheduler: Scheduler, sig: signal.Signals) -> None:
    log.info("%s: stopping; %d run(s) in flight get %.3gs to finish", sig.name,
             scheduler.in_flight, scheduler.grace_s)
    scheduler.stop()


async def _serve(listen: str | None, metrics: object | None, scheduler: Scheduler,
                 store: Store, config: Config) -> tuple[object | None, int | None]:
    if not listen or listen == "off" or metrics is None:
        return None, None
    try:
        from monitor.metrics import SLACollector
        from monitor.server import bound_port, parse_listen, start_server
        from monitor.sla import month_figures_source
    except ImportError:  # pragma: no cover - until the exporter lands
        log.warning("monitor.server is not available; not serving /metrics")
        return None, None
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    profiles = {n.name: config.profiles[n.sla] for n in config.networks if n.sla}
    metrics.watch_in_flight(lambda: scheduler.in_flight)  # type: ignore[attr-defined]
    if profiles:
        metrics.add_collector(SLACollector(  # type: ignore[attr-defined]
            month_figures_source(store, profiles, config.maintenance)))
    try:
        runner = await start_server(host, port, registry=metrics.registry,  # type: ignore[attr-defined]
                                    scheduler=scheduler, store=store)
    except OSError as exc:
        raise UserError(f"--listen {listen}: cannot listen there ({exc.strerror}); pick "
                        "another port or `--listen off`") from None
    return runner, bound_port(runner)


async def _summaries(scheduler: Scheduler, runlog: RunLog, store: Store) -> None:
    while True:
        await asyncio.sleep(SUMMARY_EVERY_S)
        _log_summary(scheduler, runlog, store)


def _log_summary(scheduler: Scheduler, runlog: RunLog, store: Store, final: bool = False
                 ) -> None:
    counts = runlog.take() if not final else Counter(scheduler.outcomes)
    runs = sum(counts.values())
    failures = " ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k != "ok")
    log.info("%s runs=%d ok=%d %s missed=%d in_flight=%d max_lateness_s=%.3f stored=%d "
             "pending=%d at=%s", "total" if final else "last minute:", runs, counts.get("ok", 0),
             failures or "failures=0", scheduler.missed_total, scheduler.in_flight,
             scheduler.max_lateness_s, store.written, store.pending,
             time.strftime("%H:%M:%S"))
