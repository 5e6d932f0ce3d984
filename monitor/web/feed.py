"""The status feed: /api/v1/feed.atom (every network) and /api/v1/networks/{name}/feed.atom,
Atom (RFC 4287) built with xml.etree, so every text is escaped by the serializer. What it
announces is monitor.analysis.feed's (docs/api.md, "Feed"); a verdict family adds a reader to
SOURCES. Entry ids are urn:uuid:s derived (UUID 5) from the monitor's location and each event's
key, so the same event keeps its id on every fetch and after a restart."""

from __future__ import annotations

import datetime as dt
import math
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from urllib.parse import quote

from aiohttp import web

from monitor import __version__
from monitor.analysis.feed import (
    CONTRACT_MEMORY_S,
    DayVerdict,
    FeedEvent,
    capacity_events,
    contract_events,
    day_verdicts,
    equality_events,
    fingerprint_events,
    incident_events,
    newest_first,
    quality_events,
    sla_events,
)
from monitor.analysis.incidents import Incident, incidents_of, read_streaks
from monitor.storage.reads import (
    read_audits,
    read_contract_runs,
    read_fingerprints,
    read_ladders,
    read_verdicts,
)
from monitor.web import api
from monitor.web.api import StatusSource, _read, _source
from monitor.web.conditional import cached_response
from monitor.web.detail import known_network

ATOM = "http://www.w3.org/2005/Atom"
CONTENT_TYPE = "application/atom+xml; charset=utf-8"
WINDOW_S = 7 * 86400.0  # what the feed looks back over
MAX_ENTRIES = 100
MAX_AGE_S = 60.0  # Cache-Control for readers
DAY_S = 86400
# A fixed namespace for the feed's UUID-5 ids (itself uuid5(NAMESPACE_URL, "depin-monitor feed")).
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/depin-monitor/feed")

# A reader: (source, since, now, networks) -> the events of those networks since `since`.
Reader = Callable[[StatusSource, float, float, Sequence[str]], list[FeedEvent]]


def incidents_key(network: str | None) -> tuple[str, ...]:
    """The cache key of /api/v1/incidents?since=7d (with `network=`): the feed reads the week's
    incidents as that resource does and shares its entry, so while the status page is open the
    feed costs no second read of the week's runs."""
    return ("/api/v1/incidents", *([f"network={network}"] if network else []), "since=7d")


def read_incidents(source: StatusSource, now: float, names: Sequence[str]) -> list[Incident]:
    return incidents_of(read_streaks(source.stores, since=now - WINDOW_S, networks=names),
                        source.min_failures)


# Closed days' verdicts do not change: each is judged once per process (bounded), for every
# network with a profile at once (a network's feed filters them), once the day has been closed
# for SETTLE_S (the store writes its runs in batches).
_DAYS: dict[tuple[object, ...], list[DayVerdict]] = {}
SETTLE_S = 600.0


def _sla(source: StatusSource, since: float, now: float, names: Sequence[str]
         ) -> list[FeedEvent]:
    if not any(n in source.profiles for n in names):
        return []
    profiles = dict(source.profiles)
    verdicts: list[DayVerdict] = []
    for day in range(math.floor(since / DAY_S) - 1, math.floor(now / DAY_S)):
        key = (source.stores, tuple(sorted(profiles.items())), day, source.maintenance)
        found = _DAYS.get(key)
        if found is None:
            found = day_verdicts(source.stores, profiles, day=day,
                                 maintenance=source.maintenance)
            if now - (day + 1) * DAY_S > SETTLE_S:
                if len(_DAYS) > 1024:
                    _DAYS.clear()
                _DAYS[key] = found
        verdicts += found
    return sla_events(verdicts)


def _equality(source: StatusSource, since: float, now: float, names: Sequence[str]
              ) -> list[FeedEvent]:
    # every test: whether one changed the verdict depends on the test before it
    return equality_events(read_verdicts(source.stores, networks=names))


def _fingerprint(source: StatusSource, since: float, now: float, names: Sequence[str]
                 ) -> list[FeedEvent]:
    return fingerprint_events(read_fingerprints(source.stores, networks=names))


def _capacity(source: StatusSource, since: float, now: float, names: Sequence[str]
              ) -> list[FeedEvent]:
    return capacity_events(read_ladders(source.stores, networks=names))


def _quality(source: StatusSource, since: float, now: float, names: Sequence[str]
             ) -> list[FeedEvent]:
    # every audit: whether one changed the verdict depends on the audit before it
    return quality_events(read_audits(source.stores, networks=names))


def _contract(source: StatusSource, since: float, now: float, names: Sequence[str]
              ) -> list[FeedEvent]:
    # An event in the window looks back CONTRACT_MEMORY_S to the run before it, whose
    # comparison looks back as far again (and a minute for its reference's run): what is read
    # does not depend on when. Every configured network's runs, as /api/v1/contract reads
    # them: a network's tool calls are paired with its reference's.
    runs = read_contract_runs(source.stores, since=since - 2 * CONTRACT_MEMORY_S - 60,
                              networks=source.names)
    return contract_events(runs, alpha=source.contract_alpha)


SOURCES: tuple[Reader, ...] = (  # besides the incidents
    _sla, _equality, _capacity, _fingerprint, _quality, _contract)


def events(source: StatusSource, names: Sequence[str], now: float,
           incidents: Sequence[Incident]) -> list[FeedEvent]:
    """The newest MAX_ENTRIES events of `names` within WINDOW_S of `now`: `incidents` (those
    of read_incidents) and what each of SOURCES reads."""
    since = now - WINDOW_S
    found = incident_events([i for i in incidents if i.network in names], source.maintenance)
    found += [e for read in SOURCES for e in read(source, since, now, names)]
    return newest_first([e for e in found if since <= e.at <= now and e.network in names],
                        MAX_ENTRIES)


# -- Atom ---------------------------------------------------------------------------------

def rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def _urn(*parts: str) -> str:
    return uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)).urn


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        node.text = text
    return node


def render(found: Sequence[FeedEvent], *, location: str, network: str | None, origin: str,
           self_path: str, since: float) -> bytes:
    """The Atom document. `updated` is the newest entry's time (the window's start, to the
    hour, when there is none), so that an unchanged feed is byte for byte the same."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _sub(feed, "id", _urn("feed", location, network or ""))
    title = "depin-monitor" + (f": {network}" if network else ": network status")
    _sub(feed, "title", title + (f" (from {location})" if location else ""))
    _sub(feed, "subtitle", "Incidents opened and resolved, SLA verdict changes, model "
                           "equality, capacity, fingerprint, quality and contract verdict "
                           "changes")
    newest = max((e.at for e in found), default=math.floor(since / 3600) * 3600)
    _sub(feed, "updated", rfc3339(newest))
    _sub(feed, "link", rel="self", type="application/atom+xml", href=origin + self_path)
    page = f"/network/{quote(network, safe='')}" if network else "/"
    _sub(feed, "link", rel="alternate", type="text/html", href=origin + page)
    author = _sub(feed, "author")
    _sub(author, "name", "depin-monitor" + (f" at {location}" if location else ""))
    _sub(feed, "generator", "depin-monitor", version=__version__)
    for e in found:
        entry = _sub(feed, "entry")
        _sub(entry, "id", _urn("entry", location, e.key))
        _sub(entry, "title", e.title)
        _sub(entry, "updated", rfc3339(e.at))
        _sub(entry, "link", rel="alternate", type="text/html",
             href=f"{origin}/network/{quote(e.network, safe='')}")
        _sub(entry, "category", term=e.kind)
        if e.maintenance:
            _sub(entry, "category", term="maintenance")
        _sub(entry, "summary", e.summary)
    out: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return out


async def _answer(request: web.Request, source: StatusSource, network: str | None
                  ) -> web.Response:
    now = source.clock()
    names = [network] if network else source.names
    incidents = await _read(request, incidents_key(network),
                            lambda: read_incidents(source, now, names),
                            ttl_s=api.INCIDENTS_TTL_S)
    found = await _read(request, ("feed", network or ""),
                        lambda: events(source, names, now, incidents),
                        ttl_s=api.INCIDENTS_TTL_S)
    body = render(found, location=source.location, network=network,
                  origin=str(request.url.origin()), self_path=request.path,
                  since=now - WINDOW_S)
    return cached_response(request, body, CONTENT_TYPE, MAX_AGE_S)


async def feed(request: web.Request) -> web.Response:
    return await _answer(request, _source(request), None)


async def network_feed(request: web.Request) -> web.Response:
    source = _source(request)
    return await _answer(request, source, known_network(request, source))


ROUTES: tuple[tuple[str, Callable[[web.Request], object]], ...] = (
    ("/api/v1/feed.atom", feed),
    ("/api/v1/networks/{name}/feed.atom", network_feed),
)
