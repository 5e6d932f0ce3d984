"""What reaches people who are not looking at the page, over HTTP against the real server and
the store the real scheduler filled: the Atom feed read by a real feed parser, SVG badges
parsed as XML, declared maintenance (a window around "now"), and a network's own resource."""

from __future__ import annotations

import calendar
import dataclasses
import math
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import httpx
import pytest

from monitor.analysis.incidents import set_aside
from monitor.analysis.stats import wilson
from monitor.core.contract import Cell, Param
from monitor.core.quality import Verdict as Audited
from monitor.core.result import Outcome, ProbeResult
from monitor.storage.contract import ContractWriter
from monitor.storage.quality import AuditWriter
from monitor.storage.store import Store
from monitor.web.api import PublicNetwork, StatusSource
from tests.test_feed_events import run
from tests.web.conftest import (
    FLAKY_WORSE,
    IN_MAINTENANCE,
    KEY,
    KEY_ENV,
    MAINTENANCE_REASON,
    SOON_S,
    Seeded,
    Served,
    serving,
)
from tests.web.test_api import stored

feedparser = pytest.importorskip("feedparser", reason="pip install feedparser (the test extra)")

SVG = "{http://www.w3.org/2000/svg}"
DAY_S = 86400.0


@pytest.fixture(scope="module")
def runs(seeded: Seeded) -> list[ProbeResult]:
    return stored(seeded.db)


def fetch(served: Served, path: str, status: int = 200, **headers: str) -> httpx.Response:
    r = httpx.get(f"{served.url}{path}", headers=headers, timeout=30)
    assert r.status_code == status, r.text
    return r


def unix(parsed: object) -> float:
    return float(calendar.timegm(parsed))  # type: ignore[arg-type]


# -- the feed -----------------------------------------------------------------------------

def test_the_feed_is_valid_atom_holding_the_incidents(served: Served, seeded: Seeded) -> None:
    r = fetch(served, "/api/v1/feed.atom")
    assert r.headers["content-type"].startswith("application/atom+xml")
    assert "max-age=" in r.headers["cache-control"] and r.headers["etag"]
    feed = feedparser.parse(r.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.id.startswith("urn:uuid:") and "test-lab" in feed.feed.title
    assert feed.feed.updated_parsed is not None
    entries = feed.entries
    assert 0 < len(entries) <= 100
    assert all(e.id.startswith("urn:uuid:") and e.updated_parsed and e.link for e in entries)
    assert len({e.id for e in entries}) == len(entries)
    assert all(e.link.startswith(f"{served.url}/network/") for e in entries)
    # newest first; the feed's own `updated` is its newest entry's
    times = [unix(e.updated_parsed) for e in entries]
    assert times == sorted(times, reverse=True)
    assert unix(feed.feed.updated_parsed) == times[0]
    # every incident the API lists since the oldest entry is announced, with its start
    oldest = times[-1]
    listed = fetch(served, "/api/v1/incidents?since=7d&limit=1000").json()["incidents"]
    opened = [e for e in entries if e.title.startswith("Incident: ")]
    assert opened, "the seeded store has incidents"
    for i in listed:
        if math.floor(i["started_at"]) < oldest:
            continue
        where = f"{i['network']} {i['target']} from {i['location']}"
        match = [e for e in opened if e.title.startswith(f"Incident: {where} failing")
                 and unix(e.updated_parsed) == math.floor(i["started_at"])]
        assert len(match) >= 1, i
        assert i["outcome"] in match[0].summary
        assert {t.term for t in match[0].tags} >= {"incident"}
    resolved = [e for e in entries if e.title.startswith("Resolved: ")]
    assert resolved and all("failed runs" in e.summary for e in resolved)
    # nothing secret: no key, its variable, a base URL or the config's path
    for secret in (KEY, KEY_ENV, "secret-config", seeded.config.networks[0].base_url):
        assert secret not in r.text


def test_feed_ids_are_stable_and_a_reader_can_ask_if_it_changed(served: Served) -> None:
    first = fetch(served, "/api/v1/feed.atom")
    second = fetch(served, "/api/v1/feed.atom")
    a, b = feedparser.parse(first.content), feedparser.parse(second.content)
    assert [e.id for e in a.entries] == [e.id for e in b.entries]
    assert a.feed.id == b.feed.id
    assert first.headers["etag"] == second.headers["etag"]
    again = fetch(served, "/api/v1/feed.atom", 304, **{"If-None-Match": first.headers["etag"]})
    assert again.content == b""


def test_a_networks_feed_holds_only_its_events(served: Served) -> None:
    everything = feedparser.parse(fetch(served, "/api/v1/feed.atom").content)
    feed = feedparser.parse(fetch(served, "/api/v1/networks/outage/feed.atom").content)
    assert not feed.bozo and feed.entries
    assert feed.feed.id != everything.feed.id and "outage" in feed.feed.title
    assert all(e.link.endswith("/network/outage") for e in feed.entries)
    ids = {e.id for e in everything.entries}
    newest = unix(everything.entries[-1].updated_parsed)
    # the same event has the same id in both feeds
    assert {e.id for e in feed.entries if unix(e.updated_parsed) > newest} <= ids
    assert fetch(served, "/api/v1/networks/nope/feed.atom", 404).json()["error"].startswith(
        "unknown network 'nope'")


def test_the_feed_tells_quality_and_contract_verdict_changes(tmp_path: Path) -> None:
    now = 1_796_688_000.0
    db = tmp_path / "verdicts.db"
    Store(db).close()
    # The network's texts (an audit's error, a 4xx message, a grade's detail) carry a host
    # name and the key: no feed may show them.
    leak = f"400 from gpu7.internal: unknown field 'stop' ({KEY})"
    for days, verdict in ((3, Audited.NOT_WORSE), (2.5, Audited.NOT_WORSE), (2, Audited.WORSE)):
        AuditWriter(db).on_audit(dataclasses.replace(
            FLAKY_WORSE, started_at=now - days * DAY_S, verdict=verdict, error=leak))
    # flaky honours `stop`, then a 4xx rejects it; two of its eight tool calls are wrong each
    # run, none of the reference's: the third run's week is worse (p = 2/64)
    times = (now - 2 * DAY_S, now - 2 * DAY_S + 3600.0, now - DAY_S)
    for t in times:
        r = run(t, reference="good",
                cells={Param.STOP: Cell.REJECTED if t == times[-1] else Cell.HONOURED})
        ContractWriter(db).on_contract(dataclasses.replace(
            r, cells=tuple(dataclasses.replace(c, detail=leak) for c in r.cells),
            grades=tuple(dataclasses.replace(g, detail=leak) for g in r.grades)))
        ContractWriter(db).on_contract(run(t, network="good", wrong=False))
    networks = tuple(PublicNetwork(n, "openai", (("small", "m"),), ("chat-short-v1",), 60.0,
                                   None) for n in ("flaky", "good"))
    source = StatusSource(stores=(db,), networks=networks, profiles={}, location="test-lab",
                          clock=lambda: now, secrets=(KEY,))
    with serving(source, now) as served:
        first, second = (fetch(served, "/api/v1/feed.atom") for _ in range(2))
        own = fetch(served, "/api/v1/networks/flaky/feed.atom")
        contract = fetch(served, "/api/v1/contract?network=flaky").json()["networks"]
    for r in (first, own):
        assert "gpu7.internal" not in r.text and KEY not in r.text
    feed = feedparser.parse(first.content)
    assert not feed.bozo, feed.get("bozo_exception")
    told = [(e.tags[0].term, e.title, unix(e.updated_parsed)) for e in feed.entries]
    model = FLAKY_WORSE.model
    contract_model = run(now).model
    assert told == [
        ("contract", f"Contract: flaky {contract_model} stop no longer honoured (rejected)",
         times[-1]),
        ("contract", f"Contract: flaky {contract_model} tool calls worse than reference (good)",
         times[-1]),
        ("quality", f"Quality: flaky {model} worse than reference (baseline)", now - 2 * DAY_S),
        ("quality", f"Quality: flaky {model} not worse (baseline)", now - 3 * DAY_S)]
    # the same events keep their ids on every fetch, and in the network's own feed
    assert [e.id for e in feed.entries] == [e.id for e in
                                            feedparser.parse(second.content).entries]
    assert [e.id for e in feedparser.parse(own.content).entries] == [
        e.id for e in feed.entries]
    # /api/v1/contract?network= keeps the network's comparison with its reference
    assert [(c["network"], c["reference"]["pairs"], c["params"]["stop"])
            for c in contract] == [("flaky", 24, "rejected")]


# -- badges --------------------------------------------------------------------------------

def svg(served: Served, path: str) -> tuple[httpx.Response, list[str], str]:
    """The badge's texts (label, value) and the colour behind its value."""
    r = fetch(served, path)
    assert r.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(r.content)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    rects = [x for x in root.iter(f"{SVG}rect") if x.get("x")]
    assert len(texts) == 2 and len(rects) == 1
    assert root.get("aria-label") == f"{texts[0]}: {texts[1]}"
    return r, texts, rects[0].get("fill") or ""


def availability(runs: list[ProbeResult], network: str, since: float, until: float
                 ) -> float | None:
    kept = Counter(r.outcome.value for r in runs if r.network == network
                   and since <= r.started_at < until and not set_aside(r.outcome.value))
    judged = sum(kept.values())
    return kept[Outcome.OK.value] / judged if judged else None


@pytest.mark.parametrize("period", ["24h", "7d", "30d"])
def test_uptime_badges_show_the_stored_runs_share_in_the_profiles_colours(
        served: Served, runs: list[ProbeResult], period: str) -> None:
    seconds = {"24h": DAY_S, "7d": 7 * DAY_S, "30d": 30 * DAY_S}[period]
    colours = set()
    for network in ("steady", "flaky", "outage"):
        r, (label, value), colour = svg(
            served, f"/api/v1/networks/{network}/badges/uptime-{period}.svg")
        assert "max-age=" in r.headers["cache-control"] and r.headers["etag"]
        share = availability(runs, network, served.now - seconds, served.now)
        assert share is not None
        assert label == f"uptime {period}"
        assert value == f"{math.floor(share * 10000) / 100:.2f}%"
        # the standard profile: 99 % green, from 95 % amber, red below
        expected = "#2e9f4a" if share >= 0.99 else "#c48a00" if share >= 0.95 else "#d2372c"
        assert colour == expected, (network, share)
        colours.add(colour)
    assert "#2e9f4a" in colours and len(colours) >= 2  # steady is green, outage is not


def test_state_and_ttft_badges(served: Served, runs: list[ProbeResult]) -> None:
    states = {n["name"]: n["state"] for n in
              fetch(served, "/api/v1/networks").json()["networks"]}
    for network, state in states.items():
        _, (label, value), colour = svg(served, f"/api/v1/networks/{network}/badges/state.svg")
        assert (label, value) == (network, state)
        assert colour == {"up": "#2e9f4a", "degraded": "#c48a00", "down": "#d2372c"}.get(
            state, "#8a8f98")
    ttfts = sorted(r.ttft_s for r in runs if r.network == "steady" and r.ttft_s is not None
                   and served.now - DAY_S <= r.started_at < served.now)
    p95 = ttfts[math.ceil(0.95 * len(ttfts)) - 1]
    _, (label, value), colour = svg(served, "/api/v1/networks/steady/badges/ttft-p95.svg")
    assert label == "TTFT p95 24h"
    assert value == (f"{p95 * 1000:.0f} ms" if p95 < 1 else f"{p95:.2f} s")
    assert colour == "#2e9f4a"  # well within the standard profile's 5 s
    first = fetch(served, "/api/v1/networks/steady/badges/state.svg")
    fetch(served, "/api/v1/networks/steady/badges/state.svg", 304,
          **{"If-None-Match": first.headers["etag"]})
    assert "badges: uptime-24h.svg" in fetch(
        served, "/api/v1/networks/steady/badges/nope.svg", 404).json()["error"]


# -- maintenance ----------------------------------------------------------------------------

def test_a_network_inside_a_window_is_in_maintenance_not_down(served_maintenance: Served,
                                                              served: Served) -> None:
    plain_server, served = served, served_maintenance
    body = fetch(served, "/api/v1/maintenance").json()
    active, soon = body["windows"]
    assert active["active"] and active["networks"] == [IN_MAINTENANCE]
    assert active["reason"] == MAINTENANCE_REASON and not active["every_network"]
    assert not soon["active"] and soon["networks"] == ["steady"]
    assert soon["start"] == pytest.approx(served.now + SOON_S)
    only = fetch(served, "/api/v1/maintenance?network=steady").json()["windows"]
    assert [w["networks"] for w in only] == [["steady"]]
    nets = {n["name"]: n for n in fetch(served, "/api/v1/networks").json()["networks"]}
    assert nets[IN_MAINTENANCE]["state"] == "maintenance"
    assert nets[IN_MAINTENANCE]["reason"].startswith("planned maintenance until ")
    assert nets[IN_MAINTENANCE]["reason"].endswith(MAINTENANCE_REASON)
    assert nets["steady"]["state"] == "up"  # its window has not begun
    _, (_, value), colour = svg(served, f"/api/v1/networks/{IN_MAINTENANCE}/badges/state.svg")
    assert (value, colour) == ("maintenance", "#3b6fd1")
    # incidents that began inside the window are marked, the earlier ones are not
    start = active["start"]
    found = fetch(served, f"/api/v1/incidents?network={IN_MAINTENANCE}&since=7d&limit=1000"
                  ).json()["incidents"]
    inside = [i for i in found if i["started_at"] >= start]
    assert inside and all(i["maintenance"] for i in inside)
    assert all(not i["maintenance"] for i in found if i["started_at"] < start)
    assert any(not i["maintenance"] for i in found)
    feed = feedparser.parse(fetch(served, f"/api/v1/networks/{IN_MAINTENANCE}/feed.atom"
                                  ).content)
    planned = [e for e in feed.entries if "maintenance" in {t.term for t in e.tags}]
    assert planned and all("(during planned maintenance)" in e.title for e in planned)
    # the server without the windows says otherwise about the same runs
    plain = {n["name"]: n["state"] for n in
             fetch(plain_server, "/api/v1/networks").json()["networks"]}
    assert plain[IN_MAINTENANCE] != "maintenance"


# -- a network's resource ------------------------------------------------------------------

def test_a_networks_resource_has_days_with_intervals_and_history(served: Served,
                                                                 runs: list[ProbeResult]
                                                                 ) -> None:
    net = fetch(served, "/api/v1/networks/flaky").json()
    assert net["name"] == "flaky" and net["sla_profile"] == "standard"
    days = net["days"]
    assert len(days) == 90
    daily = fetch(served, "/api/v1/daily?network=flaky").json()["networks"][0]["days"]
    for mine, theirs in zip(days, daily, strict=True):
        assert {k: mine[k] for k in theirs} == theirs
        expected = wilson(mine["ok"], mine["ok"] + mine["failed"])
        assert mine["interval"] == (None if expected is None else pytest.approx(list(expected)))
        if mine["availability"] is not None:
            low, high = mine["interval"]
            assert low <= mine["availability"] <= high
    points = net["history"]["points"]
    assert len(points) in (48, 49) and net["history"]["step_s"] == 3600
    last = points[-1]
    decode = sorted(r.tokens_per_s for r in runs if r.network == "flaky"
                    and r.tokens_per_s is not None and last["start"] <= r.started_at < served.now)
    assert last["decode_runs"] == len(decode) > 0
    assert last["decode_p50_tps"] == pytest.approx(decode[math.ceil(0.5 * len(decode)) - 1])
    assert last["decode_p5_tps"] <= last["decode_p50_tps"]
    assert last["ttft_p95_s"] >= last["ttft_p50_s"] > 0
    for path in (net["feed"], *net["badges"].values()):
        fetch(served, path)
    assert fetch(served, "/api/v1/networks/nope", 404).json()["error"].startswith(
        "unknown network 'nope'")
    resources = fetch(served, "/api/v1/").json()["resources"]
    assert {"/api/v1/feed.atom", "/api/v1/maintenance", "/api/v1/networks/{name}",
            "/api/v1/networks/{name}/badges/{badge}.svg"} <= set(resources)
    page = fetch(served, "/network/flaky")
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    fetch(served, "/network/nope", 404)


def test_a_badges_text_is_escaped_not_markup() -> None:
    from monitor.web.badges import GREEN, Badge, render

    label, value = 'net<script>&"x"', "a'b</text>"
    root = ET.fromstring(render(Badge(label, value, GREEN)))
    assert [t.text for t in root.iter(f"{SVG}text")] == [label, value]
    assert not list(root.iter(f"{SVG}script"))
