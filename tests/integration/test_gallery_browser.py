"""The real job's ``gallery.html`` in headless Chromium: it loads cleanly and offline, shows
every image, sorts its cards and enlarges a clicked thumbnail.

The job is made by the real ``prodseg`` command (``sample`` then ``run`` with the fast,
deterministic classic backend) with one unreadable image among the targets. A full-page
screenshot goes to ``$PRODSEG_TEST_ARTIFACTS`` (default ``<repo>/test-artifacts/``).

Needs ``chromium`` and ``chromedriver`` (Debian: ``apt-get install chromium
chromium-driver``): without them the tests are skipped, except where ``CI=true``, where
they fail.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from selenium.common.exceptions import TimeoutException
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import WINDOW, chromium, console_errors, requested_urls
from tests.support.environment import prodseg
from tests.support.outcomes import artifacts_dir

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 10.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Job:
    """A finished ``prodseg run`` job.

    Attributes:
        out: the job's output directory.
        results: its ``results.json`` document.
    """

    out: Path
    results: dict[str, Any]

    @property
    def url(self) -> str:
        """The ``file://`` URL of the job's gallery page."""
        return (self.out / "gallery.html").as_uri()

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Every card's entry in page (input) order: the reference, then the targets."""
        return [self.results["reference"], *self.results["images"]]

    @property
    def input_order(self) -> list[str]:
        """Image ids of the cards in input order, reference first."""
        return [str(entry["image"]) for entry in self.entries]

    @property
    def score_order(self) -> list[str]:
        """Image ids of the cards best score first, as the results document ranks them.

        The reference leads; then matched images by their best match's score, highest
        first; then images without a match; then failed images. Ties keep input order.
        """
        images = self.results["images"]
        matched = sorted(
            (entry for entry in images if entry.get("matches")),
            key=lambda entry: -float(entry["matches"][0]["score"]),
        )
        unmatched = [e for e in images if e.get("status") != "error" and not e.get("matches")]
        failed = [e for e in images if e.get("status") == "error"]
        ordered = [self.results["reference"], *matched, *unmatched, *failed]
        return [str(entry["image"]) for entry in ordered]


@pytest.fixture(scope="module")
def browser() -> Iterator[Chrome]:
    """Headless Chromium with browser-console and network (performance) logging."""
    yield from chromium()


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Job:
    """A real job: rendered sample images plus one broken file, run with the classic backend."""
    sample = tmp_path_factory.mktemp("gallery-sample")
    done = prodseg("sample", "--output", str(sample), "--views", "4", "--shelf-only", "1",
                    "--size", "320x240")
    assert done.returncode == 0, done.stderr
    (sample / "images" / "broken.jpg").write_text("not an image")
    doc = json.loads((sample / "sample.json").read_text())
    x, y = doc["reference_point"]
    out = tmp_path_factory.mktemp("gallery-job")
    done = prodseg(
        "run", "--images", str(sample / "images"), "--reference", str(sample / doc["reference"]),
        "--ref-point", f"{x},{y}", "--output", str(out), "--backend", "classic", "--no-progress",
    )
    # The broken image fails, the others go on, and the exit code says that one failed.
    assert done.returncode == 1, f"exit code {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert (out / "gallery.html").is_file()
    return Job(out=out, results=json.loads((out / "results.json").read_text()))


@pytest.fixture
def page(browser: Chrome, job: Job) -> Chrome:
    """The browser on a freshly loaded gallery, every image decoded, the logs drained."""
    browser.get_log("browser")  # reading a log empties it: start from a clean slate
    browser.get_log("performance")
    browser.get(job.url)
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && "
            "Array.from(document.images).every(function (img) { return img.complete; });"
        ),
        "the gallery did not finish loading",
    )
    return browser


_console_errors = console_errors
_requested_urls = requested_urls


def _cards(driver: WebDriver) -> list[WebElement]:
    """The gallery's card elements in document order."""
    return driver.find_elements(By.CSS_SELECTOR, "#cards > figure.card")


def _card(driver: WebDriver, image_id: str) -> WebElement:
    """The card whose name is ``image_id``.

    Args:
        driver: the browser on the gallery.
        image_id: the image id (the card's ``.name`` text).

    Returns:
        The only card with that name.
    """
    found = [c for c in _cards(driver) if c.find_element(By.CLASS_NAME, "name").text == image_id]
    assert len(found) == 1, f"{len(found)} cards named {image_id!r}"
    return found[0]


def _shown_order(driver: WebDriver) -> list[str]:
    """Image ids of the cards in the order a reader sees them: row by row, left to right."""
    rows: list[tuple[float, float, str]] = driver.execute_script(
        "return Array.from(document.querySelectorAll('#cards > figure.card')).map(function (c) {"
        "  var r = c.getBoundingClientRect();"
        "  return [Math.round(r.top), Math.round(r.left), c.querySelector('.name').textContent];"
        "});"
    )
    return [name for _, _, name in sorted(rows)]


def _sort(driver: WebDriver, key: str, expected: list[str]) -> list[str]:
    """Click the page's sort button for ``key`` and wait (briefly) for ``expected`` order.

    Args:
        driver: the browser on the gallery.
        key: the button's ``data-sort`` value (``"order"`` or ``"score"``).
        expected: the card order the click should give.

    Returns:
        The order shown once it equals ``expected``, or after the wait ran out.
    """
    driver.find_element(By.CSS_SELECTOR, f'.controls button[data-sort="{key}"]').click()
    with contextlib.suppress(TimeoutException):  # the caller's assertion shows the order
        WebDriverWait(driver, 2.0).until(lambda d: _shown_order(d) == expected)
    return _shown_order(driver)


def test_gallery_loads_without_console_errors_or_network_requests(
    page: Chrome, job: Job
) -> None:
    """The page loads with a silent console and fetches nothing but itself and data: URIs."""
    assert page.title.startswith("prodseg results")
    assert _console_errors(page) == []
    urls = _requested_urls(page)
    assert job.url in urls, f"the performance log missed the page itself: {urls}"
    foreign = [url for url in urls if url != job.url and not url.startswith("data:")]
    assert foreign == [], f"the gallery made network requests: {foreign}"


def test_gallery_shows_every_image(page: Chrome, job: Job) -> None:
    """One card per image, reference first; thumbnails decoded; errors and scores shown."""
    cards = _cards(page)
    assert [c.find_element(By.CLASS_NAME, "name").text for c in cards] == job.input_order
    assert "reference" in (cards[0].get_attribute("class") or "").split()
    assert "REFERENCE" in cards[0].text
    statuses = {str(entry.get("status")) for entry in job.results["images"]}
    assert {"ok", "error"} <= statuses, "the job should have both readable and failed images"

    for entry in job.entries:
        card = _card(page, str(entry["image"]))
        assert card.is_displayed(), entry["image"]
        if entry.get("status") == "error":
            assert "error" in (card.get_attribute("class") or "").split()
            assert card.find_elements(By.CSS_SELECTOR, "img") == []
            assert card.find_element(By.CSS_SELECTOR, ".thumb.missing").is_displayed()
            message = card.find_element(By.CSS_SELECTOR, ".status.error")
            assert message.is_displayed()
            assert message.text == f"error: {entry['error']}"
            continue
        thumb = card.find_element(By.CSS_SELECTOR, "img.thumb")
        natural = page.execute_script(
            "return [arguments[0].naturalWidth, arguments[0].naturalHeight];", thumb
        )
        assert natural[0] > 0 and natural[1] > 0, f"{entry['image']}: thumbnail not decoded"
        # The card shows this image's own thumbnail, inlined byte for byte.
        data = (job.out / entry["thumbnail"]).read_bytes()
        assert thumb.get_attribute("src") == (
            "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
        ), entry["image"]
        assert list(natural) == list(Image.open(io.BytesIO(data)).size)
        if entry is not job.results["reference"]:
            matches = entry.get("matches") or []
            expected = f"score {matches[0]['score']:.3f}" if matches else "no match"
            assert expected in card.text, f"{entry['image']}: {card.text!r}"
    assert _console_errors(page) == []


def test_sort_by_score_and_back_to_input_order(page: Chrome, job: Job) -> None:
    """The sort buttons put the best scores first, then restore the input order."""
    assert job.score_order != job.input_order, "this job cannot tell the two orders apart"
    assert _shown_order(page) == job.input_order

    assert _sort(page, "score", job.score_order) == job.score_order
    shown_scores = [float(c.get_attribute("data-score") or "nan") for c in _cards(page)]
    assert shown_scores == sorted(shown_scores, reverse=True)

    assert _sort(page, "order", job.input_order) == job.input_order
    assert _console_errors(page) == []


def test_clicking_a_thumbnail_enlarges_it(page: Chrome, job: Job) -> None:
    """A clicked thumbnail opens, much larger, in the lightbox; Escape closes it again."""
    lightbox = page.find_element(By.ID, "lightbox")
    assert not lightbox.is_displayed()
    image_id = job.score_order[1]  # the best-scoring target image
    thumb = _card(page, image_id).find_element(By.CSS_SELECTOR, "img.thumb")
    small = thumb.size

    thumb.click()
    WebDriverWait(page, WAIT_S).until(lambda _: lightbox.is_displayed(), "no lightbox opened")
    big = lightbox.find_element(By.TAG_NAME, "img")
    assert big.get_attribute("src") == thumb.get_attribute("src")
    WebDriverWait(page, WAIT_S).until(lambda _: big.size["width"] > 0, "lightbox image empty")
    assert big.size["width"] >= 1.5 * small["width"], (big.size, small)
    assert big.size["height"] >= 1.5 * small["height"], (big.size, small)
    # It lies on top: the middle of the window belongs to the lightbox.
    on_top = page.execute_script(
        "var el = document.elementFromPoint(innerWidth / 2, innerHeight / 2);"
        "return el !== null && document.getElementById('lightbox').contains(el);"
    )
    assert on_top

    page.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    WebDriverWait(page, WAIT_S).until(lambda _: not lightbox.is_displayed(), "did not close")
    assert _console_errors(page) == []


def test_full_page_screenshot(page: Chrome, job: Job) -> None:
    """A full-page PNG of the gallery is saved for people to look at."""
    folder = artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gallery-chromium.png"
    size = page.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    width, height = int(size["width"]), int(size["height"])
    shot = page.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    data = base64.b64decode(shot["data"])
    path.write_bytes(data)
    print(f"\ngallery screenshot: {path}")

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= width and image.height >= height >= WINDOW[1] // 2
        assert len(image.convert("L").getcolors(256) or []) > 1, "the screenshot is blank"
    assert len(_cards(page)) == len(job.entries)
