"""A real job's ``viewer.html`` (``prodseg export spin``) in headless Chromium: it turns by
itself, dragging and the arrow keys change the frame, and it fetches nothing but itself.

The job is made by the real ``prodseg`` command (``sample``, ``run`` with the classic
backend, ``export spin``). A screenshot goes to ``$PRODSEG_TEST_ARTIFACTS`` (default
``<repo>/test-artifacts/``) as ``spin-viewer-chromium.png``.

Needs ``chromium`` and ``chromedriver``, as ``tests/support/browser.py`` says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import chromium, console_errors, full_page_png, requested_urls
from tests.support.environment import prodseg
from tests.support.outcomes import artifacts_dir

WAIT_S = 10.0


@pytest.fixture(scope="module")
def spin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """``export spin`` of a classic-backend run on a rendered 12-view spin: its folder and
    ``spin.json``."""
    sample = tmp_path_factory.mktemp("spin-sample")
    done = prodseg("sample", "-o", str(sample), "--views", "12", "--shelf-only", "1",
                   "--size", "320x240")
    assert done.returncode == 0, done.stderr
    doc = json.loads((sample / "sample.json").read_text())
    x, y = doc["reference_point"]
    job = sample / "results"
    done = prodseg("run", "--images", str(sample / "images"), "--reference",
                   str(sample / doc["reference"]), "--ref-point", f"{x},{y}", "--output",
                   str(job), "--backend", "classic", "--no-progress")
    assert done.returncode == 0, done.stderr
    out = sample / "spin"
    done = prodseg("export", "spin", str(job), "-o", str(out), "--size", "480")
    assert done.returncode == 0, done.stderr
    assert "left out shelf_000: no match" in done.stderr  # listed, one line each
    written = json.loads((out / "spin.json").read_text())
    assert len(written["frames"]) >= 4 and "shelf_000" in written["left_out"]
    return out, written


@pytest.fixture(scope="module")
def browser() -> Iterator[Chrome]:
    yield from chromium()


@pytest.fixture
def page(browser: Chrome, spin: tuple[Path, dict[str, Any]]) -> Chrome:
    """The browser on a freshly loaded viewer, its logs drained before the load."""
    browser.get_log("browser")
    browser.get_log("performance")
    browser.get((spin[0] / "viewer.html").as_uri())
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.execute_script("return document.readyState === 'complete' && "
                                   "document.getElementById('frame').naturalWidth > 0"),
        "the viewer did not show a frame")
    return browser


def _frame(driver: Chrome) -> int:
    return int(driver.find_element(By.ID, "spin").get_attribute("data-frame") or "-1")


def test_the_viewer_fetches_nothing_and_turns_by_itself(
        page: Chrome, spin: tuple[Path, dict[str, Any]]) -> None:
    first = _frame(page)
    WebDriverWait(page, WAIT_S).until(lambda d: _frame(d) != first, "it did not turn by itself")
    url = (spin[0] / "viewer.html").as_uri()
    urls = requested_urls(page)
    assert url in urls, urls
    assert [u for u in urls if u != url and not u.startswith("data:")] == []
    assert console_errors(page) == []


def test_arrow_keys_and_dragging_change_the_frame(
        page: Chrome, spin: tuple[Path, dict[str, Any]]) -> None:
    count = len(spin[1]["frames"])
    body = page.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)  # the first key also stops the turning
    start = _frame(page)
    body.send_keys(Keys.ARROW_RIGHT)
    assert _frame(page) == (start + 1) % count
    body.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    assert _frame(page) == (start - 1) % count
    shown = page.find_element(By.ID, "frame").get_attribute("src") or ""
    assert shown.startswith("data:image/jpeg;base64,")

    viewer = page.find_element(By.ID, "spin")
    before = _frame(page)
    per_frame = viewer.size["width"] / count
    ActionChains(page).click_and_hold(viewer).move_by_offset(int(2.2 * per_frame), 0) \
        .release().perform()
    assert _frame(page) == (before - 2) % count
    ActionChains(page).click_and_hold(viewer).move_by_offset(-int(3.2 * per_frame), 0) \
        .release().perform()
    assert _frame(page) == (before + 1) % count
    assert console_errors(page) == []


def test_screenshot(page: Chrome) -> None:
    page.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    path = artifacts_dir() / "spin-viewer-chromium.png"
    width, height = full_page_png(page, path)
    assert path.stat().st_size > 1000 and width > 0 and height > 0


def test_the_job_gallery_links_to_the_viewer(
        browser: Chrome, spin: tuple[Path, dict[str, Any]]) -> None:
    """``export spin`` from a run folder rewrites its gallery with a link to the viewer,
    relative, so the two folders may move together."""
    out, _ = spin
    gallery = out.parent / "results" / "gallery.html"
    assert 'href="../spin/viewer.html"' in gallery.read_text(encoding="utf-8")
    browser.get(gallery.as_uri())
    link = browser.find_element(By.LINK_TEXT, "360° viewer")
    assert link.get_attribute("href") == (out / "viewer.html").as_uri()
    link.click()
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.current_url == (out / "viewer.html").as_uri() and d.execute_script(
            "return document.getElementById('frame').naturalWidth > 0"),
        "the gallery's link did not open the viewer")
