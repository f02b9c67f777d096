"""The review page in headless Chromium, on the real server with a session answering from
memory: a product the server refuses (its job is gone) replaces the product on screen,
so none of the previous product's views or buttons stays behind; and a reference card
holding a decision stored earlier offers to clear it.

Needs ``chromium`` and ``chromedriver``; skipped without them, except where ``CI=true``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from prodseg.errors import InputError
from prodseg.producer.review.server import ReviewServer
from prodseg.storage.image_encoding import encode_jpeg, encode_png
from tests.support.browser import chromium, redrawn_page_wait

pytestmark = pytest.mark.integration
WAIT_S = 15.0
JOB = "cat-0123456789ab-milk"


class MemorySession:
    """Two products: milk, done, whose reference carries a stored reject; tea, refused."""

    catalog = "cat-0123456789ab"
    reviewer = "ana"

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []
        self.cleared = False

    def products(self) -> list[dict[str, Any]]:
        row = {"state": "done", "views": 1, "matched": 1, "failed": 0, "flagged": True,
               "reasons": [], "reviewed_by": "", "reviewed_at": "", "runs": 0, "lowest": 0.9}
        return [{**row, "product": "milk", "job": JOB},
                {**row, "product": "tea", "job": "", "state": "refused"}]

    def product(self, product: str) -> dict[str, Any]:
        if product != "milk":
            raise InputError("no job")
        view = {"width": 40, "height": 30, "status": "ok", "bank": True, "matches": [
            {"bbox": [5, 5, 20, 20], "score": 0.9}]}
        stored = {} if self.cleared else {"ref": {
            "decision": "reject", "job": JOB, "points": [], "lookalikes": [], "by": "x",
            "at": ""}}
        return {"product": "milk", "job": JOB, "state": "done", "finished": 1, "total": 1,
                "message": "", "runs": 0, "review": {"product": "milk", "views": stored,
                                                    "runs": []},
                "views": [{**view, "image": "ref", "reference": True, "found_by": "reference",
                           "prompt": {}},
                          {**view, "image": "v1", "reference": False, "found_by": "match"}]}

    def change(self, product: str, doc: dict[str, Any]) -> dict[str, Any]:
        self.changes.append(doc)
        self.cleared = doc == {"view": "ref", "job": JOB, "action": "clear"}
        return self.product(product)["review"]

    def image_jpeg(self, product: str, view: str) -> bytes:
        return encode_jpeg(np.full((30, 40, 3), 90, np.uint8))

    def overlay_png(self, product: str, view: str) -> bytes:
        return encode_png(np.zeros((30, 40, 4), np.uint8))


@pytest.fixture
def page() -> Iterator[tuple[Any, MemorySession]]:
    session = MemorySession()
    server = ReviewServer(session)  # type: ignore[arg-type]
    server.start()
    browser = chromium()
    driver = next(browser)
    try:
        driver.get(server.url)
        yield driver, session
    finally:
        browser.close()
        server.stop()


def test_a_refused_product_leaves_nothing_of_the_previous_one(page) -> None:
    from selenium.webdriver.common.by import By

    driver, _ = page
    wait = redrawn_page_wait(driver, WAIT_S)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-product="milk"]')).click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#views .view[data-view="v1"]'))
    assert driver.find_elements(By.CSS_SELECTOR, "#views button.accept")
    driver.find_element(By.CSS_SELECTOR, 'tr[data-product="tea"]').click()
    wait.until(lambda d: "no job" in d.find_element(By.ID, "status").text)
    assert driver.find_elements(By.CSS_SELECTOR, "#views .view") == []
    assert driver.find_elements(By.CSS_SELECTOR, "#views button, #rerun") == []
    assert driver.find_element(By.CSS_SELECTOR, "#head h2").text == "tea"


def test_the_reference_card_can_clear_a_stored_decision(page) -> None:
    from selenium.webdriver.common.by import By

    driver, session = page
    wait = redrawn_page_wait(driver, WAIT_S)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-product="milk"]')).click()
    ref = '#views .view[data-view="ref"]'
    card = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ref))
    assert card.get_attribute("data-decision") == "reject"
    card.find_element(By.CSS_SELECTOR, "button.clear").click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ref).get_attribute("data-decision")
               == "")
    assert session.changes == [{"view": "ref", "job": JOB, "action": "clear"}]
    assert wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ref)
                      .find_elements(By.TAG_NAME, "button") == [])
