"""A 200-product catalog prepared in headless Chromium against Valkey, SeaweedFS and a
``prodseg worker`` (classic backend): Enter on the right proposals, a click on the product
for the wrong ones (its mask previewed by the worker, then by ``--preview local``) and
Enter; V and a click on another view for one product, S for another; the browser and the
command closed halfway and started again; ``--submit``
submitting each product as it is confirmed, the products confirmed but not yet submitted
when the command stopped submitted by the next one. The file then holds exactly the
decisions made, ``catalog submit`` of it gives the same catalog and enqueues only the
skipped product, with its proposal, and every job ends, the corrected ones segmenting the
clicked product. The test
prints the keystrokes and clicks, and the seconds per product."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

from prodseg.producer.catalog.file import catalog_id, read_catalog
from prodseg.producer.prepare_page.decisions import DECISION_COLUMN, PreparedFile
from tests.support.browser import (
    chromium,
    console_errors,
    full_page_png,
    redrawn_page_wait,
    requested_urls,
)
from tests.support.cluster import Cluster
from tests.support.outcomes import artifacts_dir
from tests.support.prepared import PreparedSet, middle, write_prepared

pytestmark = pytest.mark.integration
PRODUCTS = 200
WAIT_S = 120.0
SIZE = (72, 96)
SKIPPED = "p0005"  # S: left as proposed
MOVED = "p0007"  # V: its second view made the reference, the product clicked there


class Tally:
    """What the operator did: keys pressed, clicks made, products decided, seconds."""

    def __init__(self) -> None:
        self.keys = 0
        self.clicks = 0
        self.decided = 0
        self.seconds = 0.0
        self.clicked: dict[str, str] = {}


def test_prepare_200_products_in_the_browser_with_submit(cluster: Cluster) -> None:
    prepared = write_prepared(cluster.tmp, PRODUCTS, views=2, size=SIZE)
    cluster.worker("w1", "--concurrency", "2", PRODSEG_BACKEND="classic")
    tally = Tally()
    half = PRODUCTS // 2
    # Previews from the worker, then from the command's own process (--preview local).
    for stop_after, where in ((half, "worker"), (PRODUCTS - half, "local")):
        began = time.perf_counter()
        _session(cluster, prepared, stop_after, where, tally)
        print(f"\na page of {stop_after} decisions, with the command's start and stop: "
              f"{time.perf_counter() - began:.1f} s")

    rows = PreparedFile(prepared.path).rows
    assert [r["product_id"] for r in rows] == prepared.products
    for row in rows:
        product = row["product_id"]
        x, y = prepared.inside[product]
        if product == SKIPPED:
            assert (row[DECISION_COLUMN], row["prompt_source"], row["point"]) == \
                ("skipped", "proposed", f"{x},{y}"), row
            continue
        assert row["prompt_source"] == "confirmed", row
        if product == MOVED:
            assert (row[DECISION_COLUMN], row["reference"], row["point"]) == \
                ("corrected", f"{product}/view_01.png", tally.clicked[product]), row
        elif product in prepared.wrong:
            assert (row[DECISION_COLUMN], row["point"]) == ("corrected",
                                                           tally.clicked[product]), row
        else:
            assert (row[DECISION_COLUMN], row["point"]) == ("accepted", f"{x},{y}"), row
    catalog = read_catalog(prepared.path)
    assert not catalog.problems
    cid = catalog_id(catalog.products)
    assert cid == rows[0]["catalog"]

    # Every product was submitted as it was confirmed: the finished file adds the skipped one.
    waited = time.perf_counter()
    done = cluster.cli("catalog", "submit", str(prepared.path), "--backend", "classic",
                       "--watch", "--no-progress", timeout=WAIT_S * 3)
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.splitlines()[0] == cid
    assert "was submitted before: going on where it stopped" in done.stderr
    enqueued = {k.rsplit("/", 1)[1] for k in cluster.store.list(f"catalogs/{cid}/products/")}
    assert enqueued == {f"{p}.json" for p in prepared.products}
    skipped = json.loads(cluster.store.get(f"jobs/{cid}-{SKIPPED}/results.json"))
    assert skipped["reference"]["prompt"]["points"] == [
        [float(v) for v in prepared.inside[SKIPPED]]]
    for product in [MOVED, *sorted(prepared.wrong)[:4]]:
        doc = json.loads(cluster.store.get(f"jobs/{cid}-{product}/results.json"))
        (clicked,) = doc["reference"]["prompt"]["points"]
        assert ",".join(str(round(v)) for v in clicked) == tally.clicked[product]
        mask = np.asarray(Image.open(io.BytesIO(cluster.store.get(
            f"jobs/{cid}-{product}/{doc['reference']['mask']}")))) > 0
        x, y = (int(v) for v in tally.clicked[product].split(","))
        view = 1 if product == MOVED else 0
        assert doc["reference"]["image"] == f"view_0{view}"
        assert mask[y, x] and prepared.view_masks[product][view][y, x]  # where clicked
    waited = time.perf_counter() - waited
    print(f"\nprepared {PRODUCTS} products ({len(prepared.wrong)} proposals wrong): "
          f"{tally.keys} keystrokes, {tally.clicks} clicks, "
          f"{tally.keys / PRODUCTS:.2f} keystrokes and "
          f"{tally.seconds / PRODUCTS:.3f} s per product in the browser; the jobs ended "
          f"{waited:.1f} s after the last decision")


def _session(cluster: Cluster, prepared: PreparedSet, count: int, where: str,
             tally: Tally) -> None:
    """``catalog prepare --review --submit`` started, ``count`` products decided in a new
    browser, then the browser closed and the command stopped with Ctrl+C."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "prodseg", "catalog", "prepare", str(prepared.path), "-o",
         str(prepared.path), "--review", "--submit", "--backend", "classic",
         "--max-inflight", "8", "--preview", where, "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env,
        start_new_session=True)
    try:
        url = ""
        while proc.stdout and not url.startswith("http") and proc.poll() is None:
            url = proc.stdout.readline().strip()  # after the proposing step's summary
        assert url.startswith("http://127.0.0.1:") and "?token=" in url, (
            url, proc.stderr.read() if proc.stderr and proc.poll() is not None else "")
        browser = chromium()
        driver = next(browser)
        try:
            _decide(driver, url, prepared, count, tally)
        finally:
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    assert "token=" not in err and "Traceback" not in err, err


def _decide(driver: Any, url: str, prepared: PreparedSet, count: int, tally: Tally) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    wait = redrawn_page_wait(driver, WAIT_S, poll_s=0.02)
    driver.get_log("performance")
    driver.get(url)
    start = time.perf_counter()

    def shown() -> dict[str, str]:
        return dict(driver.execute_script(
            "var p = document.getElementById('product'); return {index: p.dataset.index || '',"
            " ready: p.dataset.ready || '', previewed: p.dataset.previewed || '',"
            " decided: document.getElementById('progress').dataset.decided || ''};"))

    first = None
    for _ in range(count):
        wait.until(lambda d: shown()["ready"] == "1")
        state = shown()
        index = int(state["index"])
        if first is None:
            first = index
            assert index == int(state["decided"]), "the page opens at the first undecided"
        product = prepared.products[index]
        if product == SKIPPED:
            ActionChains(driver).send_keys("s").perform()
            tally.keys += 1
            tally.decided += 1
            wait.until(lambda d, i=index: shown()["index"] != str(i))
            continue
        if product == MOVED:
            ActionChains(driver).send_keys("v").perform()
            tally.keys += 1
            wait.until(lambda d: driver.execute_script(
                "return document.getElementById('product').dataset.reference") == "1")
            at = middle(prepared.view_masks[product][1])
            _click_product(driver, wait, index, at, SIZE, ActionChains, view=1)
            tally.clicks += 1
            wait.until(lambda d: shown()["previewed"] == "1")
            sent = json.loads(driver.execute_script(
                "return document.getElementById('product').dataset.prompt"))
            assert sent["view"] == 1 and prepared.view_masks[product][1][
                sent["points"][0][1], sent["points"][0][0]]
            tally.clicked[product] = ",".join(map(str, sent["points"][0]))
        elif product in prepared.wrong:
            _click_product(driver, wait, index, prepared.inside[product], SIZE, ActionChains)
            tally.clicks += 1
            wait.until(lambda d: shown()["previewed"] == "1")
            sent = json.loads(driver.execute_script(
                "return document.getElementById('product').dataset.prompt"))
            (px, py), truth = sent["points"][0], prepared.masks[product]
            assert truth[py, px] and sent["neg_points"] == [] and sent["box"] is None
            aim = prepared.inside[product]
            assert abs(px - aim[0]) + abs(py - aim[1]) <= 2, (sent, aim)
            tally.clicked[product] = f"{px},{py}"
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        tally.keys += 1
        tally.decided += 1
        wait.until(lambda d, i=index: shown()["index"] != str(i) or
                   driver.execute_script("return document.getElementById('product')"
                                         ".dataset.done || ''") == "1")
    tally.seconds += time.perf_counter() - start
    if tally.decided == len(prepared.products):
        wait.until(lambda d: "every product has a decision" in
                   d.find_element("id", "status").text)
    else:
        full_page_png(driver, artifacts_dir() / "prepare-chromium.png")
    assert console_errors(driver) == []
    urls = requested_urls(driver)
    assert urls and all(u.startswith(("http://127.0.0.1:", "data:")) for u in urls), urls


def _click_product(driver: Any, wait: Any, index: int, at: tuple[int, int],
                   size: tuple[int, int], chains: Any, view: int = 0) -> None:
    """A click on the reference photo (view ``view``) at pixel ``at`` (its natural size is
    ``size``)."""
    photo = driver.find_element("id", "photo")
    wait.until(lambda d: d.execute_script(
        "var p = arguments[0]; return p.complete && p.naturalWidth > 0 && "
        f"p.src.indexOf('/api/product/{index}/view/{view}/full') >= 0", photo))
    rect = photo.size
    height, width = size
    dx = (at[0] + 0.5) * rect["width"] / width - rect["width"] / 2  # the pixel's middle
    dy = (at[1] + 0.5) * rect["height"] / height - rect["height"] / 2
    chains(driver).move_to_element_with_offset(photo, round(dx), round(dy)).click().perform()
