"""The status page in a real browser (Debian's chromium through chromedriver and selenium),
over the store the real scheduler filled: cards, 90 daily bars, sparklines and incident rows
render, at 1280 px and at a phone's width; a screenshot of each is saved with the test run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import GAP_DAYS, Served

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
