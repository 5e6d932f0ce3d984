"""The status page in a real browser (Debian's chromium through chromedriver and selenium),
over the store the real scheduler filled: cards, 90 daily bars, sparklines and incident rows
render, at 1280 px and at a phone's width; so do a network's own page (its badges drawn by the
browser) and declared maintenance; a screenshot of each is saved with the test run."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import FLAKY_WORSE, GAP_DAYS, IN_MAINTENANCE, MAINTENANCE_REASON, Served

selenium = pytest.importorskip("selenium", reason="pip install selenium (the test extra)")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="apt-get install chromium chromium-driver")

# Where screenshots go: DEPIN_MONITOR_SCREENSHOTS, else the session's temporary directory.
SCREENSHOTS_ENV = "DEPIN_MONITOR_SCREENSHOTS"


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="depin-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1280,1000"):
        options.add_argument(flag)
    # the system's driver: selenium must not go looking for (or download) another
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get(SCREENSHOTS_ENV)
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def load(browser: webdriver.Chrome, served: Served) -> None:
    browser.get(f"{served.url}/")
    WebDriverWait(browser, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "article.network")) == 3
        and d.find_elements(By.CSS_SELECTOR, "#incidents tbody tr"))


def test_page_renders_bars_sparklines_and_incidents(browser: webdriver.Chrome, served: Served,
                                                    shots: Path) -> None:
    browser.set_window_size(1280, 1000)
    load(browser, served)
    api = httpx.get(f"{served.url}/api/v1/daily?days=90", timeout=30).json()
    cards = browser.find_elements(By.CSS_SELECTOR, "article.network")
    assert [c.get_attribute("data-network") for c in cards] == ["steady", "flaky", "outage"]
    for card, days in zip(cards, api["networks"], strict=True):
        bars = card.find_elements(By.CSS_SELECTOR, "ol.bars > li")
        assert len(bars) == 90
        assert all(b.size["width"] >= 1 and b.size["height"] >= 20 for b in bars)
        # each bar names its day and figure for a screen reader, and matches the API
        labels = [b.get_attribute("aria-label") for b in bars]
        for label, day in zip(labels, days["days"], strict=True):
            assert label.startswith(day["date"])
            if day["runs"] == 0:
                assert label.endswith("no runs")
            else:
                assert f"{day['ok']:,} ok of {day['ok'] + day['failed']:,} runs" in label
        gaps = [b for b, d in zip(bars, days["days"], strict=True) if d["runs"] == 0]
        assert len(gaps) >= len(GAP_DAYS)
        assert all("none" in b.get_attribute("class") for b in gaps)
        spark = card.find_element(By.CSS_SELECTOR, "svg.spark")
        assert spark.get_attribute("role") == "img"
        assert "TTFT p95 over the last 24 hours" in spark.get_attribute("aria-label")
        line = card.find_element(By.CSS_SELECTOR, "svg.spark polyline:not(.p50)")
        assert len(line.get_attribute("points").split()) >= 20
        assert card.find_element(By.CSS_SELECTOR, ".state").text.lower() in (
            "up", "degraded", "down", "unknown")
    steady = cards[0]
    assert all("good" in b.get_attribute("class") or "none" in b.get_attribute("class")
               for b in steady.find_elements(By.CSS_SELECTOR, "ol.bars > li"))
    assert "Error budget left" in steady.text and "This month" in steady.text
    flaky = browser.find_element(By.CSS_SELECTOR, "article[data-network='flaky']")
    equality = flaky.find_element(By.CSS_SELECTOR, "p.equality.bad")
    assert equality.text.startswith("Model sim-llama-3.1-8b-instruct: DIFFERS from baseline "
                                    "(p = 0.0010, 250/248 samples, 2 tests in a row, 2026-09-21 ")
    assert not steady.find_elements(By.CSS_SELECTOR, "p.equality")  # never tested
    quality = flaky.find_element(By.CSS_SELECTOR, "p.quality.bad")
    assert quality.text.startswith("Answers of sim-llama-3.3-70b-instruct: WORSE than baseline "
                                   "(67 % vs 89 % correct, -22 points [")
    assert "90 items, 2 audits in a row, 2026-09-21 " in quality.text
    assert not steady.find_elements(By.CSS_SELECTOR, "p.quality")  # never audited
    outage = browser.find_element(By.CSS_SELECTOR, "article[data-network='outage']")
    printed = outage.find_element(By.CSS_SELECTOR, "p.fingerprint.bad")
    assert printed.text.startswith("Fingerprint of sim-llama-3.1-8b-instruct: CHANGED on "
                                   "2026-09-22 (TV 0.610, 20 requests, 2026-09-22 ")
    assert not steady.find_elements(By.CSS_SELECTOR, "p.fingerprint")  # never fingerprinted
    incidents = httpx.get(f"{served.url}/api/v1/incidents?since=7d", timeout=30).json()
    rows = browser.find_elements(By.CSS_SELECTOR, "#incidents tbody tr")
    assert len(rows) == len(incidents["incidents"]) > 0
    first = rows[0].find_elements(By.TAG_NAME, "td")
    assert [c.text for c in first[:3]] == [incidents["incidents"][0][k]
                                           for k in ("network", "target", "outcome")]
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None
    browser.save_screenshot(str(shots / "status-1280.png"))
    assert (shots / "status-1280.png").stat().st_size > 10_000


def test_page_shows_the_api_contract_table(browser: webdriver.Chrome, served: Served) -> None:
    load(browser, served)
    section = browser.find_element(By.ID, "contract-section")
    WebDriverWait(browser, 30).until(lambda d: section.is_displayed())
    head = [th.text for th in section.find_elements(By.CSS_SELECTOR, "thead th")]
    assert head[:3] == ["Network", "Model", "Tool-call errors"] and "stop" in head
    rows = section.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 1
    cells = rows[0].find_elements(By.TAG_NAME, "td")
    by_head = dict(zip(head, cells, strict=True))
    assert by_head["Network"].text == "flaky"
    assert by_head["Tool-call errors"].text == "25 % of 8"
    assert by_head["stop"].text == "ignored" and "bad" in by_head["stop"].get_attribute("class")
    assert by_head["max_tokens"].text == "ok"


def test_page_fits_a_phone(browser: webdriver.Chrome, served: Served, shots: Path) -> None:
    browser.set_window_size(390, 1400)
    try:
        load(browser, served)
        width = browser.execute_script("return document.documentElement.clientWidth")
        scroll = browser.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= width, "the page scrolls sideways on a phone"
        for card in browser.find_elements(By.CSS_SELECTOR, "article.network"):
            assert card.size["width"] <= width
            bars = card.find_elements(By.CSS_SELECTOR, "ol.bars > li")
            assert len(bars) == 90 and all(b.size["width"] >= 1 for b in bars)
        browser.save_screenshot(str(shots / "status-phone.png"))
    finally:
        browser.set_window_size(1280, 1000)


# -- a network's page, maintenance, badges (the same browser) ------------------------------

def load_network(browser: webdriver.Chrome, url: str) -> None:
    WebDriverWait(browser, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#bars ol.bars > li")) == 90
        and d.find_elements(By.CSS_SELECTOR, "#days tbody tr")
        and d.find_elements(By.CSS_SELECTOR, "#incidents tbody tr")
        and len(d.find_elements(By.CSS_SELECTOR, "#badges img")) == 5
        and d.execute_script(  # every badge loaded and drawn by the browser
            "return [...document.querySelectorAll('#badges img')]"
            ".every(i => i.complete && i.naturalWidth > 40 && i.naturalHeight === 20)"))
    assert browser.current_url == url


def test_a_cards_link_opens_its_networks_page(browser: webdriver.Chrome, served: Served,
                                              shots: Path) -> None:
    browser.set_window_size(1280, 1000)
    load(browser, served)
    browser.find_element(By.CSS_SELECTOR, "article[data-network='flaky'] h3 a").click()
    load_network(browser, f"{served.url}/network/flaky")
    net = httpx.get(f"{served.url}/api/v1/networks/flaky", timeout=30).json()
    assert browser.find_element(By.CSS_SELECTOR, "#title .state").text.lower() == net["state"]
    # the daily bars and the table of days with their 95 % interval, newest first
    labels = [b.get_attribute("aria-label")
              for b in browser.find_elements(By.CSS_SELECTOR, "#bars ol.bars > li")]
    with_runs = [d for d in net["days"] if d["runs"]]
    newest = with_runs[-1]
    assert labels[-1].startswith(f"{newest['date']}: ") and "95 % interval" in labels[-1]
    first = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#days tbody tr")[0]
             .find_elements(By.TAG_NAME, "td")]
    assert first[0] == newest["date"]
    assert first[3] == f"{newest['ok']:,} / {newest['ok'] + newest['failed']:,}"
    low, high = newest["interval"]
    percent = [f"{math.floor(x * 1e4) / 100:.2f} %" for x in (low, high)]
    assert first[2] == "{} \N{EN DASH} {}".format(*percent)
    # TTFT and decode history: two charts with a line each for p95/p50 and p50/p5
    charts = browser.find_elements(By.CSS_SELECTOR, "#history svg.chart")
    assert [c.get_attribute("aria-label").split(":")[0] for c in charts] == ["TTFT",
                                                                           "Decode rate"]
    for chart in charts:
        lines = chart.find_elements(By.TAG_NAME, "polyline")
        assert len(lines) == 2 and all(len(x.get_attribute("points").split()) >= 2
                                       for x in lines)
    # the latest verdicts: the SLA's SLIs and the model equality verdict
    slis = browser.find_elements(By.CSS_SELECTOR, "#slis tbody tr")
    sla = httpx.get(f"{served.url}/api/v1/sla?network=flaky", timeout=30).json()
    assert [r.find_element(By.TAG_NAME, "td").text for r in slis] == [
        s["sli"] for s in sla["networks"][0]["slis"]]
    assert browser.find_element(By.CSS_SELECTOR, "#verdicts p.equality.bad").text.startswith(
        "Model equality, sim-llama-3.1-8b-instruct: DIFFERS from baseline")
    # the latest quality audit with both intervals, and the contract matrix's row
    w = FLAKY_WORSE
    shares = [f"{100 * (v or 0):.1f} % [{100 * (lo or 0):.1f}\N{EN DASH}{100 * (hi or 0):.1f} %]"
              for v, lo, hi in ((w.accuracy, w.accuracy_low, w.accuracy_high),
                                (w.reference_accuracy, w.reference_low, w.reference_high))]
    assert browser.find_element(By.CSS_SELECTOR, "#verdicts p.quality.bad").text.startswith(
        f"Quality, {w.model}: WORSE than baseline (accuracy {shares[0]} vs {shares[1]} on "
        f"{w.pairs} of {w.items} items")
    matrix = browser.find_element(By.CSS_SELECTOR, "#verdicts table.contract")
    cells = dict(zip([th.text for th in matrix.find_elements(By.CSS_SELECTOR, "thead th")],
                     matrix.find_elements(By.CSS_SELECTOR, "tbody td"), strict=True))
    assert cells["stop"].text == "ignored" and "bad" in (cells["stop"].get_attribute("class")
                                                         or "")
    assert cells["max_tokens"].text == "ok" and cells["Tool-call errors"].text.startswith(
        "25 % of 8 [")
    incidents = httpx.get(f"{served.url}/api/v1/incidents?network=flaky&since=7d&limit=200",
                          timeout=30).json()["incidents"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#incidents tbody tr")
    assert len(rows) == max(1, len(incidents))
    assert browser.find_element(By.ID, "feed").get_attribute("href").endswith(
        "/api/v1/networks/flaky/feed.atom")
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None
    browser.save_screenshot(str(shots / "network-1280.png"))
    assert (shots / "network-1280.png").stat().st_size > 10_000
    browser.set_window_size(390, 1400)
    try:
        browser.refresh()
        load_network(browser, f"{served.url}/network/flaky")
        width = browser.execute_script("return document.documentElement.clientWidth")
        scroll = browser.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= width, "the network's page scrolls sideways on a phone"
        browser.save_screenshot(str(shots / "network-phone.png"))
    finally:
        browser.set_window_size(1280, 1000)


def test_maintenance_shows_on_the_page(browser: webdriver.Chrome, served_maintenance: Served,
                                       shots: Path) -> None:
    served = served_maintenance
    load(browser, served)
    card = browser.find_element(By.CSS_SELECTOR, f"article[data-network='{IN_MAINTENANCE}']")
    assert card.find_element(By.CSS_SELECTOR, ".state").text.lower() == "maintenance"
    assert MAINTENANCE_REASON in card.find_element(By.CSS_SELECTOR, ".reason").text
    windows = browser.find_elements(By.CSS_SELECTOR, "#maintenance li")
    assert [w.text.split(" ")[0] for w in windows] == ["Now", "Planned"]
    assert windows[0].text.endswith(f"{IN_MAINTENANCE}: {MAINTENANCE_REASON}")  # as text
    assert windows[1].text.endswith("steady: planned move")
    assert "1 in planned maintenance" in browser.find_element(By.ID, "overall").text
    marked = [r for r in browser.find_elements(By.CSS_SELECTOR, "#incidents tbody tr")
              if r.find_element(By.TAG_NAME, "td").text == IN_MAINTENANCE
              and "in maintenance" in r.text]
    assert marked and all("planned" in r.get_attribute("class") for r in marked)
    browser.save_screenshot(str(shots / "status-maintenance.png"))
    browser.get(f"{served.url}/network/{IN_MAINTENANCE}")
    load_network(browser, f"{served.url}/network/{IN_MAINTENANCE}")
    assert browser.find_element(By.CSS_SELECTOR, "#title .state").text.lower() == "maintenance"
    # another verdict family the networks resource lists: the fingerprint, told by its summary
    printed = browser.find_element(By.CSS_SELECTOR,
                                   "#verdicts p.verdict-line.bad[data-family='fingerprint']")
    assert printed.text.startswith("fingerprint, sim-llama-3.1-8b-instruct: the model behind "
                                   "this name changed on 2026-09-22 (2026-09-22 ")
    assert [w.text.split(" ")[0] for w in
            browser.find_elements(By.CSS_SELECTOR, "#maintenance li")] == ["Now"]
