"""The read-only JSON API under /api/v1/ (docs/api.md), the status page's only data source.

What it shows of the config is public by construction (`PublicNetwork`: names, kinds, tiers
and model ids, jobs, intervals, SLA profiles): never a base URL, a key variable or a file path.
Runs are served without their free-text `error` and `details`, which can name hosts and paths;
what a network wrote in the fields it does serve (served model, node) is scrubbed of the
config's secrets on the way out (`monitor.core.secrets`), whatever older version stored it.

Every read runs in a worker thread (SQLite, like /metrics), at most READ_THREADS at a time,
and each answer is cached for CACHE_TTL_S (incidents INCIDENTS_TTL_S): a page left open in many
tabs costs the probes' event loop no more than one does.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.analysis.contract import contract_rows
from monitor.analysis.contract import section_json as contract_json
from monitor.analysis.equality import EqualityRow, equality_rows
from monitor.analysis.fingerprint import FingerprintRow, fingerprint_rows, row_json
from monitor.analysis.incidents import MIN_FAILURES, incidents_of, read_streaks
from monitor.analysis.maintenance import began_in_maintenance
from monitor.analysis.quality import QualityRow, quality_rows, result_json
from monitor.analysis.sla import SLAReport, SLIResult
from monitor.analysis.status import Plan, daily_bars, day_label, network_states, ttft_series
from monitor.config import Config
from monitor.core.contract import ContractSettings
from monitor.core.secrets import scrub_value
from monitor.core.slaprofile import MaintenanceWindow, SLAProfile
from monitor.core.times import parse_when
from monitor.core.transport import DEFAULT_CERT_EXPIRY_WARNING_S
from monitor.core.warmup import Warming
from monitor.exporter.metrics import SinkRegistry
from monitor.exporter.sla_collector import month_reports
from monitor.storage.filters import RunFilter
from monitor.storage.reads import (
    Page,
    read_audits,
    read_contract_runs,
    read_fingerprints,
    read_page,
    read_verdicts,
)

CACHE_TTL_S = 5.0
# Incidents read a week of raw runs (about a second per 400k runs, benchmarks/RESULTS.md) and
# a minute-old list is still recent: they are kept longer.
INCIDENTS_TTL_S = 60.0
READ_THREADS = 2
MAX_DAYS = 400
MAX_PAGE = 1000
DEFAULT_INCIDENTS_SINCE_S = 7 * 86400.0

# Stored run fields the API serves (not `error` or `details`: free text can name hosts, paths).
RESULT_FIELDS = (
    "network", "target", "job", "job_version", "model", "kind", "location", "started_at",
    "scheduled_at", "outcome", "http_status", "connect_s", "ttfb_s", "ttft_s", "duration_s",
    "output_tokens", "input_tokens", "token_source", "tokens_per_s", "max_gap_s", "queue_s",
    "retry_after_s", "served_model", "node", "lagged",
)
NETWORK_TEXTS = ("served_model", "node")  # of those, what a network writes


@dataclass(frozen=True, slots=True)
class PublicNetwork:
    """What anyone may know of a configured network."""

    name: str
    kind: str
    targets: tuple[tuple[str, str], ...]  # (tier, model id)
    jobs: tuple[str, ...]
    interval_s: float
    sla: str | None


@dataclass(frozen=True)
class StatusSource:
    """Where the API reads from: the store files and the config's public side."""

    stores: tuple[Path, ...]
    networks: tuple[PublicNetwork, ...]
    profiles: Mapping[str, SLAProfile]  # network -> its SLA profile
    maintenance: tuple[MaintenanceWindow, ...] = ()
    location: str = ""
    clock: Callable[[], float] = time.time
    min_failures: int = MIN_FAILURES
    secrets: tuple[str, ...] = field(default=(), repr=False)  # scrubbed from what is served
    contract_alpha: float = ContractSettings().alpha  # the tool calls' paired comparison's level

    @classmethod
    def from_config(cls, config: Config, store: str | Path) -> StatusSource:
        networks = tuple(PublicNetwork(n.name, n.kind, n.models, n.jobs, n.interval_s, n.sla)
                         for n in config.networks)
        profiles = config.network_profiles()
        alpha = (ContractSettings().alpha if config.contract is None
                 else config.contract.settings.alpha)
        return cls(stores=(Path(store),), networks=networks, profiles=profiles,
                   maintenance=config.maintenance, location=config.location,
                   secrets=config.secrets(), contract_alpha=alpha)

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.networks]

    def plans(self) -> dict[str, Plan]:
        return {n.name: Plan(tuple(tier for tier, _ in n.targets), n.interval_s)
                for n in self.networks}


@dataclass
class _Reads:
    """The cache and the thread limit of one app's store reads."""

    cache: dict[tuple[str, ...], tuple[float, Any]] = field(default_factory=dict)
    threads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(READ_THREADS))


SOURCE_KEY = web.AppKey("status_source", StatusSource)
READS_KEY = web.AppKey("status_reads", _Reads)
METRICS_KEY = web.AppKey("status_metrics", CollectorRegistry)


# -- TLS, from the probes' own metrics (the store keeps no certificate facts per network) ----

@dataclass(frozen=True, slots=True)
class TLSState:
    """A network's TLS as its latest HTTPS runs saw it."""

    verified: bool  # False: tls.insecure is on, certificates are not checked
    version: str | None  # e.g. TLSv1.3
    certificate_expires_at: float | None  # the earliest expiry among its targets' chains
    expires_soon: bool  # within the certificate alert's warning period (or expired)


def tls_states(registry: CollectorRegistry, now: float) -> dict[str, TLSState]:
    """network -> its TLS state, for networks probed over HTTPS (or with verification off),
    from the snapshot the metrics sink keeps beside the registry (never by collecting it: at
    thousands of series that would hold the interpreter for most of a second). A registry
    no MetricsSink writes into has none: no TLS state."""
    if not isinstance(registry, SinkRegistry):
        return {}
    out: dict[str, TLSState] = {}
    for network, tls in registry.tls.networks().items():
        when = tls.certificate_expires_at
        out[network] = TLSState(
            verified=tls.verified, version=tls.version, certificate_expires_at=when,
            expires_soon=when is not None and when - now < DEFAULT_CERT_EXPIRY_WARNING_S)
    return out


class BadRequest(ValueError):
    """A query parameter the API cannot use; the message says which and what to write."""


# -- parameters ----------------------------------------------------------------------------

def _number(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"{name}={text!r}: expected a number") from None
    if not low <= value <= high:
        raise BadRequest(f"{name}={text!r}: expected {low:g} to {high:g}")
    return value


def _time(request: web.Request, name: str, now: float) -> float | None:
    """Unix seconds, ISO-8601, or a duration (`24h`, `7d`) meaning that long before now."""
    text = request.query.get(name)
    if text is None or text == "":
        return None
    try:
        return parse_when(text, now)
    except ValueError:
        raise BadRequest(f"{name}={text!r}: expected unix seconds, ISO-8601 "
                         "(2026-01-31T12:00:00Z) or a duration before now (24h, 7d)") from None


def _networks(request: web.Request, source: StatusSource) -> list[str]:
    """The `network` parameter (repeatable), checked against the configured networks."""
    wanted = request.query.getall("network", [])
    unknown = [n for n in wanted if n not in source.names]
    if unknown:
        raise web.HTTPNotFound(text=_error_json(f"unknown network {unknown[0]!r}; "
                                                f"configured: {', '.join(source.names)}"),
                               content_type="application/json")
    return wanted or source.names


def _error_json(message: str) -> str:
    return web.json_response({"error": message}).text or ""


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _source(request: web.Request) -> StatusSource:
    source = request.app.get(SOURCE_KEY)
    if source is None:
        raise web.HTTPServiceUnavailable(text=_error_json("no store attached to this server"),
                                         content_type="application/json")
    return source


# -- reading off the loop, cached -----------------------------------------------------------

async def _read(request: web.Request, key: tuple[str, ...], read: Callable[[], Any],
                ttl_s: float | None = None) -> Any:
    reads = request.app[READS_KEY]
    now = time.monotonic()
    hit = reads.cache.get(key)
    if hit is not None and now - hit[0] < (CACHE_TTL_S if ttl_s is None else ttl_s):
        return hit[1]
    async with reads.threads:
        value = await asyncio.to_thread(read)
    if len(reads.cache) > 256:
        reads.cache.clear()
    reads.cache[key] = (time.monotonic(), value)
    return value


def _key(request: web.Request) -> tuple[str, ...]:
    return (request.path, *sorted(f"{k}={v}" for k, v in request.query.items()))


def _answer(body: dict[str, Any], now: float) -> web.Response:
    return web.json_response({"generated_at": now, **body},
                             headers={"Cache-Control": f"max-age={CACHE_TTL_S:g}"})


# -- handlers -------------------------------------------------------------------------------

async def networks(request: web.Request) -> web.Response:
    source = _source(request)
    now = source.clock()
    registry = request.app.get(METRICS_KEY)

    def read() -> tuple[dict[str, Any], dict[str, TLSState], list[EqualityRow],
                        list[FingerprintRow], list[QualityRow]]:
        states = network_states(source.stores, source.plans(), now=now,
                                min_failures=source.min_failures,
                                maintenance=source.maintenance)
        tested = equality_rows(read_verdicts(source.stores, networks=source.names))
        printed = fingerprint_rows(read_fingerprints(source.stores, networks=source.names))
        audited = quality_rows(read_audits(source.stores, networks=source.names))
        return (states, tls_states(registry, now) if registry is not None else {}, tested,
                printed, audited)

    states, tls, tested, printed, audited = await _read(request, _key(request), read)
    warming = request.app[WARMING_KEY]() if WARMING_KEY in request.app else {}
    out = []
    for n in source.networks:
        s = states[n.name]
        t = tls.get(n.name)
        out.append({
            "name": n.name, "kind": n.kind, "sla_profile": n.sla, "interval_s": n.interval_s,
            "targets": [{"name": tier, "model": model} for tier, model in n.targets],
            "jobs": list(n.jobs), "state": s.state, "reason": s.reason,
            "last_run_at": s.last_run_at, "failing": dict(s.failing),
            "tls": None if t is None else {
                "verified": t.verified, "version": t.version,
                "certificate_expires_at": t.certificate_expires_at,
                "expires_soon": t.expires_soon},
            "model_equality": [_equality_json(r) for r in tested if r.network == n.name],
            "quality": [_quality_json(r) for r in audited if r.network == n.name],
            "fingerprint": [_fingerprint_json(r) for r in printed if r.network == n.name],
            "warming_up": (None if (w := warming.get(n.name)) is None
                           else {"runs": w.runs, "needed": w.needed}),
        })
    return _answer({"location": source.location, "version": __version__, "networks": out}, now)


def _equality_json(row: EqualityRow) -> dict[str, Any]:
    """A comparison's latest model equality verdict (docs/equality.md)."""
    v = row.latest
    return {"model": row.model, "reference": row.reference, "verdict": v.verdict.value,
            "p_value": _finite(v.p_value), "alpha": v.alpha, "samples": v.samples,
            "reference_samples": v.reference_samples, "tested_at": v.started_at,
            "differs_in_a_row": v.consecutive_differs, "prompt_set": v.prompt_set}


def _quality_json(row: QualityRow) -> dict[str, Any]:
    """A comparison's latest quality audit (docs/quality.md)."""
    return {**result_json(row.latest), "audits": row.audits, "worse": row.worse}


async def quality(request: web.Request) -> web.Response:
    """The latest quality audit of each (network, model, reference), worst first."""
    source = _source(request)
    now = source.clock()
    names = _networks(request, source)
    audited = await _read(request, _key(request), lambda: quality_rows(
        read_audits(source.stores, since=_time(request, "since", now), networks=names)))
    return _answer({"audits": [_quality_json(r) for r in audited]}, now)
def _fingerprint_json(row: FingerprintRow) -> dict[str, Any]:
    """A network model's latest fingerprint verdict (docs/fingerprint.md)."""
    out = row_json(row)
    for key in ("distance", "p_value", "reference_distance", "reference_p_value"):
        value = out[key]
        out[key] = _finite(value) if isinstance(value, float) else value
    return out


async def fingerprint(request: web.Request) -> web.Response:
    source = _source(request)
    now = source.clock()
    names = _networks(request, source)
    rows = await _read(request, _key(request), lambda: fingerprint_rows(
        read_fingerprints(source.stores, networks=names)))
    return _answer({"fingerprints": [_fingerprint_json(r) for r in rows]}, now)


async def daily(request: web.Request) -> web.Response:
    source = _source(request)
    now = source.clock()
    days = int(_number(request, "days", 90, 1, MAX_DAYS))
    names = _networks(request, source)
    bars = await _read(request, _key(request), lambda: daily_bars(
        source.stores, names, days=days, now=now, maintenance=source.maintenance))
    return _answer({"days": days, "networks": [
        {"name": name, "days": [
            {"date": day_label(b.day), "runs": b.runs, "ok": b.ok, "failed": b.failed,
             "set_aside": dict(b.set_aside), "maintenance": b.maintenance,
             "availability": b.availability} for b in bars[name]]}
        for name in names]}, now)


async def ttft(request: web.Request) -> web.Response:
    source = _source(request)
    now = source.clock()
    hours = _number(request, "hours", 24, 0.25, 48)
    step = _number(request, "step", 900, 60, 86400)
    names = _networks(request, source)
    since = math.floor((now - hours * 3600) / step) * step  # steps on the clock's grid
    series = await _read(request, _key(request), lambda: ttft_series(
        source.stores, names, since=since, until=now, step_s=step))
    return _answer({"since": since, "step_s": step, "networks": [
        {"name": name, "points": [{"start": p.start, "runs": p.runs, "p50_s": p.p50_s,
                                   "p95_s": p.p95_s} for p in series[name]]}
        for name in names]}, now)


def _sli_json(s: SLIResult) -> dict[str, Any]:
    return {"sli": s.sli, "target": s.target, "objective": s.objective, "events": s.total,
            "bad": s.bad, "value": _finite(s.value), "attained": s.attained,
            "error_budget_remaining": _finite(s.budget_remaining),
            "burn_rate": _finite(s.burn_rate)}


def _sla_json(r: SLAReport) -> dict[str, Any]:
    availability = r.sli("availability")
    return {
        "name": r.network, "profile": r.profile, "runs": r.runs, "ok": r.ok,
        "rate_limited": r.rate_limited, "buyer_side": r.buyer_side,
        "maintenance_runs": r.excluded_runs,
        "availability": r.availability,
        "availability_excl_rate_limited": r.availability_excl_rate_limited,
        "attained": r.attained,
        "error_budget_remaining": _finite(availability.budget_remaining)
        if availability else None,
        "slis": [_sli_json(s) for s in r.slis],
    }


async def sla(request: web.Request) -> web.Response:
    source = _source(request)
    now = source.clock()
    names = _networks(request, source)
    profiles = {n: source.profiles[n] for n in names if n in source.profiles}
    reports = await _read(request, _key(request), lambda: month_reports(
        list(source.stores), profiles, at=now, maintenance=source.maintenance))
    start = reports[0].start if reports else None
    end = reports[0].end if reports else None
    return _answer({"period": {"start": start, "end": end}, "networks": [
        _sla_json(r) for r in reports]}, now)


async def incidents(request: web.Request) -> web.Response:
    source = _source(request)
    now = source.clock()
    since = _time(request, "since", now)
    since = now - DEFAULT_INCIDENTS_SINCE_S if since is None else since
    until = _time(request, "until", now)
    limit = int(_number(request, "limit", 50, 1, MAX_PAGE))
    least = int(_number(request, "min_failures", source.min_failures, 1, 1000))
    names = _networks(request, source)
    targets = request.query.getall("target", [])
    found = await _read(request, _key(request), lambda: incidents_of(
        read_streaks(source.stores, since=since, until=until, networks=names), least),
        ttl_s=INCIDENTS_TTL_S)
    chosen = [i for i in found if not targets or i.target in targets]
    return _answer({"since": since, "until": until, "min_failures": least,
                    "total": len(chosen), "incidents": [
        {"network": i.network, "target": i.target, "location": i.location,
         "started_at": i.started_at, "ended_at": i.ended_at, "ongoing": i.ongoing,
         "last_failure_at": i.last_failure_at, "duration_s": i.duration_s(now),
         "failures": i.failures, "outcome": i.outcome, "outcomes": i.outcomes,
         "maintenance": began_in_maintenance(source.maintenance, i.network, i.started_at)}
        for i in chosen[:limit]]}, now)


def _cursor(text: str) -> tuple[float, int]:
    started, sep, rowid = text.partition("~")
    try:
        if sep:
            return float(started), int(rowid)
    except ValueError:
        pass
    raise BadRequest(f"cursor={text!r}: not a cursor this API gave out (use the `next` link)")


async def results(request: web.Request) -> web.Response:
    source = _source(request)
    now = source.clock()
    names = _networks(request, source)
    runs = RunFilter(since=_time(request, "since", now), until=_time(request, "until", now),
                     networks=names, jobs=request.query.getall("job", []))
    outcomes = request.query.getall("outcome", [])
    targets = request.query.getall("target", [])
    limit = int(_number(request, "limit", 100, 1, MAX_PAGE))
    after = _cursor(request.query["cursor"]) if "cursor" in request.query else None

    def read() -> Page:
        page = read_page(source.stores[0], RESULT_FIELDS, runs, outcomes=outcomes,
                         targets=targets, limit=limit, after=after)
        for row in page.rows:
            for name in NETWORK_TEXTS:
                row[name] = scrub_value(row[name], source.secrets)
        return page

    page = await _read(request, _key(request), read)
    next_link = None
    if page.next is not None:
        query = [(k, v) for k, v in request.query.items() if k != "cursor"]
        query.append(("cursor", f"{page.next[0]!r}~{page.next[1]}"))
        next_link = str(request.rel_url.with_query(query))
    rows = [{**row, "lagged": bool(row["lagged"])} for row in page.rows]
    return _answer({"results": rows, "next": next_link}, now)


async def contract(request: web.Request) -> web.Response:
    """The API contract per network and model over `days` (default 7): tool-call error
    rate and interval, grades, finish_reason shares, the latest matrix (docs/contract.md).
    Without the cells' free-text details (a 4xx message can name hosts)."""
    source = _source(request)
    now = source.clock()
    since = now - _number(request, "days", 7, 1, MAX_DAYS) * 86400
    names = _networks(request, source)
    # every network's runs: a network's comparison pairs it with its reference's
    rows = await _read(request, _key(request), lambda: contract_rows(read_contract_runs(
        source.stores, since=since, networks=source.names)))
    out = []
    for item in contract_json(rows):
        if item["network"] not in names:
            continue
        params = item["params"]
        assert isinstance(params, dict)
        item["params"] = {p: c["cell"] for p, c in params.items()}
        out.append(item)
    return _answer({"networks": out}, now)


async def not_found(request: web.Request) -> web.Response:
    return web.json_response({"error": f"no such API resource: {request.path}; see "
                                       "/api/v1/ (docs/api.md)"}, status=404)


async def index(request: web.Request) -> web.Response:
    """Every resource registered under /api/v1/ (here or beside this module)."""
    paths = [r.canonical for r in request.app.router.resources()
             if r.canonical.startswith("/api/v1/") and r.canonical != "/api/v1/"
             and "{tail}" not in r.canonical]
    return web.json_response({"resources": paths})


@web.middleware
async def bad_requests(request: web.Request,
                       handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """A BadRequest from any API handler becomes a 400 with a JSON error naming the parameter."""
    try:
        response: web.StreamResponse = await handler(request)
    except BadRequest as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return response


ROUTES: tuple[tuple[str, Callable[[web.Request], Any]], ...] = (
    ("networks", networks),
    ("daily", daily),
    ("ttft", ttft),
    ("sla", sla),
    ("incidents", incidents),
    ("results", results),
    ("quality", quality),
    ("contract", contract),
    ("fingerprint", fingerprint),
)


# Networks whose alert windows are still filling since the monitor started (server.py sets it)
Warmings = Callable[[], Mapping[str, Warming]]
WARMING_KEY: web.AppKey[Warmings] = web.AppKey("warming")


def add_routes(app: web.Application, source: StatusSource | None,
               registry: CollectorRegistry | None = None) -> None:
    """Register the API on `app` (called from monitor.web.server.build_app); without a source
    every resource answers 503. `registry` (the probes' metrics) gives the networks' TLS."""
    if source is not None:
        app[SOURCE_KEY] = source
    if registry is not None:
        app[METRICS_KEY] = registry
    app[READS_KEY] = _Reads()
    for name, handler in ROUTES:
        app.router.add_get(f"/api/v1/{name}", handler)
    app.router.add_get("/api/v1/", index)
    app.router.add_get("/api/v1/{tail:.*}", not_found)
