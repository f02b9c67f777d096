"""Headless Chromium for the page tests (selenium with the system's chromedriver).

Needs ``chromium`` and ``chromedriver`` (Debian: ``apt-get install chromium
chromium-driver``): without them the tests are skipped, except where ``CI=true``, where
they fail. The browser logs its console and every request (Chrome's performance log), so a
test can say what a page fetched.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

WINDOW = (1280, 1000)
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)
INSTALL_HINT = "apt-get install chromium chromium-driver"


def chromium_paths() -> tuple[str, str]:
    """Paths of the ``chromium`` browser and its ``chromedriver``.

    Raises:
        pytest.skip.Exception: when either is missing (outside CI).
        pytest.fail.Exception: when either is missing and ``CI`` is ``"true"``.
    """
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if not p)
    message = f"{missing} not found: the browser tests need `{INSTALL_HINT}`"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: not skipping)")
    pytest.skip(message)


def chromium() -> Iterator[Any]:
    """A headless Chromium with console and network (performance) logging; quits after."""
    from selenium.webdriver import Chrome, ChromeOptions
    from selenium.webdriver.chrome.service import Service

    browser_path, driver_path = chromium_paths()
    options = ChromeOptions()
    options.binary_location = browser_path
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # An explicit driver path: Selenium Manager (which would download one) never runs.
    driver = Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def redrawn_page_wait(driver: Any, timeout_s: float, poll_s: float = 0.5) -> Any:
    """A ``WebDriverWait`` for pages that draw their elements anew (after each decision,
    and each second while a job runs): an element found a moment before may be gone by the
    time it is read, so a missing or stale element means "look again", not failure."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=poll_s, ignored_exceptions=(
        NoSuchElementException, StaleElementReferenceException))


def console_errors(driver: Any) -> list[dict[str, Any]]:
    """The browser-console entries at level SEVERE since the log was last read."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def requested_urls(driver: Any) -> list[str]:
    """URLs of every request the page started since the performance log was last read."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(str(message["params"]["request"]["url"]))
    return urls


def full_page_png(driver: Any, path: Path) -> tuple[int, int]:
    """Save a full-page screenshot as PNG; returns the page's CSS size."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    width, height = int(size["width"]), int(size["height"])
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return width, height
